"""The worker pool's work queue on the shared filesystem (``TuneConfig(reuse_actors=True)``).

The driver enqueues one *run* per trial launch; pool tasks (Slurm array tasks running
``python -m hpctune.pool``) claim runs and start each in a fresh process. Every state
change is one ``rename`` of a small marker file, atomic on a POSIX filesystem, so a run
is in exactly one place and no two pool tasks can claim it::

    <exp>/pool/
      next-run.json            the run numbers used: ``{"v", "next"}``, written once per launch
                               (a batch of runs) before their markers: a restored driver never
                               repeats a number, even of a run that ended and left no file
      shapes/<key>.json        the resources of a shape (one pool array per shape)
      shapes/<key>.cap.json    the most trials of that shape that run at once
      queue/<key>/b<M>/<N>.<trial>   run <N> of trial <trial>, queued for a pool task of that shape,
                               in buckets of QUEUE_BUCKET runs (``<M>``: its first run): a claim
                               lists the oldest bucket, not every queued run (10,000: 7-11 ms)
      claimed/<N>.<task>.<trial>   claimed by pool task <task> (``<array>_<index>``): one directory,
                               so a look at the queue is two listings however many tasks run
      ended/<N>.json           its process exited without its end in the trial's log (a crash):
                               exit code, pool task, wall time, trial
      cancel/<N>               the driver asks the pool task to end a claimed run
      dropped/<N>.<trial>      cancelled before a claim, or handed back from a pool task that died
      arrays/<uid>.tasks|.sbatch|.jobid   each pool array: its tasks' lines, script, job id
      walls/<task>.jsonl       each run's wall time, one line per run its pool task ran (accounting)

A run's record is its marker's name: queueing a run is one metadata operation, the marker
created with ``O_EXCL`` under its full name, so a pool task that lists the bucket sees the
whole record or nothing (a record in the file could be claimed by a ``rename`` between its
create and its write). A claim and a drop are renames that keep the trial in the new name; a
pool task reads the trial from the name it claimed, the shape is the queue directory it claims
from. A trial id is carried if it is one path component of at most ``MAX_TRIAL_BYTES`` bytes
(hpctune's own are ``<8 hex>_<NNNNN>``); ``check_run_trial`` refuses another before any write.
The driver's ``next_seq`` is the highest of ``next-run.json`` and the numbers in the names; a
restore adopts the trials in the queued, claimed and dropped names and in the end records; a
cancel finds a queued marker by listing the run's bucket in each shape (a few).

Before (still read: an experiment of an hpctune before resumes and runs): ``runs/<N>.json``
(a run's trial and shape) with the empty marker ``<N>`` (``dropped/<N>``), claims
``claimed/<N>.<task>`` or ``claimed/<task>/<N>``, runs queued flat in ``queue/<key>/<N>``; such a
run's record goes when it ended with its end in its log, unless it is the newest.

A run's job id, as the controller and the trial's events see it, is ``pool-<N>``
(``hpctune.core.ids``). The JSON records carry ``"v": QUEUE_VERSION`` and are read and written
only here and in ``pool_records``; one without ``"v"`` is version 1, one of a newer hpctune
raises SchemaError. A shape's file holds the resources dict itself (``{"cpu": ..}``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpctune.core.ids import check_task_id, is_pool_job, run_job_id, run_seq  # noqa: F401 - also pool/'s
from hpctune.errors import ExperimentStateError
from hpctune.storage.atomic import read_json, write_json_atomic
from hpctune.storage.experiment import POOL_DIR  # the one name, reserved there for trial dirs
from hpctune.storage.pool_names import (  # noqa: F401 - QUEUE_BUCKET, check_run_trial, check_shape: also the queue's API
    NUMBER,
    QUEUE_BUCKET,
    bucket_of,
    buckets_of,
    check_run_trial,
    check_shape,
    claim_name,
    claim_of,
    listdir,
    run_name,
    runs_in,
    seq_name,
    seqs_in,
)
from hpctune.storage.pool_records import (  # noqa: F401 - RunRecord, RunWall: also the queue's API
    QUEUE_VERSION,
    RunClaim,
    RunEnd,
    RunRecord,
    RunWall,
    append_wall,
    read_end,
    read_next_run,
    read_record,
    read_run,
    read_walls,
    write_end,
    write_record,
)
from hpctune.storage.secure import file_mode_for, make_private_dir

#: the run numbers used (``{"v", "next"}``), in ``pool/``
NEXT_RUN_FILE = "next-run.json"


def node_label(node: str, task: str) -> str:
    """What the status table's node column shows for a run: the node and the pool task."""
    return f"{node} (pool task {task})" if node else f"pool task {task}"


def shape_key(resources: dict[str, Any]) -> str:
    """A short stable name for a resource shape (one pool array per shape)."""
    text = json.dumps(sorted(resources.items()), default=str)
    return "s" + hashlib.sha1(text.encode()).hexdigest()[:10]


@dataclass
class QueueView:
    """Where every unfinished run is, read in one pass over the queue's directories."""

    queued: dict[int, str] = field(default_factory=dict)  # run -> shape key
    claimed: dict[int, str] = field(default_factory=dict)  # run -> pool task
    #: run -> its trial, for the queued and claimed runs whose names carry it (not those of before)
    trials: dict[int, str] = field(default_factory=dict)


class PoolQueue:
    """The pool's files in one experiment directory; every method is one or a few renames."""

    def __init__(self, experiment_root: str | Path):
        self.root = Path(experiment_root) / POOL_DIR
        self._mode: int | None = None  # of the next-run record: looked up at its first write

    def _dir(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def ensure(self) -> None:
        """Create the queue's directories (0700 like the rest of the experiment)."""
        for name in ("shapes", "queue", "claimed", "ended", "cancel", "dropped", "arrays"):
            make_private_dir(self._dir(name))

    # -- the driver's side ---------------------------------------------------------------------
    def next_seq(self) -> int:
        """One more than the highest run number ever used (a restored driver never repeats one):
        what ``next-run.json`` says, or more if a run is named higher anywhere (runs of before)."""
        reserved = read_next_run(self._dir(NEXT_RUN_FILE))
        return max(reserved, max(self._named_runs(), default=-1) + 1)

    def _named_runs(self) -> set[int]:
        """Every run number named in the queue's directories (a listing each; a restore only)."""
        view = self.view()
        return ({*view.queued, *view.claimed} | set(seqs_in(self._dir("runs"))) | set(seqs_in(self._dir("ended")))
                | set(seqs_in(self._dir("dropped"))))

    def reserve(self, next_seq: int) -> None:
        """Record that the run numbers below ``next_seq`` may be used (before their markers)."""
        if self._mode is None:
            self._mode = file_mode_for(self.root)
        write_record(self._dir(NEXT_RUN_FILE), {"next": next_seq}, self._mode)

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
        """Queue run ``seq`` of ``trial_id`` for a pool task of ``shape``: one file created under
        its full name (``<N>.<trial>``), its record. ``reserve`` covers ``seq`` first."""
        marker = self._dir("queue", check_shape(shape), bucket_of(seq), run_name(seq, check_run_trial(trial_id)))
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
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

    def _queued(self, shape: str) -> list[tuple[int, str | None]]:
        """(run, trial) of every run queued for ``shape``, oldest first (a listing per bucket)."""
        directory = self._dir("queue", shape)
        names = listdir(directory)
        flat = [(int(name), None) for name in names if NUMBER.fullmatch(name)]  # queued by an hpctune before
        return sorted(flat) + [(seq, trial) for name in buckets_of(names)
                               for seq, trial, _ in runs_in(directory / name)]

    def run(self, seq: int) -> RunRecord | None:
        """The record of a run queued by an hpctune before (``runs/<N>.json``); None if there is
        none, or none that can be read (a pool task then drops the run: the driver retries its
        trial as for a job that died)."""
        return read_run(self._dir("runs", f"{seq_name(seq)}.json"))

    def runs(self) -> dict[int, RunRecord]:
        """Every run queued by an hpctune before that still has its record (and readable), oldest first."""
        found = {seq: self.run(seq) for seq in seqs_in(self._dir("runs"))}
        return {seq: record for seq, record in found.items() if record is not None}

    def view(self) -> QueueView:
        """Queued and claimed runs: one listing per shape and one of the claims, whatever runs
        (plus one per pool task directory an hpctune before left)."""
        found = QueueView()
        for shape in listdir(self._dir("queue")):
            for seq, trial in self._queued(shape):
                found.queued[seq] = shape
                if trial is not None:
                    found.trials[seq] = trial
        for seq, (task, trial) in self._claimed().items():
            found.claimed[seq] = task
            if trial is not None:
                found.trials[seq] = trial
        return found

    def _claimed(self) -> dict[int, tuple[str, str | None]]:
        """{run: (pool task, trial)} of every claim: one listing (plus one per pool task
        directory an hpctune before left)."""
        found: dict[int, tuple[str, str | None]] = {}
        for name in listdir(self._dir("claimed")):
            claim = claim_of(name)
            if claim is not None:
                found[claim[0]] = claim[1], claim[2]
            elif "." not in name:  # claimed/<task>/<N>: a pool task of an hpctune before
                for seq in seqs_in(self._dir("claimed", name)):
                    found[seq] = name, None
        return found

    def cancel(self, seq: int) -> bool:
        """Take a queued run out of the queue (True), or ask the pool task that claimed it to
        end it (False; its process gets SIGTERM, as ``scancel`` would send)."""
        return seq in self.cancel_runs([seq])

    def cancel_runs(self, seqs: list[int]) -> set[int]:
        """``cancel`` for many runs; returns those taken out of the queue. Their markers are found
        by a listing of each shape's queue and of the buckets they are in, the claimed ones by a
        listing of the claims, after the renames (a run claimed meanwhile is there): a run that
        ended (or was dropped) needs nothing."""
        wanted, taken = set(seqs), set()
        for shape in listdir(self._dir("queue")):
            directory = self._dir("queue", shape)
            names = listdir(directory)
            markers = {int(name): directory / name for name in names if NUMBER.fullmatch(name)}  # flat: before
            for bucket in sorted({bucket_of(seq) for seq in wanted - taken} & set(names)):
                markers.update((run, directory / bucket / name) for run, _, name in runs_in(directory / bucket))
            for seq in sorted((wanted - taken) & set(markers)):
                with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                    os.rename(markers[seq], self._dir("dropped", markers[seq].name))
                    taken.add(seq)
        claimed = self._claimed() if wanted - taken else {}
        for seq in sorted(wanted - taken):
            if seq in claimed and self.ended(seq) is None:  # one that ended needs nothing
                write_json_atomic(self._dir("cancel", seq_name(seq)), {}, fsync=False)
        return taken

    def hand_back(self, seq: int, task: str, trial_id: str | None = None) -> bool:
        """Move the claim of a pool task that is gone aside (it can never resume it); True if it
        was still there. The driver then retries the trial as for a job that died. ``trial_id``:
        the run's trial, as the claim's name carries it (``QueueView.trials``)."""
        claims = [self._dir("claimed", claim_name(seq, task, trial_id))] if trial_id is not None else []
        for claim in (*claims, self._dir("claimed", claim_name(seq, task, None)),
                      self._dir("claimed", task, seq_name(seq))):
            try:
                os.rename(claim, self._dir("dropped", run_name(seq, trial_id)))
            except (FileNotFoundError, NotADirectoryError):
                continue
            return True
        return False

    def ended(self, seq: int) -> RunEnd | None:
        """How the run's process ended, or None (still queued or running)."""
        return read_end(self._dir("ended", f"{seq_name(seq)}.json"))

    def ended_runs(self) -> dict[int, RunEnd]:
        """Every run's end record that can be read (a listing of ``ended/``; a restore only). A
        record of a newer hpctune raises SchemaError."""
        found = {}
        for seq in seqs_in(self._dir("ended")):
            try:
                end = self.ended(seq)
            except ExperimentStateError:
                continue
            if end is not None:
                found[seq] = end
        return found

    def dropped_runs(self) -> dict[int, str | None]:
        """{run: its trial (None: a run of before)} of every run cancelled before a claim or
        handed back from a dead pool task (one listing of ``dropped/``)."""
        return {seq: trial for seq, trial, _ in runs_in(self._dir("dropped"))}

    def dropped(self, seq: int) -> bool:
        """True if the run was cancelled before a claim, or handed back from a dead pool task."""
        return seq in self.dropped_runs()

    def array_paths(self, uid: str) -> tuple[Path, Path, Path]:
        """(manifest: one line per task, sbatch script, file holding the job id) of a pool array."""
        base = self._dir("arrays", uid)
        return base.with_suffix(".tasks"), base.with_suffix(".sbatch"), base.with_suffix(".jobid")

    def array_uids(self) -> list[str]:
        """The uids of every pool array submitted (or about to be: the manifest comes first)."""
        return [name[: -len(".tasks")] for name in listdir(self._dir("arrays")) if name.endswith(".tasks")]

    # -- the pool task's side ------------------------------------------------------------------
    def _claim(self, seq: int, trial_id: str | None, name: str) -> RunClaim:
        """A claim as the pool task keeps it; a run of before gets its trial from its record."""
        if trial_id is not None:
            return RunClaim(seq, trial_id, name)
        record = self.run(seq)
        return RunClaim(seq, None if record is None else record.trial_id, name, legacy=True)

    def claims(self, task: str) -> list[RunClaim]:
        """Runs pool task ``task`` claimed and has not finished (a requeued task resumes them)."""
        mine = [self._claim(claim[0], claim[2], name) for name in listdir(self._dir("claimed"))
                if (claim := claim_of(name)) is not None and claim[1] == check_task_id(task)]
        mine += [self._claim(seq, None, f"{task}/{seq_name(seq)}") for seq in seqs_in(self._dir("claimed", task))]
        return sorted(mine, key=lambda claim: claim.seq)

    def claim_next(self, task: str, shape: str) -> RunClaim | None:
        """Claim the oldest queued run of ``shape`` for ``task`` (one atomic rename that keeps
        its trial in the claim's name); None if the queue is empty. A bucket found empty goes
        unless it is the shape's newest: the driver numbers runs upwards, so it adds only to the
        newest bucket, and removing that one could race with the driver's ``enqueue`` (it made
        the directory, then found it gone)."""
        check_task_id(task)
        directory = self._dir("queue", check_shape(shape))
        names = listdir(directory)
        flat = sorted((int(name), None, name) for name in names if NUMBER.fullmatch(name))  # queued before
        buckets = buckets_of(names)
        for bucket in [""] * bool(flat) + buckets:
            runs = runs_in(directory / bucket) if bucket else flat
            for seq, trial, name in runs:
                claim = claim_name(seq, task, trial)
                try:
                    os.rename(directory / bucket / name, self._dir("claimed", claim))
                except FileNotFoundError:
                    continue  # another pool task was faster, or the driver cancelled it
                return self._claim(seq, trial, claim)
            if bucket and not runs and bucket != buckets[-1]:
                with contextlib.suppress(OSError):  # not empty any more, or removed by another task
                    os.rmdir(directory / bucket)
        return None

    def cancel_requested(self, seq: int) -> bool:
        """True if the driver asked the pool task running ``seq`` to end it."""
        return self._dir("cancel", seq_name(seq)).exists()

    def finish(self, task: str, claim: RunClaim, exit_code: int, logged_end: bool = False,
               wall_s: float | None = None) -> None:
        """Record that the run's process exited, then drop the claim.

        ``logged_end``: the trial's result log holds the event that ended this run's job
        (complete, stopped, error...). The driver reads the log to the end before it asks how
        a job that left the queue ended, and a restore reads it too, so the run needs no
        record any more: no ``ended/<N>.json`` is written, and a finished trial keeps no file
        in the queue (``next-run.json`` keeps its number). A run that ended without such an
        event (a crash) gets its end record (with its trial), for the driver. A run of before
        keeps its ``runs/<N>.json`` if it is the newest (``next_seq`` may count from it).

        ``wall_s``: how long its process ran, by the pool task's clock: the trial's share of
        the task's allocation. One line in the task's own ``walls/<task>.jsonl`` (one file per
        pool task, not per run), and ``wall_s`` in a crash's end record."""
        seq = claim.seq
        if wall_s is not None:
            append_wall(make_private_dir(self._dir("walls")) / f"{check_task_id(task)}.jsonl", seq, wall_s)
        if not logged_end:
            write_end(self._dir("ended", f"{seq_name(seq)}.json"), RunEnd(
                exit_code, task, wall_s=None if wall_s is None else round(float(wall_s), 3), trial_id=claim.trial_id))
        for path in (self._dir("claimed", claim.name), self._dir("cancel", seq_name(seq))):
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                path.unlink()
        # a run of before, not the newest: a newer record exists (one stat, most often), else the listings say
        if claim.legacy and logged_end and (
                self._dir("runs", f"{seq_name(seq + 1)}.json").exists() or seq < self.next_seq() - 1):
            with contextlib.suppress(FileNotFoundError):
                self._dir("runs", f"{seq_name(seq)}.json").unlink()

    def run_walls(self) -> dict[int, RunWall]:
        """Every run's measured wall time and the pool task that ran it (the pool's accounting):
        the tasks' walls files, and the end records of crashed runs. A torn or foreign line is
        skipped; a line of a newer hpctune raises SchemaError."""
        found: dict[int, RunWall] = {}
        for name in listdir(self._dir("walls")):
            if name.endswith(".jsonl") and name != ".jsonl":
                found.update(read_walls(self._dir("walls", name), name[: -len(".jsonl")]))
        for seq in seqs_in(self._dir("ended")):
            with contextlib.suppress(ExperimentStateError):
                end = self.ended(seq)
                if end is not None and end.wall_s is not None and seq not in found:
                    found[seq] = RunWall(end.task, end.wall_s)
        return found
