"""The one reader of the trials' row view (``state.rows``; its format and writer:
``storage.trial_rows``): the view's columns, parsed on demand, brought up to date with the
journal's last line of each trial that changed since the base, and whole records read from
the base only for the rows a display shows."""

from __future__ import annotations

import contextlib
import json
import os
import stat
from pathlib import Path
from typing import Any

from hpctune.errors import ExperimentStateError
from hpctune.storage import journal
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.journal import _HEAVY, changed_trial_lines
from hpctune.storage.trial_rows import (
    KEYS,
    LENGTH,
    MISSING,
    OFFSET,
    ROWS_FILE,
    _decode,
    _escapes,
    _read_view,
    row_of,
)


class TrialRows:
    """The trials as rows (creation order, as ``read_trial_state`` gives them): ``column``
    parses one column on demand, with the journal's changes applied; ``record`` is one
    trial's record for display (without its metric analysis unless the journal had it)."""

    def __init__(self, head: dict[str, Any], raw: list[bytes], base: Any):
        self._raw = dict(zip(head["columns"], raw, strict=True))
        self._parsed: dict[str, list[Any]] = {}
        self._base = base
        self.base_count = int(head["count"])
        self.count = self.base_count
        self.escaped: set[int] = set(head.get("escaped", []))
        #: rows the journal changed since the base: index -> its last line there, its row
        self.lines: dict[int, bytes] = {}
        self.rows: dict[int, dict[str, Any]] = {}
        self._records: dict[int, dict[str, Any]] = {}
        self.problems: list[str] = []
        self._names: tuple[int, dict[str, None]] | None = None

    @property
    def names(self) -> dict[str, None]:
        """Every column's name: the view's, then those only the journal's rows have."""
        if self._names is None or self._names[0] != len(self.rows):
            names = dict.fromkeys(n for n in self._raw if n not in (OFFSET, LENGTH))
            for row in self.rows.values():
                names.update(dict.fromkeys(row))
            self._names = (len(self.rows), names)
        return self._names[1]

    def column(self, name: str) -> list[Any]:
        """Every row's value of ``name`` (``MISSING`` where a row lacks it)."""
        values = self._parsed.get(name)
        if values is None:
            line = self._raw.get(name)
            values = (
                _decode(line, name == KEYS) if line is not None else [MISSING] * self.base_count
            )
            values.extend([MISSING] * (self.count - self.base_count))
            for index, row in self.rows.items():
                values[index] = row.get(name, MISSING)
            self._parsed[name] = values
        return values

    def record(self, index: int) -> dict[str, Any]:
        """Row ``index``'s trial record: the journal's (whole), else its line of the base
        (without the metric analysis, as ``read_trial_state(view=True)`` reads it)."""
        if index in self.lines:
            if index not in self._records:
                self._records[index] = json.loads(self.lines[index])["trial"]
            return self._records[index]
        offset, length = self.column(OFFSET)[index], self.column(LENGTH)[index]
        line = os.pread(self._base.fileno(), length, offset)
        cut = line.find(_HEAVY)
        record = None
        if cut > 0:
            try:
                record = json.loads(line[:cut] + b"}")
            except ValueError:  # the marker was inside a value: read it whole
                record = None
        record = record if record is not None else json.loads(line)
        if record.get("trial_id") != self.column("trial_id")[index]:
            raise ExperimentStateError(
                f"{self._base.name} does not match {ROWS_FILE} (row {index})."
            )
        return record

    def analysis(self, index: int) -> dict[str, Any]:
        """The metric analysis of a row the journal changed (its record's last field)."""
        line = self.lines[index]
        cut = line.find(_HEAVY)
        if cut > 0 and line.endswith(b"}}"):
            with contextlib.suppress(ValueError):
                found = json.loads(line[cut + len(_HEAVY) : -2])
                if isinstance(found, dict):
                    return found
        return self.record(index).get("metric_analysis") or {}


def read_rows(exp: ExperimentDir) -> TrialRows | None:
    """The trials' rows as of the last snapshot (the view, with the journal applied); None
    when there is no view of the current base (missing, damaged, of another base or version)
    or the journal holds a line that only a full read can judge: read the whole state then."""
    view = _read_view(exp)
    if view is None:
        return None
    head, raw = view
    try:
        base = _open_base(exp.state_path)
    except OSError:
        return None
    try:
        top = _base_head(base)
    except (OSError, ValueError):
        base.close()
        return None
    if (
        top is None
        or top.get("format") != journal.FORMAT
        or top.get("version") != journal.VERSION
        or str(top.get("generation")) != str(head.get("generation"))
        or top.get("seq") != head.get("seq")
    ):
        base.close()
        return None
    rows = TrialRows(head, raw, base)
    changed = changed_trial_lines(exp, journal._journal_after(top))
    if changed is None:
        base.close()
        return None
    lines, rows.problems = changed
    if lines:
        index = {trial_id: i for i, trial_id in enumerate(rows.column("trial_id"))}
        rows._parsed.clear()
        for trial_id, line in lines.items():
            at = index.get(trial_id)
            if at is None:
                at = index[trial_id] = rows.count
                rows.count += 1
            rows.lines[at] = line
            rows.rows[at] = row_of(_display_part(line))
            rows.escaped.discard(at)
            if _escapes(line):
                rows.escaped.add(at)
    return rows


def _display_part(line: bytes) -> dict[str, Any]:
    """A journal line's trial record up to its metric analysis (``append`` writes it last):
    cut at its last mention, every field before it is whole; the line whole otherwise."""
    cut = line.rfind(_HEAVY)
    if cut > 0:
        with contextlib.suppress(ValueError):
            record = json.loads(line[:cut] + b"}}")["trial"]
            if isinstance(record, dict):
                return record
    return json.loads(line)["trial"]


def _open_base(path: Path) -> Any:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path} is not a regular file")
    return open(fd, "rb")


def _base_head(base: Any) -> dict[str, Any] | None:
    """The base's first line (its header, when ``compact`` or ``merge_base`` wrote it)."""
    data = os.pread(base.fileno(), 1 << 20, 0)
    end = data.find(b"\n")
    if end < 0 or not data[:end].endswith(b'"trials": ['):
        return None
    top = json.loads(data[:end] + b"]}")
    return top if isinstance(top, dict) else None
