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

import contextlib
import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from hpctune.core.metrics import flatten
from hpctune.storage.atomic import write_bytes_atomic
from hpctune.storage.experiment import STATE_ROWS_FILE, ExperimentDir
from hpctune.storage.journal import _ESCAPED_CONTROL, _HEAVY, MAX_STATE_BYTES
from hpctune.storage.secure import read_regular_bytes
from hpctune.storage.trial_rows_codec import MISSING, _decode, _encode

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
    records: Sequence[dict[str, Any]], lines: list[bytes] | None = None
) -> tuple[_Table, set[int]]:
    """The rows of ``records`` (in order; a sequence that may build each record as it is
    asked for) and the rows whose text (``lines``, as written) holds an escaped control
    character. No object per record outlives its turn: a background thread that made
    100,000 of them set off collections over the driver's whole heap that stalled it."""
    count, orders = len(records), {}
    columns: dict[str, list[Any]] = {name: [MISSING] * count for name in FIELDS}
    columns[KEYS] = [MISSING] * count
    fields = [(name, default, columns[name]) for name, default in FIELDS.items()]
    for index in range(count):
        record = records[index]
        for name, default, values in fields:
            values[index] = record.get(name, default)
        names = []
        for name, value in _extras(record):
            values = columns.get(name)
            if values is None:
                values = columns[name] = [MISSING] * count
            values[index] = value
            names.append(name)
        order = tuple(names)
        columns[KEYS][index] = orders.setdefault(order, order)
    columns["error"] = [_last_line(e) if e else e for e in columns["error"]]
    keys = columns.pop(KEYS)
    columns[KEYS] = keys  # after the config and result columns, as ``row_of`` orders them
    escaped = {i for i, line in enumerate(lines or ()) if _escapes(line)}
    return _Table(count, columns), escaped


class _Parsed(Sequence):
    """Base lines as records, each parsed when asked for (up to its metric analysis)."""

    def __init__(self, lines: list[bytes]):
        self.lines = lines

    def __len__(self) -> int:
        return len(self.lines)

    def __getitem__(self, index: Any) -> Any:
        line = self.lines[index]
        cut = line.rfind(_HEAVY)
        if cut > 0:
            with contextlib.suppress(ValueError):
                return json.loads(line[:cut] + b"}")
        return json.loads(line)


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
            table, escaped = rows_of_records(_Parsed(lines), lines)
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
