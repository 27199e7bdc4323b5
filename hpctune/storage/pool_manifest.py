"""The pool manifest: what each task of a pool array is to do (``pool/arrays/<uid>.tasks``).

The pool backend writes it before its ``sbatch``; each task reads its own line, picked by
``SLURM_ARRAY_TASK_ID`` (``python -m hpctune.pool EXP_DIR --manifest FILE``). A line is one
JSON record, ``{"v": MANIFEST_VERSION, "shape", "idle_s", "start_method", "time_min",
"signal_lead_s", "slots"}``; ``write_manifest`` and ``read_manifest`` are its writer and reader.

Version 1, written by hpctune before the manifest had a version, is the same six fields as a
positional line: ``<shape> <idle_s> <start_method> <time_min> <signal_lead_s> <slots>``. The
reader still takes it, so that a pool array queued (or requeued) before an upgrade starts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpctune.errors import ExperimentStateError
from hpctune.storage.atomic import write_bytes_atomic
from hpctune.storage.events import VERSION, check_version
from hpctune.storage.pool_queue import check_shape

#: the version this hpctune writes (1: the positional line, still read)
MANIFEST_VERSION = 2


@dataclass(frozen=True)
class PoolManifest:
    """One pool task's instructions."""

    shape: str  #: the resource shape whose queue it serves (``pool_queue.shape_key``)
    idle_s: float  #: it exits after this long with nothing to run (``SlurmConfig(pool_idle_s)``)
    start_method: str  #: how it starts each run's process: "fork" or "spawn" (``pool/child``)
    time_min: int  #: its Slurm time limit, in minutes
    signal_lead_s: int  #: the time-limit warning's lead: no run starts closer to the limit
    slots: int  #: how many runs it holds at once
    version: int = MANIFEST_VERSION


_FIELDS = ("shape", "idle_s", "start_method", "time_min", "signal_lead_s", "slots")


def write_manifest(path: str | Path, manifest: PoolManifest, tasks: int) -> None:
    """The manifest of an array of ``tasks`` tasks, each given ``manifest``."""
    record = {VERSION: MANIFEST_VERSION, **{name: getattr(manifest, name) for name in _FIELDS}}
    line = json.dumps(record, sort_keys=True)
    write_bytes_atomic(path, ("\n".join([line] * tasks) + "\n").encode(), fsync=False)


def read_manifest(path: str | Path, task_index: int) -> PoolManifest:
    """Task ``task_index``'s line of the manifest at ``path``.

    Raises SchemaError for a manifest of a newer hpctune, ExperimentStateError for a missing
    line or one that is not a manifest record.
    """
    lines = Path(path).read_text().splitlines()
    if not 0 <= task_index < len(lines):
        raise ExperimentStateError(f"{path} has {len(lines)} task lines, none for task {task_index}: "
                                   "the pool array was submitted with another manifest; cancel it.")
    line = lines[task_index].strip()
    try:
        return _from_json(line, path) if line.startswith("{") else _from_positional(line)
    except (TypeError, ValueError, KeyError) as exc:
        raise ExperimentStateError(f"line {task_index + 1} of {path} is not a pool manifest record "
                                   f"({exc}): cancel that pool array; the driver submits a new one.") from exc


def _from_json(line: str, path: str | Path) -> PoolManifest:
    data: dict[str, Any] = json.loads(line)
    version = check_version(data.get(VERSION), MANIFEST_VERSION, path, "pool manifest")
    return _typed(*(data[name] for name in _FIELDS), version=version)


def _from_positional(line: str) -> PoolManifest:
    """Version 1: the six fields in order, separated by spaces."""
    fields = line.split()
    if len(fields) != len(_FIELDS):
        raise ValueError(f"{len(fields)} fields, not {len(_FIELDS)}")
    return _typed(*fields, version=1)


def _typed(shape: Any, idle_s: Any, start_method: Any, time_min: Any, signal_lead_s: Any, slots: Any,
           version: int) -> PoolManifest:
    return PoolManifest(check_shape(str(shape)), float(idle_s), str(start_method), int(time_min),
                        int(signal_lead_s), int(slots), version)
