"""The worker pool's JSON records (``hpctune.storage.pool_queue`` writes and reads them): a
run, how a run ended, its wall time; each carries ``"v": QUEUE_VERSION``."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpctune.errors import ExperimentStateError
from hpctune.storage.atomic import full_storage_is_clear, read_json, write_all, write_json_atomic
from hpctune.storage.events import VERSION, check_version
from hpctune.storage.secure import create_private

_MISSING = object()
#: the version of the queue's JSON records this hpctune writes (and the newest it reads);
#: 2: a run's end carries ``wall_s`` (a version-1 end has none: its trial is accounted from events)
QUEUE_VERSION = 2


@dataclass(frozen=True)
class RunRecord:
    """A run (``runs/<N>.json``, written once by the driver): which trial, which shape."""

    trial_id: str
    shape: str
    version: int = QUEUE_VERSION


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


def write_record(path: Path, fields: dict[str, Any], mode: int | None = None) -> None:
    """Write one of the queue's JSON records with this hpctune's version (``mode``: the file's,
    when the writer knows its directory's policy: no stat of the directory)."""
    write_json_atomic(path, {VERSION: QUEUE_VERSION, **fields}, fsync=False, mode=mode)


def write_new_record(path: Path, fields: dict[str, Any], mode: int) -> None:
    """``write_record`` for a record at a name never used before that nobody reads until a
    file written after it exists (a run's record, then its queue marker): created and written
    in place (one open, no temporary file and rename: a metadata operation fewer per run). A
    file already there is replaced as ``write_record`` replaces it; a record left empty by a
    writer killed before its write has no marker, and a reader takes it for unreadable."""
    data = json.dumps({VERSION: QUEUE_VERSION, **fields}, indent=1).encode()
    try:
        fd = create_private(path, os.O_WRONLY, mode)
    except FileExistsError:
        write_record(path, fields, mode)
        return
    try:
        with full_storage_is_clear(path):
            write_all(fd, data)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    os.close(fd)


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
