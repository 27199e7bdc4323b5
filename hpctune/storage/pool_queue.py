"""The worker pool's work queue on the shared filesystem (``TuneConfig(reuse_actors=True)``).

The driver enqueues one *run* per trial launch; pool tasks (Slurm array tasks running
``python -m hpctune.pool``) claim runs and start each in a fresh process. Every state
change is one ``rename`` of a small marker file, atomic on a POSIX filesystem, so a run
is in exactly one place and no two pool tasks can claim it::

    <exp>/pool/
      runs/<N>.json            the run: trial id and resource shape (written once, kept)
      shapes/<key>.json        the resources of a shape (one pool array per shape)
      shapes/<key>.cap.json    the most trials of that shape that run at once
      queue/<key>/<N>          queued: waits for a pool task of that shape
      claimed/<task>/<N>       claimed by pool task <task> (``<array>_<index>``)
      ended/<N>.json           its process exited: exit code, pool task
      cancel/<N>               the driver asks the pool task to end a claimed run
      dropped/<N>              cancelled before a claim, or handed back from a pool task that died
      arrays/<uid>.tasks|.sbatch|.jobid   each pool array: its tasks' lines, script, job id

A run's job id, as the controller and the trial's events see it, is ``pool-<N>`` (``hpctune.ids``).
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

from hpctune.errors import ConfigError
from hpctune.ids import check_task_id, is_pool_job, run_job_id, run_seq  # noqa: F401 - also pool/'s
from hpctune.storage.atomic import read_json, write_json_atomic
from hpctune.storage.secure import make_private_dir

POOL_DIR = "pool"
_SHAPE = re.compile(r"s[0-9a-f]{10}", re.ASCII)


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
        write_json_atomic(self._dir("shapes", f"{check_shape(key)}.cap.json"), {"cap": cap}, fsync=False)

    def read_cap(self, key: str) -> int | None:
        """The cap ``write_cap`` kept (None: none, or never written)."""
        return read_json(self._dir("shapes", f"{check_shape(key)}.cap.json"), {}).get("cap")

    def read_shape(self, key: str) -> dict[str, Any]:
        """The resources of a shape (empty if unknown)."""
        return read_json(self._dir("shapes", f"{check_shape(key)}.json"), {})

    def enqueue(self, seq: int, trial_id: str, shape: str) -> str:
        """Record run ``seq`` of ``trial_id`` and queue it for a pool task of ``shape``."""
        write_json_atomic(self._dir("runs", f"{_name(seq)}.json"),
                          {"trial_id": trial_id, "shape": check_shape(shape)}, fsync=False)
        fd = os.open(self._dir("queue", shape, _name(seq)), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        return run_job_id(seq)

    def run(self, seq: int) -> dict[str, Any]:
        """The run's record: ``{"trial_id", "shape"}`` (empty if unknown)."""
        return read_json(self._dir("runs", f"{_name(seq)}.json"), {})

    def runs(self) -> dict[int, dict[str, Any]]:
        """Every run ever enqueued, oldest first."""
        return {seq: self.run(seq) for seq in _seqs(self._dir("runs"))}

    def view(self) -> QueueView:
        """Queued and claimed runs (one listing per shape and per pool task)."""
        found = QueueView()
        for shape in _listdir(self._dir("queue")):
            for seq in _seqs(self._dir("queue", shape)):
                found.queued[seq] = shape
        for task in _listdir(self._dir("claimed")):
            for seq in _seqs(self._dir("claimed", task)):
                found.claimed[seq] = task
        return found

    def cancel(self, seq: int) -> bool:
        """Take a queued run out of the queue (True), or ask the pool task that claimed it to
        end it (False; its process gets SIGTERM, as ``scancel`` would send)."""
        shape = self.run(seq).get("shape")
        if shape:
            with contextlib.suppress(FileNotFoundError):
                os.rename(self._dir("queue", shape, _name(seq)), self._dir("dropped", _name(seq)))
                return True
        if self.ended(seq) is None:
            write_json_atomic(self._dir("cancel", _name(seq)), {}, fsync=False)
        return False

    def hand_back(self, seq: int, task: str) -> bool:
        """Move the claim of a pool task that is gone aside (it can never resume it); True if it
        was still there. The driver then retries the trial as for a job that died."""
        try:
            os.rename(self._dir("claimed", check_task_id(task), _name(seq)), self._dir("dropped", _name(seq)))
        except FileNotFoundError:
            return False
        return True

    def ended(self, seq: int) -> dict[str, Any] | None:
        """How the run's process ended (``{"exit": code, "task": ...}``), or None."""
        return read_json(self._dir("ended", f"{_name(seq)}.json"), None)

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
        return _seqs(self._dir("claimed", check_task_id(task)))

    def claim_next(self, task: str, shape: str) -> int | None:
        """Claim the oldest queued run of ``shape`` for ``task`` (one atomic rename); None if the
        queue is empty."""
        target = make_private_dir(self._dir("claimed", check_task_id(task)))
        for seq in _seqs(self._dir("queue", check_shape(shape))):
            try:
                os.rename(self._dir("queue", shape, _name(seq)), target / _name(seq))
            except FileNotFoundError:
                continue  # another pool task was faster, or the driver cancelled it
            return seq
        return None

    def cancel_requested(self, seq: int) -> bool:
        """True if the driver asked the pool task running ``seq`` to end it."""
        return self._dir("cancel", _name(seq)).exists()

    def finish(self, task: str, seq: int, exit_code: int) -> None:
        """Record that the run's process exited, then drop the claim."""
        write_json_atomic(self._dir("ended", f"{_name(seq)}.json"), {"exit": exit_code, "task": task},
                          fsync=False)
        for path in (self._dir("claimed", check_task_id(task), _name(seq)), self._dir("cancel", _name(seq))):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _listdir(directory: Path) -> list[str]:
    try:
        return sorted(os.listdir(directory))
    except FileNotFoundError:
        return []
