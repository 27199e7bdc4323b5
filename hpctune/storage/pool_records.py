"""The worker pool's records (``hpctune.storage.pool_queue`` writes and reads them): a run's
claim, a run of an hpctune before (its JSON record), how a run ended, its wall time, the next
run number; each JSON record carries ``"v": QUEUE_VERSION``. A pool task's walls file is one
line per run it ran (``append_wall``, ``read_walls``)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpctune.errors import ExperimentStateError
from hpctune.storage.atomic import read_json, write_json_atomic
from hpctune.storage.events import VERSION, check_version
from hpctune.storage.pool_names import is_run_trial

_MISSING = object()
#: the version of the queue's JSON records this hpctune writes (and the newest it reads);
#: 2: a run's end carries ``wall_s`` (a version-1 end has none: its trial is accounted from events);
#: 3: a run's trial is in its queue marker's name (no ``runs/<N>.json``), its end carries
#: ``trial_id``, and ``next-run.json`` keeps the run numbers used (``pool_queue``'s docstring)
QUEUE_VERSION = 3


@dataclass(frozen=True)
class RunRecord:
    """A run queued by an hpctune before version 3 (``runs/<N>.json``, written once by its
    driver): which trial, which shape. Runs queued since carry their trial in their names."""

    trial_id: str
    shape: str
    version: int = QUEUE_VERSION


@dataclass(frozen=True)
class RunClaim:
    """A run a pool task claimed: what it needs to start the run and to drop its claim."""

    seq: int
    #: the run's trial; None for a run of an hpctune before whose ``runs/<N>.json`` cannot be read
    trial_id: str | None
    #: the claim's path under ``claimed/``: ``<N>.<task>.<trial>``, or (runs queued by an hpctune
    #: before version 3) ``<N>.<task>`` or ``<task>/<N>``
    name: str
    #: queued by an hpctune before version 3: its trial is in ``runs/<N>.json``
    legacy: bool = False


@dataclass(frozen=True)
class RunWall:
    """How long a run's process ran (``walls/<task>.jsonl``, written by its pool task)."""

    task: str  #: the pool task that ran it (``<array>_<index>``)
    wall_s: float


@dataclass(frozen=True)
class RunEnd:
    """How a run's process ended (``ended/<N>.json``, written by its pool task)."""

    exit_code: int
    task: str  #: the pool task that ran it (``<array>_<index>``)
    version: int = QUEUE_VERSION
    #: seconds its process ran, measured by the pool task: the trial's share of the task's
    #: allocation (x its resources); None in a version-1 record
    wall_s: float | None = None
    #: the run's trial (a restored driver adopts the run); None before version 3, or for a run
    #: whose record could not be read
    trial_id: str | None = None


def write_record(path: Path, fields: dict[str, Any], mode: int | None = None) -> None:
    """Write one of the queue's JSON records with this hpctune's version (``mode``: the file's,
    when the writer knows its directory's policy: no stat of the directory)."""
    write_json_atomic(path, {VERSION: QUEUE_VERSION, **fields}, fsync=False, mode=mode)


def read_run(path: Path) -> RunRecord | None:
    """A run's record of an hpctune before version 3 (``runs/<N>.json``); None if there is none,
    or none that can be read (a pool task then drops the run: the driver retries its trial as
    for a job that died)."""
    try:
        record = read_record(path, "trial_id", "shape")
    except ExperimentStateError:
        return None
    return None if record is None else RunRecord(str(record["trial_id"]), str(record["shape"]), record[VERSION])


def read_next_run(path: Path) -> int:
    """The next run number ``next-run.json`` keeps (0: none yet); ExperimentStateError if it holds none."""
    record = read_record(path, "next")
    reserved = record["next"] if record is not None else 0
    if not isinstance(reserved, int) or isinstance(reserved, bool) or reserved < 0:
        raise ExperimentStateError(f"{path} holds no run number ({reserved!r}): restore it, or move "
                                   "the experiment away.")
    return reserved


def write_end(path: Path, end: RunEnd) -> None:
    """How a run's process ended (``ended/<N>.json``), written by its pool task."""
    fields: dict[str, Any] = {"exit": end.exit_code, "task": end.task}
    if end.wall_s is not None:
        fields["wall_s"] = end.wall_s
    if end.trial_id is not None:
        fields["trial_id"] = end.trial_id
    write_record(path, fields)


def read_end(path: Path) -> RunEnd | None:
    """The end ``write_end`` wrote (None: none yet). SchemaError for a newer record,
    ExperimentStateError for one that is not a run's end."""
    record = read_record(path, "exit", "task")
    if record is None:
        return None
    wall, trial = record.get("wall_s"), record.get("trial_id")
    return RunEnd(int(record["exit"]), str(record["task"]), record[VERSION],
                  float(wall) if isinstance(wall, (int, float)) and not isinstance(wall, bool) else None,
                  trial if isinstance(trial, str) and is_run_trial(trial) else None)


def read_record(path: Path, *required: str) -> dict[str, Any] | None:
    """A JSON record of the queue with its version checked (``VERSION`` set: 1 if it had none),
    or None if there is none. SchemaError for a newer record, ExperimentStateError for a file
    that is not a JSON object holding the ``required`` fields."""
    try:
        data = read_json(path, _MISSING)
    except ValueError:
        data = None
    if data is _MISSING:
        return None
    if not isinstance(data, dict) or not all(name in data for name in required):
        raise ExperimentStateError(f"{path} is not an hpctune pool record (a JSON object with "
                                   f"{', '.join(required) or 'fields'}): remove it.")
    return {**data, VERSION: check_version(data.get(VERSION, 1), QUEUE_VERSION, path, "pool record")}


def append_wall(path: Path, seq: int, wall_s: float) -> None:
    """One line ``{"v", "run", "wall_s"}`` appended to a pool task's walls file (its one writer)."""
    line = json.dumps({VERSION: QUEUE_VERSION, "run": seq, "wall_s": round(float(wall_s), 3)}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def read_walls(path: Path, task: str) -> dict[int, RunWall]:
    """{run: RunWall} of the lines of pool task ``task``'s walls file. A torn or foreign line is
    skipped; a line of a newer hpctune raises SchemaError."""
    try:
        text = path.read_text()
    except OSError:
        return {}
    found = {}
    for line in text.splitlines():
        try:
            record = json.loads(line)
            check_version(record.get(VERSION, 1), QUEUE_VERSION, path, "pool record")
            found[int(record["run"])] = RunWall(task, float(record["wall_s"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return found
