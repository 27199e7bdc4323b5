"""The row view's columns while they are built, in compact form (``storage.trial_rows`` writes
them): a column of floats is an ``array('d')``, of ints an ``array('q')``, of few distinct
values codes into a table, of many distinct texts one UTF-8 buffer; only a column of mixed
values is a list of objects. At 100,000 trials the columns as lists of objects were 100-160 MB
of the driver's peak while a base was written.

Each column gives back exactly the values it was given (``values``: what ``_encode`` of
``trial_rows_codec`` writes), one column at a time.
"""

from __future__ import annotations

from array import array
from itertools import accumulate
from typing import Any

from hpctune.storage.trial_rows_codec import MISSING, _binary, _encode, _key

#: distinct values a column keeps as codes; past it, texts go to a buffer, others to a list
MAX_CODES = 256
_INT64 = (-(2**63), 2**63)
#: the types whose ``_key`` is ``(type, value)``: looked up without the call
_PLAIN = frozenset({str, int, float, bool, type(None)})


class Column:
    """One column's values, row by row (``MISSING`` where a row lacks it).

    Modes: ``None`` (nothing but None and ``MISSING`` yet), ``"d"`` (floats), ``"q"`` (ints),
    ``"c"`` (codes into ``table``), ``"s"`` (texts in one buffer), ``"o"`` (a list of objects).
    In ``"d"``, ``"q"`` and ``"s"`` a row whose value is not of the column's type (None,
    ``MISSING``, a text put over another) is in ``holes``; any other value turns the column
    into a list (``"o"``), as it was before."""

    __slots__ = ("mode", "count", "data", "holes", "table", "index", "ends")

    def __init__(self, count: int = 0) -> None:
        self.mode: str | None = None
        self.count = 0
        self.data: Any = None
        self.holes: dict[int, Any] = {}
        self.table: list[Any] = []
        self.index: dict[Any, int] = {}
        self.ends: array | None = None
        for _ in range(count):
            self.append(MISSING)

    # -- adding ----------------------------------------------------------------------------------
    def append(self, value: Any) -> None:
        """``value`` as the next row's."""
        mode, kind = self.mode, type(value)
        if mode == "c":  # a plain value's key (``_key``) at once: a base's rows come one by one
            code = self.index.get((kind, value)) if kind in _PLAIN else None
            if code is None:
                code = self._code(value)
                if code is None:  # the column left its codes
                    self.append(value)
                    return
            self.data.append(code)
        elif mode == "o" or (mode == "d" and kind is float) or (
            mode == "q" and kind is int and _INT64[0] <= value < _INT64[1]
        ):
            self.data.append(value)
        elif mode == "s" and kind is str:
            self._add_text(value)
        elif value is MISSING or value is None:
            self.holes[self.count] = value
            if mode is not None:
                self._pad()
        elif mode is None:
            self._start(value)
            self.append(value)
            return
        else:
            self._to_list()
            self.data.append(value)
        self.count += 1

    def _fits(self, value: Any) -> bool:
        """Whether ``value`` (neither None nor ``MISSING``) is of the type of a ``"d"``,
        ``"q"`` or ``"s"`` column."""
        mode, kind = self.mode, type(value)
        if mode == "d":
            return kind is float
        if mode == "q":
            return kind is int and _INT64[0] <= value < _INT64[1]
        return mode == "s" and kind is str

    def put(self, row: int, value: Any) -> None:
        """``value`` as row ``row``'s (a row past the last: appended)."""
        if row >= self.count:
            while self.count < row:
                self.append(MISSING)
            self.append(value)
            return
        mode = self.mode
        if mode == "c":
            code = self._code(value)
            if code is None:  # the column left its codes
                self.put(row, value)
            else:
                self.data[row] = code
            return
        if mode == "o":
            self.data[row] = value
            return
        if mode == "s" and type(value) is str:
            self._put_text(row, value)
            return
        if value is MISSING or value is None:
            self.holes[row] = value
            if mode == "d" or mode == "q":
                self.data[row] = 0  # as ``_encode`` writes a row without a number
            return
        if mode is None:
            self._start(value)
            self.put(row, value)
            return
        if self._fits(value):
            self.data[row] = value
            self.holes.pop(row, None)
            return
        self._to_list()
        self.data[row] = value

    def _start(self, value: Any) -> None:
        """The mode for the column's first value that is neither None nor ``MISSING``."""
        kind = type(value)
        if kind is float:
            self.mode, self.data = "d", array("d", bytes(8 * self.count))
        elif kind is int and _INT64[0] <= value < _INT64[1]:
            self.mode, self.data = "q", array("q", bytes(8 * self.count))
        else:
            holes, self.holes = self.holes, {}
            self.mode, self.data = "c", array("H")
            for row in range(self.count):
                code = self._code(holes.get(row, MISSING))
                self.data.append(code)

    def _pad(self) -> None:
        """A placeholder in the buffer for the row just put in ``holes``."""
        if self.mode == "d" or self.mode == "q":
            self.data.append(0)
        else:  # "s": an empty text
            self.ends.append(len(self.data))

    def _code(self, value: Any) -> int | None:
        """The code of ``value`` in ``"c"``; None after the column left it (too many distinct
        values, or one with no key): the caller adds the value in the new mode."""
        try:
            key = _key(value) if value is not MISSING else MISSING
            code = self.index.get(key)
        except TypeError:  # a tuple holding something unhashable
            code, key = None, None
        if code is None:
            if key is None or len(self.table) >= MAX_CODES:
                self._leave_codes(value)
                return None
            code = self.index[key] = len(self.table)
            self.table.append(value)
        return code

    def _leave_codes(self, value: Any) -> None:
        values = self.values()
        texts = all(type(v) is str or v is None or v is MISSING for v in values)
        if texts and (type(value) is str or value is None or value is MISSING):
            self.mode, self.data, self.ends, self.table, self.index = (
                "s",
                bytearray(),
                array("q"),
                [],
                {},
            )
            self.count = 0
            for v in values:
                self.append(v)
        else:
            self.mode, self.data, self.table, self.index = "o", values, [], {}

    def _put_text(self, row: int, text: str) -> None:
        """``text`` as row ``row``'s in ``"s"``: the buffer's text when it is the same (a
        merge puts every changed trial's id and path again), else a hole; once the holes are
        an eighth of the rows, a new buffer."""
        start = self.ends[row - 1] if row else 0
        if self.data[start : self.ends[row]] == text.encode("utf-8", "surrogatepass"):
            self.holes.pop(row, None)
            return
        self.holes[row] = text
        if len(self.holes) > max(64, self.count // 8):
            values, self.data, self.ends, self.holes, self.count = (
                self.values(),
                bytearray(),
                array("q"),
                {},
                0,
            )
            for value in values:
                self.append(value)

    def _add_text(self, text: str) -> None:
        self.data += text.encode("utf-8", "surrogatepass")
        self.ends.append(len(self.data))

    def _to_list(self) -> None:
        self.data, self.mode, self.holes, self.ends = self.values(), "o", {}, None
        self.table, self.index = [], {}

    # -- reading ---------------------------------------------------------------------------------
    def values(self) -> list[Any]:
        """Every row's value, as given (a new list)."""
        mode, holes = self.mode, self.holes
        if mode == "o":
            return list(self.data)
        if mode == "c":
            table = self.table
            return [table[c] for c in self.data]
        if mode is None:
            return [holes.get(row, MISSING) for row in range(self.count)]
        if mode == "s":
            data, start, values = self.data, 0, []
            for end in self.ends:
                values.append(data[start:end].decode("utf-8", "surrogatepass"))
                start = end
        else:
            values = self.data.tolist()
        for row, value in holes.items():
            values[row] = value
        return values

    def encode(self) -> bytes:
        """The column's line (``trial_rows_codec._encode`` of ``values``)."""
        holes = self.holes
        if (
            self.mode in ("d", "q")
            and len(holes) < self.count
            and all(v is MISSING for v in holes.values())
        ):
            numbers = array(self.mode, self.data)
            return _binary("f8" if self.mode == "d" else "i8", numbers, sorted(self.holes))
        return _encode(self.values())

    @classmethod
    def of(cls, values: list[Any]) -> Column:
        """A column of ``values`` (a decoded line of the view): at once in the mode its values
        take, or one value at a time."""
        column = cls()
        kinds = set(map(type, values))
        holes = {row: v for row, v in enumerate(values) if v is MISSING or v is None}
        kinds.difference_update({type(MISSING), type(None)})
        if kinds == {float} or kinds == {int}:
            try:
                column.data = array(
                    "d" if float in kinds else "q",
                    [0 if v is MISSING or v is None else v for v in values],
                )
            except OverflowError:  # an int past int64: one at a time
                column.data = None
            else:
                column.mode, column.count, column.holes = (
                    "d" if float in kinds else "q",
                    len(values),
                    holes,
                )
                return column
        if kinds == {str} and len(values) - len(holes) > MAX_CODES:
            texts = [
                b"" if row in holes else v.encode("utf-8", "surrogatepass")
                for row, v in enumerate(values)
            ]
            column.mode, column.count, column.holes = "s", len(values), holes
            column.ends = array("q", accumulate(map(len, texts)))
            column.data = bytearray(b"".join(texts))
            return column
        for value in values:
            column.append(value)
        return column
