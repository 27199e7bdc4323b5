"""The names of the worker pool's queue files (``storage/pool_queue``): a run's number, its
trial, its pool task and its bucket, written into names and read back out of listings. A
queued run's record is its name (``<N>.<trial>``), so the grammar here is the record's."""

from __future__ import annotations

import os
import re
from pathlib import Path

from hpctune.core.ids import check_task_id
from hpctune.errors import ConfigError, UnsafeFileError
from hpctune.storage.secure import check_component

SHAPE = re.compile(r"s[0-9a-f]{10}", re.ASCII)
BUCKET = re.compile(r"b[0-9]{8,}", re.ASCII)
NUMBER = re.compile(r"[0-9]+", re.ASCII)
#: runs per directory of a shape's queue (``queue/<key>/b<M>/``)
QUEUE_BUCKET = 256
#: the longest trial id a run's names carry: with its number and its pool task, a claim's name
#: stays within the 255 bytes of a file name
MAX_TRIAL_BYTES = 200


def check_shape(key: str) -> str:
    """``key`` if it is a shape key as ``pool_queue.shape_key`` makes them (a directory name)."""
    if not isinstance(key, str) or not SHAPE.fullmatch(key):
        raise ConfigError(f"{key!r} is not a pool shape key (s + 10 hex digits).")
    return key


def check_run_trial(trial_id: str) -> str:
    """``trial_id`` if a run's names can carry it (one path component of at most
    ``MAX_TRIAL_BYTES`` bytes); the driver checks every trial of a launch before it writes."""
    check_component(trial_id, "trial id")
    if len(trial_id.encode()) > MAX_TRIAL_BYTES:
        raise ConfigError(f"trial id {trial_id[:40]!r}... is {len(trial_id.encode())} bytes: the worker "
                          f"pool carries a trial id of at most {MAX_TRIAL_BYTES} in its queue's file "
                          "names. Fix: a shorter trial id, or reuse_actors=False (a job per trial).")
    return trial_id


def is_run_trial(text: str) -> bool:
    """True if ``text``, read out of a name, is a trial id a run's names carry."""
    try:
        check_run_trial(text)
    except (ConfigError, UnsafeFileError):
        return False
    return True


def seq_name(seq: int) -> str:
    """A run's number as every name spells it (``00000012``: listings sort in run order)."""
    return f"{seq:08d}"


def run_name(seq: int, trial_id: str | None) -> str:
    """A queued or dropped run's name: ``<N>.<trial>`` (``<N>``: a run of before)."""
    return seq_name(seq) if trial_id is None else f"{seq_name(seq)}.{trial_id}"


def run_of(name: str) -> tuple[int, str | None] | None:
    """(run, trial) of a queued or dropped run's name (trial None: a run of before, whose
    trial is in ``runs/<N>.json``); None for a name that is no run."""
    seq, dot, trial = name.partition(".")
    if not NUMBER.fullmatch(seq):
        return None
    if not dot:
        return int(seq), None
    return (int(seq), trial) if is_run_trial(trial) else None


def bucket_of(seq: int) -> str:
    """The directory of a shape's queue that holds run ``seq``: named by its first run."""
    return f"b{seq - seq % QUEUE_BUCKET:08d}"


def buckets_of(names: list[str]) -> list[str]:
    """The bucket directories among a shape queue's ``names``, oldest first."""
    return sorted((name for name in names if BUCKET.fullmatch(name)), key=lambda name: int(name[1:]))


def claim_name(seq: int, task: str, trial_id: str | None) -> str:
    """A claim's name in ``claimed/``: the run, the pool task that claimed it, the run's trial
    (``<N>.<task>``: a run of before)."""
    return f"{seq_name(seq)}.{check_task_id(task)}" + ("" if trial_id is None else f".{trial_id}")


def claim_of(name: str) -> tuple[int, str, str | None] | None:
    """(run, pool task, trial) of a claim's name in ``claimed/`` (trial None: ``<N>.<task>``, a
    claim of before); None for a pool task's directory (the layout before) or a name that is
    no claim."""
    seq, dot, rest = name.partition(".")
    if not dot or not NUMBER.fullmatch(seq):
        return None
    task, dot, trial = rest.partition(".")
    try:
        check_task_id(task)
    except ConfigError:
        return None
    if not dot:
        return int(seq), task, None
    return (int(seq), task, trial) if is_run_trial(trial) else None


def seqs_in(directory: Path) -> list[int]:
    """The run numbers named in ``directory``, lowest (oldest) first."""
    return sorted(int(n.partition(".")[0]) for n in listdir(directory) if NUMBER.fullmatch(n.partition(".")[0]))


def runs_in(directory: Path) -> list[tuple[int, str | None, str]]:
    """(run, trial, name) of every run named in a bucket or in ``dropped/``, oldest first."""
    found = [(*run, name) for name in listdir(directory) if (run := run_of(name)) is not None]
    return sorted(found, key=lambda entry: entry[0])


def listdir(directory: Path) -> list[str]:
    """The names in ``directory``, sorted; none if it is missing (or is no directory)."""
    try:
        return sorted(os.listdir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
