"""The worker pool's work queue on the shared filesystem (``TuneConfig(reuse_actors=True)``).

The driver enqueues one *run* per trial launch; pool tasks (Slurm array tasks running
``python -m hpctune.pool``) claim runs and start each in a fresh process. Every state
change is one ``rename`` of a small marker file, atomic on a POSIX filesystem, so a run
is in exactly one place and no two pool tasks can claim it::

    <exp>/pool/
      runs/<N>.json            the run: trial id and resource shape (written once; removed
                               when the run ended with its end in the trial's log)
      shapes/<key>.json        the resources of a shape (one pool array per shape)
      shapes/<key>.cap.json    the most trials of that shape that run at once
      queue/<key>/b<M>/<N>     queued for a pool task of that shape, in buckets of QUEUE_BUCKET runs
                               (``<M>``: its first run): a claim lists the oldest bucket, not every
                               queued run (10,000: 7-11 ms); ``queue/<key>/<N>`` (before) still read
      claimed/<N>.<task>       claimed by pool task <task> (``<array>_<index>``): one directory, so
                               a look at the queue is two listings however many tasks run (not 4
                               operations per task); ``claimed/<task>/<N>`` (before) still read
      ended/<N>.json           its process exited without its end in the trial's log (a crash)
      cancel/<N>               the driver asks the pool task to end a claimed run
      dropped/<N>              cancelled before a claim, or handed back from a pool task that died
      arrays/<uid>.tasks|.sbatch|.jobid   each pool array: its tasks' lines, script, job id
      walls/<task>.jsonl       each run's wall time, one line per run its pool task ran (accounting)

A run's job id, as the controller and the trial's events see it, is ``pool-<N>`` (``hpctune.core.ids``). The JSON
records (a run, a shape's cap, a run's end) carry ``"v": QUEUE_VERSION`` and are read and
written only here (``RunRecord``, ``RunEnd``); one without ``"v"`` (hpctune before records had
versions) is version 1, and one of a newer hpctune raises SchemaError. A shape's file holds
the resources dict itself, the same ``{"cpu": ..}`` a trial's resources are everywhere.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpctune.core.ids import check_task_id, is_pool_job, run_job_id, run_seq  # noqa: F401 - also pool/'s
from hpctune.errors import ConfigError, ExperimentStateError
from hpctune.storage.atomic import read_json, write_json_atomic
from hpctune.storage.events import VERSION, check_version
from hpctune.storage.experiment import POOL_DIR  # the one name, reserved there for trial dirs
from hpctune.storage.pool_records import (  # noqa: F401 - RunRecord, RunWall: also the queue's API
    QUEUE_VERSION,
    RunEnd,
    RunRecord,
    RunWall,
    read_record,
    write_new_record,
    write_record,
)
from hpctune.storage.secure import file_mode_for, make_private_dir

_SHAPE = re.compile(r"s[0-9a-f]{10}", re.ASCII)
_BUCKET = re.compile(r"b[0-9]{8,}", re.ASCII)
#: runs per directory of a shape's queue (``queue/<key>/b<M>/``)
QUEUE_BUCKET = 256
def node_label(node: str, task: str) -> str:
    """What the status table's node column shows for a run: the node and the pool task."""
    return f"{node} (pool task {task})" if node else f"pool task {task}"


def shape_key(resources: dict[str, Any]) -> str:
    """A short stable name for a resource shape (one pool array per shape)."""
    text = json.dumps(sorted(resources.items()), default=str)
    return "s" + hashlib.sha1(text.encode()).hexdigest()[:10]


def check_shape(key: str) -> str:
    """``key`` if it is a shape key as ``shape_key`` makes them (it becomes a directory name)."""
    if not isinstance(key, str) or not _SHAPE.fullmatch(key):
        raise ConfigError(f"{key!r} is not a pool shape key (s + 10 hex digits).")
    return key


@dataclass
class QueueView:
    """Where every unfinished run is, read in one pass over the queue's directories."""

    queued: dict[int, str] = field(default_factory=dict)  # run -> shape key
    claimed: dict[int, str] = field(default_factory=dict)  # run -> pool task


def _name(seq: int) -> str:
    return f"{seq:08d}"


def _bucket(seq: int) -> str:
    """The directory of a shape's queue that holds run ``seq``: named by its first run."""
    return f"b{seq - seq % QUEUE_BUCKET:08d}"


def _buckets(names: list[str]) -> list[str]:
    """The bucket directories among a shape queue's ``names``, oldest first."""
    return sorted((name for name in names if _BUCKET.fullmatch(name)), key=lambda name: int(name[1:]))


def _claim_name(seq: int, task: str) -> str:
    """A claim's name in ``claimed/``: the run, then the pool task that claimed it."""
    return f"{_name(seq)}.{check_task_id(task)}"


def _claim_of(name: str) -> tuple[int, str] | None:
    """(run, pool task) of a claim's name in ``claimed/``; None for a pool task's directory
    (the layout before) or a name that is no claim."""
    seq, dot, task = name.partition(".")
    if not dot or not seq.isdigit():
        return None
    try:
        return int(seq), check_task_id(task)
    except ConfigError:
        return None


def _seqs(directory: Path) -> list[int]:
    """The run numbers named in ``directory``, lowest (oldest) first."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted(int(n.partition(".")[0]) for n in names if n.partition(".")[0].isdigit())


class PoolQueue:
    """The pool's files in one experiment directory; every method is one or a few renames."""

    def __init__(self, experiment_root: str | Path):
        self.root = Path(experiment_root) / POOL_DIR
        self._run_mode: int | None = None  # of a run record: looked up at the first enqueue

    def _dir(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def ensure(self) -> None:
        """Create the queue's directories (0700 like the rest of the experiment)."""
        for name in ("runs", "shapes", "queue", "claimed", "ended", "cancel", "dropped", "arrays"):
            make_private_dir(self._dir(name))

    # -- the driver's side ---------------------------------------------------------------------
    def next_seq(self) -> int:
        """One more than the highest run number ever used (a restored driver never repeats one)."""
        return max(_seqs(self._dir("runs")), default=-1) + 1

    def write_shape(self, key: str, resources: dict[str, Any]) -> None:
        if not self._dir("shapes", f"{check_shape(key)}.json").exists():
            write_json_atomic(self._dir("shapes", f"{key}.json"), resources, fsync=False)
            make_private_dir(self._dir("queue", key))

    def write_cap(self, key: str, cap: int | None) -> None:
        """The most trials of a shape that may run at once (``max_concurrent_trials``; None: no
        cap), kept for a restored driver, which submits pool tasks before it launches anything."""
        write_record(self._dir("shapes", f"{check_shape(key)}.cap.json"), {"cap": cap})

    def read_cap(self, key: str) -> int | None:
        """The cap ``write_cap`` kept (None: none, or never written)."""
        record = read_record(self._dir("shapes", f"{check_shape(key)}.cap.json"))
        return None if record is None else record.get("cap")

    def read_shape(self, key: str) -> dict[str, Any]:
        """The resources of a shape (empty if unknown)."""
        return read_json(self._dir("shapes", f"{check_shape(key)}.json"), {})

    def enqueue(self, seq: int, trial_id: str, shape: str) -> str:
        """Record run ``seq`` of ``trial_id`` and queue it for a pool task of ``shape``."""
        if self._run_mode is None:
            self._run_mode = file_mode_for(self._dir("runs"))
        # written in place: nobody reads it before its marker, created below (``write_new_record``)
        write_new_record(self._dir("runs", f"{_name(seq)}.json"),
                         {"trial_id": trial_id, "shape": check_shape(shape)}, self._run_mode)
        marker, flags = self._queued_path(shape, seq), os.O_WRONLY | os.O_CREAT | os.O_EXCL
        for attempt in range(3):
            try:
                os.close(os.open(marker, flags, 0o600))
                break
            except FileNotFoundError:  # a new bucket (pool tasks never remove a shape's newest)
                if attempt == 2:
                    raise
                with contextlib.suppress(FileNotFoundError):  # an older hpctune's task removed it again
                    make_private_dir(marker.parent)
        return run_job_id(seq)

    def _queued_path(self, shape: str, seq: int) -> Path:
        """Where run ``seq`` waits in ``shape``'s queue."""
        return self._dir("queue", shape, _bucket(seq), _name(seq))

    def _queued(self, shape: str) -> list[int]:
        """Every run queued for ``shape``, oldest first (a listing per bucket)."""
        directory = self._dir("queue", shape)
        names = _listdir(directory)
        flat = [int(name) for name in names if name.isdigit()]  # queued by an hpctune before
        return sorted(flat) + [seq for name in _buckets(names) for seq in _seqs(directory / name)]

    def run(self, seq: int) -> RunRecord | None:
        """The run's record; None if there is none, or none that can be read (a pool task then
        drops the run: the driver retries its trial as for a job that died)."""
        try:
            record = read_record(self._dir("runs", f"{_name(seq)}.json"), "trial_id", "shape")
        except ExperimentStateError:
            return None
        return None if record is None else RunRecord(str(record["trial_id"]), str(record["shape"]),
                                                     record[VERSION])

    def runs(self) -> dict[int, RunRecord]:
        """Every run ever enqueued (and readable), oldest first."""
        found = {seq: self.run(seq) for seq in _seqs(self._dir("runs"))}
        return {seq: record for seq, record in found.items() if record is not None}

    def view(self) -> QueueView:
        """Queued and claimed runs: one listing per shape and one of the claims, whatever runs
        (plus one per pool task directory an hpctune before left)."""
        found = QueueView()
        for shape in _listdir(self._dir("queue")):
            for seq in self._queued(shape):
                found.queued[seq] = shape
        for name in _listdir(self._dir("claimed")):
            claim = _claim_of(name)
            if claim is not None:
                found.claimed[claim[0]] = claim[1]
            elif "." not in name:  # claimed/<task>/<N>: a pool task of an hpctune before
                for seq in _seqs(self._dir("claimed", name)):
                    found.claimed[seq] = name
        return found

    def cancel(self, seq: int) -> bool:
        """Take a queued run out of the queue (True), or ask the pool task that claimed it to
        end it (False; its process gets SIGTERM, as ``scancel`` would send)."""
        record = self.run(seq)
        if record is not None:
            for marker in (self._queued_path(record.shape, seq), self._dir("queue", record.shape, _name(seq))):
                with contextlib.suppress(FileNotFoundError):
                    os.rename(marker, self._dir("dropped", _name(seq)))
                    return True
        elif not self._dir("runs", f"{_name(seq)}.json").exists():
            return False  # its record went when it ended (``finish``): nothing left to cancel
        if self.ended(seq) is None:
            write_json_atomic(self._dir("cancel", _name(seq)), {}, fsync=False)
        return False

    def hand_back(self, seq: int, task: str) -> bool:
        """Move the claim of a pool task that is gone aside (it can never resume it); True if it
        was still there. The driver then retries the trial as for a job that died."""
        for claim in (self._dir("claimed", _claim_name(seq, task)), self._dir("claimed", task, _name(seq))):
            try:
                os.rename(claim, self._dir("dropped", _name(seq)))
            except (FileNotFoundError, NotADirectoryError):
                continue
            return True
        return False

    def ended(self, seq: int) -> RunEnd | None:
        """How the run's process ended, or None (still queued or running)."""
        record = read_record(self._dir("ended", f"{_name(seq)}.json"), "exit", "task")
        if record is None:
            return None
        wall = record.get("wall_s")
        return RunEnd(int(record["exit"]), str(record["task"]), record[VERSION],
                      float(wall) if isinstance(wall, (int, float)) and not isinstance(wall, bool) else None)

    def dropped(self, seq: int) -> bool:
        """True if the run was cancelled before a claim, or handed back from a dead pool task."""
        return self._dir("dropped", _name(seq)).exists()

    def array_paths(self, uid: str) -> tuple[Path, Path, Path]:
        """(manifest: one line per task, sbatch script, file holding the job id) of a pool array."""
        base = self._dir("arrays", uid)
        return base.with_suffix(".tasks"), base.with_suffix(".sbatch"), base.with_suffix(".jobid")

    def array_uids(self) -> list[str]:
        """The uids of every pool array submitted (or about to be: the manifest comes first)."""
        return [name[: -len(".tasks")] for name in _listdir(self._dir("arrays")) if name.endswith(".tasks")]

    # -- the pool task's side ------------------------------------------------------------------
    def claims(self, task: str) -> list[int]:
        """Runs pool task ``task`` claimed and has not finished (a requeued task resumes them)."""
        mine = {claim[0] for name in _listdir(self._dir("claimed"))
                if (claim := _claim_of(name)) is not None and claim[1] == check_task_id(task)}
        return sorted(mine | set(_seqs(self._dir("claimed", task))))

    def claim_next(self, task: str, shape: str) -> int | None:
        """Claim the oldest queued run of ``shape`` for ``task`` (one atomic rename); None if the
        queue is empty. A bucket found empty goes unless it is the shape's newest: the driver
        numbers runs upwards, so it adds only to the newest bucket, and removing that one could
        race with the driver's ``enqueue`` (it made the directory, then found it gone)."""
        check_task_id(task)
        directory = self._dir("queue", check_shape(shape))
        names = _listdir(directory)
        flat = sorted(int(name) for name in names if name.isdigit())  # queued by an hpctune before
        buckets = _buckets(names)
        for bucket in [""] * bool(flat) + buckets:
            seqs = _seqs(directory / bucket) if bucket else flat
            for seq in seqs:
                try:
                    os.rename(directory / bucket / _name(seq), self._dir("claimed", _claim_name(seq, task)))
                except FileNotFoundError:
                    continue  # another pool task was faster, or the driver cancelled it
                return seq
            if bucket and not seqs and bucket != buckets[-1]:
                with contextlib.suppress(OSError):  # not empty any more, or removed by another task
                    os.rmdir(directory / bucket)
        return None

    def cancel_requested(self, seq: int) -> bool:
        """True if the driver asked the pool task running ``seq`` to end it."""
        return self._dir("cancel", _name(seq)).exists()

    def finish(self, task: str, seq: int, exit_code: int, logged_end: bool = False,
               wall_s: float | None = None) -> None:
        """Record that the run's process exited, then drop the claim.

        ``logged_end``: the trial's result log holds the event that ended this run's job
        (complete, stopped, error...). The driver reads the log to the end before it asks how
        a job that left the queue ended, and a restore reads it too, so the run needs no
        record any more: no ``ended/<N>.json`` is written and ``runs/<N>.json`` goes (unless it
        is the newest run, which ``next_seq`` counts from): a finished trial keeps no file in
        the queue. A run that ended without such an event (a crash) keeps both, for the driver.

        ``wall_s``: how long its process ran, by the pool task's clock: the trial's share of
        the task's allocation. One line in the task's own ``walls/<task>.jsonl`` (one file per
        pool task, not per run), and ``wall_s`` in a crash's end record."""
        if wall_s is not None:
            self._append_wall(task, seq, wall_s)
        if not logged_end:
            fields: dict[str, Any] = {"exit": exit_code, "task": task}
            if wall_s is not None:
                fields["wall_s"] = round(float(wall_s), 3)
            write_record(self._dir("ended", f"{_name(seq)}.json"), fields)
        for path in (self._dir("claimed", _claim_name(seq, task)), self._dir("claimed", task, _name(seq)),
                     self._dir("cancel", _name(seq))):
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                path.unlink()
        # not the newest run: a newer record exists (one stat, most often), else a listing says
        if logged_end and (self._dir("runs", f"{_name(seq + 1)}.json").exists() or seq < self.next_seq() - 1):
            with contextlib.suppress(FileNotFoundError):
                self._dir("runs", f"{_name(seq)}.json").unlink()


    def _append_wall(self, task: str, seq: int, wall_s: float) -> None:
        """One line ``{"v", "run", "wall_s"}`` appended to the task's walls file (its one writer)."""
        directory = make_private_dir(self._dir("walls"))
        line = json.dumps({VERSION: QUEUE_VERSION, "run": seq, "wall_s": round(float(wall_s), 3)}) + "\n"
        fd = os.open(directory / f"{check_task_id(task)}.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def run_walls(self) -> dict[int, RunWall]:
        """Every run's measured wall time and the pool task that ran it (the pool's accounting):
        the tasks' walls files, and the end records of crashed runs. A torn or foreign line is
        skipped; a line of a newer hpctune raises SchemaError."""
        found: dict[int, RunWall] = {}
        for name in _listdir(self._dir("walls")):
            task = name[: -len(".jsonl")] if name.endswith(".jsonl") else ""
            if not task:
                continue
            try:
                text = (self._dir("walls") / name).read_text()
            except OSError:
                continue
            for line in text.splitlines():
                try:
                    record = json.loads(line)
                    check_version(record.get(VERSION, 1), QUEUE_VERSION, self._dir("walls") / name, "pool record")
                    found[int(record["run"])] = RunWall(task, float(record["wall_s"]))
                except (ValueError, KeyError, TypeError, AttributeError):
                    continue
        for seq in _seqs(self._dir("ended")):
            with contextlib.suppress(ExperimentStateError):
                end = self.ended(seq)
                if end is not None and end.wall_s is not None and seq not in found:
                    found[seq] = RunWall(end.task, end.wall_s)
        return found


def _listdir(directory: Path) -> list[str]:
    try:
        return sorted(os.listdir(directory))
    except FileNotFoundError:
        return []
