"""The trials' row view: the few fields the displays show, column by column, beside the base.

``hpctune status`` and ``hpctune trials`` show a few fields of every trial; parsing every
trial's whole record from ``state.json`` (about 2.6 KB a trial) costs seconds at 100,000
trials. Whenever the driver writes a base (``JournalWriter.compact``, and ``merge_base`` in the
background) it writes ``state.rows`` beside it: the display fields of each trial of that base
(``row_of``), one line per column, and where each trial's line lies in the base. A reader
(``trial_rows_read.read_rows``) parses only the columns it asks for, brings the rows up to date with the
journal's last line of each trial that changed since, and reads the base only for the few
trials whose whole record it needs (``TrialRows.record``).

One writer (``write_rows``/``carry_rows``, called by ``storage.journal_writer``), one reader
(``trial_rows_read.read_rows``). A view of another base (generation or snapshot number), of another version,
damaged or missing reads as None: the caller then reads the whole state (``storage.journal``),
so a display never shows stale rows.

```
state.rows  {"format": "hpctune-rows", "version": 1, "generation": G, "seq": S, "count": N,
             "columns": [name, ...], "escaped": [row, ...]}      then one line per column:
            {"json": [v, ...], "absent": [row, ...]}           any JSON values
            {"f8": "<base64 doubles>", "absent": [...]}          every present value a float
            {"i8": "<base64 int64>", "absent": [...]}            every present value an int
            {"codes": [c, ...], "values": [v, ...], "absent": [...]}  few distinct values
```

Columns: the trial fields of ``FIELDS`` (``error``: its last non-blank line), ``config/<key>``
per flattened config value, ``result:<key>`` per top-level result value that is neither a
dict nor a list, ``_keys`` (each row's config and result columns in the record's order),
``_offset``/``_length`` (the trial's line in the base). ``escaped``: the rows whose text holds an
escaped control character (a display scrubs them).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import sys
from array import array
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hpctune.core.metrics import flatten
from hpctune.storage.atomic import write_bytes_atomic
from hpctune.storage.experiment import STATE_ROWS_FILE, ExperimentDir
from hpctune.storage.journal import _ESCAPED_CONTROL, MAX_STATE_BYTES
from hpctune.storage.secure import read_regular_bytes

log = logging.getLogger(__name__)

ROWS_FILE = STATE_ROWS_FILE
FORMAT = "hpctune-rows"
VERSION = 1
#: the trial fields a display shows, with the value a record without one has (``Trial``'s default)
FIELDS: dict[str, Any] = {
    "trial_id": None,
    "status": "PENDING",
    "experiment_tag": None,
    "job_id": None,
    "job_state": "",
    "job_reason": "",
    "node": "",
    "num_failures": 0,
    "restart_count": 0,
    "checkpoint": None,
    "error": None,
    "path": None,
    "resources": {},
    "pending_resources": None,
    "trial_name": "",
    "trainable_name": "",
}
CONFIG = "config/"
RESULT = "result:"
KEYS, OFFSET, LENGTH = "_keys", "_offset", "_length"


class _Missing:
    """A row without the column (unlike a stored None)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def rows_path(exp: ExperimentDir) -> Path:
    """Where the row view of ``exp`` lives (next to ``state.json``)."""
    return exp.root / ROWS_FILE


def row_of(record: dict[str, Any]) -> dict[str, Any]:
    """The display fields of one trial record as the base or the journal holds it; raises
    for a record of the wrong shape (as building its ``Trial`` would)."""
    row = {name: record.get(name, default) for name, default in FIELDS.items()}
    if row["error"]:
        row["error"] = _last_line(row["error"])
    row.update(_extra_of(record))
    return row


def _last_line(error: str) -> str:
    """An error's last non-blank line (what the tables show of it)."""
    return next((ln for ln in reversed(error.splitlines()) if ln.strip()), "")


def _extra_of(record: dict[str, Any]) -> dict[str, Any]:
    """A record's ``config/<key>`` and ``result:<key>`` columns, and ``_keys``: their order."""
    extra = dict(_extras(record))
    extra[KEYS] = tuple(extra)
    return extra


def _extras(record: dict[str, Any]) -> list[tuple[str, Any]]:
    """A record's ``config/<key>`` and ``result:<key>`` values, in its order."""
    items: list[tuple[str, Any]] = []
    _flat(record["config"], CONFIG, items)
    for key, value in record.get("last_result", {}).items():
        if type(value) not in _NESTED and not isinstance(value, _NESTED):  # as JSON has none
            items.append((RESULT + key, value))
    return items


#: what a result holds that the tables do not show (a tuple is a list once written as JSON)
_NESTED = (dict, list, tuple)


def _flat(config: dict[str, Any], prefix: str, out: list[tuple[str, Any]]) -> None:
    """``core.metrics.flatten`` of a config as written (plain dicts), into ``out``."""
    if type(config) is not dict:
        out.extend((prefix + k, v) for k, v in flatten(config).items())
        return
    for key, value in config.items():
        name = prefix + (key if type(key) is str else json.dumps(key))  # a key as JSON writes it
        if type(value) is dict and value:
            _flat(value, name + "/", out)
        else:
            out.append((name, value))


# -- writing -------------------------------------------------------------------------------------
class _Table:
    """Rows as columns while they are built: name -> values (``MISSING`` where a row lacks it)."""

    def __init__(self, count: int = 0, columns: dict[str, list[Any]] | None = None):
        self.count, self.columns = count, columns if columns is not None else {}

    def append(self, row: dict[str, Any]) -> None:
        for name, values in self.columns.items():
            values.append(row.get(name, MISSING))
        for name, value in row.items():
            if name not in self.columns:
                self.columns[name] = [MISSING] * self.count + [value]
        self.count += 1

    def put(self, index: int, row: dict[str, Any]) -> None:
        if index >= self.count:
            self.append(row)
            return
        for name, values in self.columns.items():
            values[index] = row.get(name, MISSING)
        for name, value in row.items():
            if name not in self.columns:
                self.columns[name] = [MISSING] * self.count
                self.columns[name][index] = value


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


def write_rows(
    exp: ExperimentDir,
    generation: str,
    seq: int,
    columns: dict[str, list[Any]],
    count: int,
    escaped: Iterable[int],
) -> None:
    """Write the view of the base of ``generation`` (snapshot ``seq``): ``count`` rows as
    ``columns`` (``_offset``/``_length`` included). Not synced: a view lost to a crash reads as
    damaged, and the readers read the whole state instead."""
    names = list(columns)
    head = {
        "format": FORMAT,
        "version": VERSION,
        "generation": generation,
        "seq": seq,
        "count": count,
        "columns": names,
        "escaped": sorted(escaped),
    }
    lines = [json.dumps(head).encode()]
    for name in names:
        values = columns[name]
        lines.append(_encode(values))
    write_bytes_atomic(rows_path(exp), b"\n".join(lines) + b"\n", fsync=False)


def rows_of_records(
    records: list[dict[str, Any]], lines: list[bytes] | None = None
) -> tuple[_Table, set[int]]:
    """The rows of ``records`` (in order) and the rows whose text (``lines``, as written)
    holds an escaped control character."""
    columns = {name: [r.get(name, default) for r in records] for name, default in FIELDS.items()}
    columns["error"] = [_last_line(e) if e else e for e in columns["error"]]
    count, orders = len(records), {}
    keys: list[Any] = [MISSING] * count
    extra: dict[str, list[Any]] = {}  # every column, in the order they first appear
    for index, record in enumerate(records):  # no object per record outlives its turn
        names = []
        for name, value in _extras(record):
            values = extra.get(name)
            if values is None:
                values = extra[name] = [MISSING] * count
            values[index] = value
            names.append(name)
        order = tuple(names)
        keys[index] = orders.setdefault(order, order)
    columns.update(extra)
    columns[KEYS] = keys
    table = _Table(count, columns)
    escaped = {i for i, line in enumerate(lines or ()) if _escapes(line)}
    return table, escaped


def _escapes(line: bytes) -> bool:
    return (b"\\" in line or b"\xc2" in line) and _ESCAPED_CONTROL.search(line) is not None


def save_rows(
    exp: ExperimentDir,
    generation: str,
    seq: int,
    table: _Table,
    escaped: set[int],
    positions: list[tuple[int, int]],
) -> None:
    """``write_rows`` of ``table`` with each row's line in the base; on any failure the view
    is removed (readers read the whole state then) and the error only logged: the view never
    fails a compaction."""
    try:
        columns = dict(table.columns)
        columns[OFFSET] = [p[0] for p in positions]
        columns[LENGTH] = [p[1] for p in positions]
        write_rows(exp, generation, seq, columns, table.count, escaped)
    except Exception as exc:  # a record of an odd shape, a full disk: the view is only a cache
        log.warning("Could not write %s (%s); displays read the whole state.", rows_path(exp), exc)
        remove_rows(exp)


def remove_rows(exp: ExperimentDir) -> None:
    """Remove the view (before a base it would not describe replaces the old one)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(rows_path(exp))


def carry_rows(
    exp: ExperimentDir,
    continues: str,
    old_seq: int,
    generation: str,
    seq: int,
    lines: list[bytes],
    changed: set[int],
    positions: list[tuple[int, int]],
) -> None:
    """The view of a base that ``merge_base`` wrote from the base of ``continues`` (snapshot
    ``old_seq``) and the journal: that base's view with the ``changed`` rows (and the new ones)
    taken from their lines; every line parsed when that view is missing or of another base."""
    try:
        old = _read_view(exp)
        if old is None or old[0].get("generation") != continues or old[0].get("seq") != old_seq:
            records = [json.loads(line) for line in lines]
            table, escaped = rows_of_records(records, lines)
        else:
            head, raw = old
            count = int(head["count"])
            table = _Table(
                count,
                {
                    n: _decode(raw[i], n == KEYS)
                    for i, n in enumerate(head["columns"])
                    if n not in (OFFSET, LENGTH)
                },
            )
            escaped = set(head.get("escaped", []))
            for index in sorted(changed | set(range(count, len(lines)))):
                table.put(index, row_of(json.loads(lines[index])))
                escaped.discard(index)
                if _escapes(lines[index]):
                    escaped.add(index)
        if table.count != len(lines):
            raise ValueError(f"{table.count} rows for {len(lines)} trials")
    except Exception as exc:
        log.warning("Could not write %s (%s); displays read the whole state.", rows_path(exp), exc)
        remove_rows(exp)
        return
    save_rows(exp, generation, seq, table, escaped, positions)


def _read_view(exp: ExperimentDir) -> tuple[dict[str, Any], list[bytes]] | None:
    """The view's header and its column lines; None when missing, damaged or of another version."""
    try:
        raw = read_regular_bytes(rows_path(exp), MAX_STATE_BYTES)
        lines = raw.split(b"\n")
        head = json.loads(lines[0])
    except (OSError, ValueError):
        return None
    if (
        not isinstance(head, dict)
        or head.get("format") != FORMAT
        or head.get("version") != VERSION
        or not isinstance(head.get("columns"), list)
        or len(lines) < len(head["columns"]) + 2
    ):
        return None
    return head, lines[1 : 1 + len(head["columns"])]
