"""How ``state.rows`` stores one column as one line (its format: ``storage.trial_rows``):
every present value of one type comes back as that type, ``MISSING`` marks a row without
the column (unlike a stored None). Used by the view's one writer and its one reader."""

from __future__ import annotations

import base64
import json
import sys
from array import array
from typing import Any


class _Missing:
    """A row without the column (unlike a stored None)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def _encode(values: list[Any]) -> bytes:
    """One column as its line (``_decode`` reads it back, each value of the same type)."""
    absent = [i for i, v in enumerate(values) if v is MISSING] if values.count(MISSING) else []
    kinds = set(map(type, values))
    kinds.discard(_Missing)
    if absent:
        values = [None if v is MISSING else v for v in values]
    if kinds == {float}:
        return _binary(
            "f8",
            array("d", [0.0 if v is None else v for v in values] if absent else values),
            absent,
        )
    if kinds == {int}:
        gone = set(absent)
        present = [v for i, v in enumerate(values) if i not in gone] if absent else values
        if min(present) >= -(2**63) and max(present) < 2**63:
            return _binary(
                "i8",
                array("q", [0 if v is None else v for v in values] if absent else values),
                absent,
            )
    table = _distinct(values, kinds)
    if table is not None:
        index = {key: code for code, key in enumerate(table)}
        keyed = [index[v] for v in values]
        return json.dumps({"codes": keyed, "values": list(table), "absent": absent}).encode()
    codes: dict[Any, int] = {}
    first: list[Any] = []
    keyed = []
    for value in values:
        code = codes.setdefault(_key(value), len(codes))
        if code == len(first):
            first.append(value)
        keyed.append(code)
        if len(codes) > 64:
            return json.dumps({"json": values, "absent": absent}, default=str).encode()
    return json.dumps({"codes": keyed, "values": first, "absent": absent}, default=str).encode()


def _distinct(values: list[Any], kinds: set[type]) -> dict[Any, None] | None:
    """The distinct values of a column of one hashable type (None beside it) with at most 64
    distinct values; None: another column (its values keyed one at a time by ``_key``)."""
    if len(kinds - {type(None)}) > 1 or not kinds <= {str, int, float, tuple, type(None)}:
        return None
    try:
        if len(dict.fromkeys(values[:1024])) > 64:
            return None  # many distinct values: no need to count them all
        distinct = dict.fromkeys(values)
    except TypeError:  # a tuple holding something unhashable
        return None
    return distinct if len(distinct) <= 64 else None


def _key(value: Any) -> Any:
    """What tells two values apart (their types too: ``1``, ``1.0`` and ``True`` are equal)."""
    if isinstance(value, (str, int, float, tuple, type(None))):
        return type(value), value
    if type(value) is dict:  # a request: its text tells it (1 and True apart, its key order)
        return dict, repr(value)
    return json.dumps(value, default=str)


def _binary(kind: str, numbers: array, absent: list[int]) -> bytes:
    if sys.byteorder != "little":
        numbers.byteswap()
    text = base64.b64encode(numbers.tobytes()).decode()
    return json.dumps({kind: text, "absent": absent}).encode()


def _decode(line: bytes, keys: bool = False) -> list[Any]:
    """A column's values (``keys``: the ``_keys`` column, whose lists become tuples)."""
    column = json.loads(line)
    if "f8" in column or "i8" in column:
        kind = "f8" if "f8" in column else "i8"
        numbers = array("d" if kind == "f8" else "q", base64.b64decode(column[kind]))
        if sys.byteorder != "little":
            numbers.byteswap()
        values = numbers.tolist()
    elif "codes" in column:
        table = column["values"]
        if keys:
            table = [tuple(v) if isinstance(v, list) else v for v in table]
        values = [table[c] for c in column["codes"]]
    else:
        values = column["json"]
        if keys:
            values = [tuple(v) if isinstance(v, list) else v for v in values]
    for index in column["absent"]:
        values[index] = MISSING
    return values
