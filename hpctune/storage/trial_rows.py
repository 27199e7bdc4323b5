"""The trials' row view: the few fields the displays show, column by column, beside the base.

``hpctune status`` and ``hpctune trials`` show a few fields of every trial; parsing every
trial's whole record from ``state.json`` (about 2.6 KB a trial) costs seconds at 100,000
trials. Whenever the driver writes a base (``JournalWriter.compact``, and ``merge_base`` in the
background) it writes ``state.rows`` beside it: the display fields of each trial of that base
(``row_of``), one line per column, and where each trial's line lies in the base. A reader
(``trial_rows_read.read_rows``) parses only the columns it asks for, brings the rows up to date with the
journal's last line of each trial that changed since, and reads the base only for the few
trials whose whole record it needs (``TrialRows.record``).

One writer (``RowTable`` and ``save_rows``, row by row as ``JournalWriter.compact`` streams
the base; ``carry_rows`` after ``merge_base``), one reader
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

import contextlib
import json
import logging
import os
import stat
from array import array
from collections.abc import Iterable, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

from hpctune.core.metrics import flatten
from hpctune.storage.atomic import full_storage_is_clear, replacing, write_all
from hpctune.storage.experiment import STATE_ROWS_FILE, ExperimentDir
from hpctune.storage.journal import _ESCAPED_CONTROL, _HEAVY, MAX_STATE_BYTES
from hpctune.storage.secure import read_regular_bytes
from hpctune.storage.trial_rows_codec import MISSING, _binary, _decode
from hpctune.storage.trial_rows_columns import Column

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
class RowTable:
    """The view's rows while a base is written, one record at a time as it streams: compact
    columns (``trial_rows_columns.Column``), each row's place in the base as two arrays, and
    the rows whose text holds an escaped control character. No list of every record, and no
    object per record outlives its turn: a background thread that made 100,000 of them set
    off collections over the driver's whole heap that stalled it."""

    def __init__(self) -> None:
        self.count = 0
        self.columns: dict[str, Column] = {name: Column() for name in FIELDS}
        self.escaped: set[int] = set()
        self.offsets, self.lengths = array("q"), array("q")

    def add(self, record: dict[str, Any], line: bytes, offset: int) -> None:
        """The next row: ``record``, whose text ``line`` starts at ``offset`` in the base."""
        self.set(self.count, record, line)
        self.offsets.append(offset)
        self.lengths.append(len(line))

    def set(self, index: int, record: dict[str, Any], line: bytes) -> None:
        """Row ``index`` (a row past the last: added) from ``record`` and its text ``line``;
        raises for a record of the wrong shape (as building its ``Trial`` would)."""
        columns, seen = self.columns, []
        for name, default in FIELDS.items():
            value = record.get(name, default)
            if name == "error" and value:
                value = _last_line(value)
            columns[name].put(index, value)
        for name, value in _extras(record):
            column = columns.get(name)
            if column is None:
                column = columns[name] = Column(self.count)
            column.put(index, value)
            seen.append(name)
        keys = columns.get(KEYS)
        if keys is None:
            keys = columns[KEYS] = Column(self.count)
        keys.put(index, tuple(seen))
        if index < self.count:  # a row replaced: the columns its record lacks
            wanted = set(seen)
            for name, column in columns.items():
                if name not in FIELDS and name != KEYS and name not in wanted:
                    column.put(index, MISSING)
        self.count = max(self.count, index + 1)
        self.escaped.discard(index)
        if _escapes(line):
            self.escaped.add(index)

    def names(self) -> list[str]:
        """The columns in the view's order: the trial fields, the config and result columns,
        ``_keys`` (as ``row_of`` orders a row)."""
        return [n for n in self.columns if n != KEYS] + [KEYS]


def save_rows(exp: ExperimentDir, generation: str, seq: int, table: RowTable) -> None:
    """Write the view of the base of ``generation`` (snapshot ``seq``), one column at a time
    (each column's values as a list only while its line is made). Not synced: a view lost to
    a crash reads as damaged, and the readers read the whole state instead. On any failure the
    view is removed and the error only logged: the view never fails a compaction."""
    try:
        if len(table.offsets) != table.count:
            raise ValueError(f"{len(table.offsets)} places for {table.count} rows")
        names = table.names()
        head = {
            "format": FORMAT,
            "version": VERSION,
            "generation": generation,
            "seq": seq,
            "count": table.count,
            "columns": [*names, OFFSET, LENGTH],
            "escaped": sorted(table.escaped),
        }
        with (
            full_storage_is_clear(rows_path(exp)),
            replacing(rows_path(exp), fsync=False) as (fd, _),
        ):
            write_all(fd, json.dumps(head).encode() + b"\n")
            for name in names:
                column = table.columns[name]
                while column.count < table.count:
                    column.append(MISSING)
                write_all(fd, column.encode() + b"\n")
            for numbers in (table.offsets, table.lengths):
                write_all(fd, _binary("i8", array("q", numbers), []) + b"\n")
    except Exception as exc:  # a record of an odd shape, a full disk: the view is only a cache
        log.warning("Could not write %s (%s); displays read the whole state.", rows_path(exp), exc)
        remove_rows(exp)


def parse_display(line: bytes) -> dict[str, Any]:
    """A base line as a record, parsed up to its metric analysis (which no column holds)."""
    cut = line.rfind(_HEAVY)
    if cut > 0:
        with contextlib.suppress(ValueError):
            return json.loads(line[:cut] + b"}")
    return json.loads(line)


def _escapes(line: bytes) -> bool:
    return (b"\\" in line or b"\xc2" in line) and _ESCAPED_CONTROL.search(line) is not None


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
    lines: Sequence[bytes],
    changed: Iterable[int],
    offsets: array,
    lengths: array,
) -> None:
    """The view of a base that ``merge_base`` wrote from the base of ``continues`` (snapshot
    ``old_seq``) and the journal: that base's view with the ``changed`` rows (and the new ones)
    taken from their ``lines`` (read when asked for), each row at ``offsets``/``lengths`` in
    the new base; every line parsed when that view is missing or of another base."""
    try:
        table = _read_table(exp, continues, old_seq)
        if table is None:
            table, todo = RowTable(), range(len(lines))
        else:
            if table.count > len(lines):
                raise ValueError(f"{table.count} rows for {len(lines)} trials")
            old = table.count
            todo = chain((i for i in changed if i < old), range(old, len(lines)))
        for index in todo:
            line = lines[index]
            table.set(index, parse_display(line), line)
        if table.count != len(lines):
            raise ValueError(f"{table.count} rows for {len(lines)} trials")
        table.offsets, table.lengths = offsets, lengths
    except Exception as exc:
        log.warning("Could not write %s (%s); displays read the whole state.", rows_path(exp), exc)
        remove_rows(exp)
        return
    save_rows(exp, generation, seq, table)


def _read_table(exp: ExperimentDir, generation: str, seq: int) -> RowTable | None:
    """The view on disk as a ``RowTable`` (one column line read and decoded at a time), if it
    is the view of the base of ``generation`` at snapshot ``seq``; None when missing, damaged,
    of another version or of another base."""
    try:
        fd = os.open(rows_path(exp), os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return None
    with open(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_STATE_BYTES:
            return None  # not as hpctune writes it: the caller builds the view anew
        try:
            head = json.loads(f.readline())
        except ValueError:
            return None
        if not _is_head(head) or head.get("generation") != generation or head.get("seq") != seq:
            return None
        table = RowTable()
        table.count = int(head["count"])
        table.escaped = set(head.get("escaped", []))
        for name in head["columns"]:
            line = f.readline()
            if not line.endswith(b"\n"):
                return None  # damaged (cut short)
            if name not in (OFFSET, LENGTH):
                values = _decode(line, name == KEYS)
                if len(values) != table.count:
                    return None
                table.columns[name] = Column.of(values)
                del values
        for name in FIELDS:  # a view without one: none of its rows has it
            if table.columns[name].count != table.count:
                table.columns[name] = Column(table.count)
        return table


def _is_head(head: Any) -> bool:
    """Whether ``head`` is a view's first line, of this version."""
    return not (
        not isinstance(head, dict)
        or head.get("format") != FORMAT
        or head.get("version") != VERSION
        or not isinstance(head.get("columns"), list)
    )


def _read_view(exp: ExperimentDir) -> tuple[dict[str, Any], list[bytes]] | None:
    """The view's header and its column lines; None when missing, damaged or of another version."""
    try:
        raw = read_regular_bytes(rows_path(exp), MAX_STATE_BYTES)
        lines = raw.split(b"\n")
        head = json.loads(lines[0])
    except (OSError, ValueError):
        return None
    if not _is_head(head) or len(lines) < len(head["columns"]) + 2:
        return None
    return head, lines[1 : 1 + len(head["columns"])]
