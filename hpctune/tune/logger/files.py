"""Ray's file loggers: ``JsonLoggerCallback`` (``result.json``) and ``CSVLoggerCallback``
(``progress.csv``), written live by the driver into each trial's directory.

``result.json`` holds one JSON object per line: the result as reported (nested), with the
trial's config (as ``params.json`` shows it). ``progress.csv`` holds one row per result with
every key flattened to ``a/b`` (the config is left out, as in Ray); a key that appears after
the first row adds a column: the file is then rewritten once, atomically, with the wider
header (Ray keeps the first row's columns and drops later keys).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from hpctune.core.metrics import flatten
from hpctune.storage.experiment import PROGRESS_CSV_FILE, RESULT_JSON_FILE, config_view
from hpctune.storage.user_files import first_and_last_line, read_text, replace_bytes
from hpctune.tune.logger.base import BatchedLoggerCallback

ITERATION = "training_iteration"


class JsonLoggerCallback(BatchedLoggerCallback):
    """Writes each trial's results to ``<trial dir>/result.json``, one JSON line per result."""

    def write(self, trial: Any, results: list[dict]) -> None:
        config = config_view(trial.config)
        lines = [json.dumps({**r, "config": config}, default=str) for r in results]
        self.append(trial, Path(trial.path) / RESULT_JSON_FILE, ("\n".join(lines) + "\n").encode())

    def logged_until(self, trial: Any) -> int | None:
        ends = first_and_last_line(Path(trial.path) / RESULT_JSON_FILE)
        if ends is None:
            return None
        try:
            value = json.loads(ends[1]).get(ITERATION)
        except (ValueError, AttributeError):
            return None
        return value if isinstance(value, int) else None


class CSVLoggerCallback(BatchedLoggerCallback):
    """Writes each trial's results to ``<trial dir>/progress.csv``, every key a column."""

    def __init__(self) -> None:
        super().__init__()
        self._columns: dict[str, list[str]] = {}

    def write(self, trial: Any, results: list[dict]) -> None:
        paths = self.__dict__.setdefault("_csv_paths", {})  # (a logger pickled before it: none)
        path = paths.get(trial.trial_id)
        if path is None:  # one Path a trial: made per write, it was a tenth of the logger's time
            path = paths[trial.trial_id] = Path(trial.path) / PROGRESS_CSV_FILE
        rows = [flatten({k: v for k, v in r.items() if k != "config"}) for r in results]
        columns = self._columns.get(trial.trial_id)
        if columns is None:
            columns = [] if self.is_new(trial) else self._header_on_disk(path)
        known = dict.fromkeys(columns)
        added = []
        for key in (k for row in rows for k in row):
            if key not in known:
                known[key] = None
                added.append(key)
        if columns and added:  # a new key: rewrite the file once with the wider header
            old = list(csv.DictReader(io.StringIO(read_text(path) or "")))
            data = _csv([*columns, *added], old + rows, header=True)
            self.forget(path)
            replace_bytes(path, data)
        else:
            self.append(trial, path, _csv(list(known), rows, header=not columns))
        self._columns[trial.trial_id] = list(known)

    def logged_until(self, trial: Any) -> int | None:
        ends = first_and_last_line(Path(trial.path) / PROGRESS_CSV_FILE)
        if ends is None or ends[0] == ends[1]:
            return None
        header, last = next(csv.reader([ends[0]])), next(csv.reader([ends[1]]), [])
        if ITERATION not in header or len(last) != len(header):
            return None
        value = last[header.index(ITERATION)]
        return int(value) if value.isdigit() else None

    def close_trial(self, trial: Any, failed: bool) -> None:
        self._columns.pop(trial.trial_id, None)
        self.__dict__.get("_csv_paths", {}).pop(trial.trial_id, None)

    @staticmethod
    def _header_on_disk(path: Path) -> list[str]:
        ends = first_and_last_line(path)
        return next(csv.reader([ends[0]]), []) if ends else []


def _csv(columns: list[str], rows: list[dict], header: bool) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()
