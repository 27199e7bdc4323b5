"""Local backend: trials as worker processes on this machine (the embedded default).

It mimics a throttled Slurm array: launched trials queue as PENDING and start while
fewer than ``capacity`` run. Same worker, same result log, same signals.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

from hpctune.backends.base import JobState
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.secure import make_private_dir, open_private

KILL_AFTER_S = 5.0
PR_SET_PDEATHSIG = 1


class LocalBackend:
    """Runs each trial as ``python -m hpctune.worker`` in its own process group."""

    name = "local"
    poll_interval_s = 0.1
    jobs_survive_driver = False

    def __init__(self, experiment_root: Path, max_cpus: int | None = None):
        self.root = Path(experiment_root)
        self.max_cpus = max_cpus or os.cpu_count() or 1
        self._ids = itertools.count(_next_job_number(ExperimentDir(self.root)))
        self._queue: deque[tuple[str, str, int]] = deque()  # (job id, trial id, cpus)
        self._running: dict[str, tuple[subprocess.Popen, int]] = {}
        self._ended: dict[str, int] = {}
        self._killing: dict[str, float] = {}
        self._throttle: int | None = None
        self.counts: Counter[str] = Counter()

    def launch(self, trial_ids: list[str], resources: dict[str, Any], throttle: int | None) -> list[str]:
        self._throttle = throttle
        job_ids = []
        for trial_id in trial_ids:
            job_id = f"local-{next(self._ids)}"
            self._queue.append((job_id, trial_id, min(resources.get("cpu", 1), self.max_cpus)))
            job_ids.append(job_id)
        self._start_queued()
        return job_ids

    def _start_queued(self) -> None:
        while self._queue and self._has_room(self._queue[0][2]):
            job_id, trial_id, cpus = self._queue.popleft()
            self._running[job_id] = (self._spawn(job_id, trial_id), cpus)
            self.counts["spawn"] += 1

    def _has_room(self, cpus: int) -> bool:
        if self._throttle is not None and len(self._running) >= self._throttle:
            return False
        used = sum(c for _, c in self._running.values())
        return not self._running or used + cpus <= self.max_cpus

    def _spawn(self, job_id: str, trial_id: str) -> subprocess.Popen:
        out, err = self.log_paths(job_id)
        make_private_dir(Path(out).parent)
        cmd = [sys.executable, "-u", "-m", "hpctune.worker", str(self.root), "--trial", trial_id]
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT  # no planted symlink followed; 0600
        with open(open_private(out, flags), "ab") as stdout, open(open_private(err, flags), "ab") as stderr:
            return subprocess.Popen(cmd, stdout=stdout, stderr=stderr, start_new_session=True,
                                    preexec_fn=_die_with_parent)

    def submit_room(self, queued: int) -> int | None:
        return None

    def recorded_launches(self) -> dict[str, str]:
        """Nothing to re-attach to: local jobs end with their driver."""
        return {}

    def poll(self) -> dict[str, JobState]:
        for job_id, (proc, _) in list(self._running.items()):
            code = proc.poll()
            if code is not None:
                del self._running[job_id]
                self._ended[job_id] = code
                self._killing.pop(job_id, None)
            elif job_id in self._killing and time.monotonic() > self._killing[job_id]:
                _signal_group(proc, signal.SIGKILL)
        self._start_queued()
        states = {job_id: JobState("RUNNING", node="localhost") for job_id in self._running}
        states.update({job_id: JobState("PENDING", "Resources") for job_id, _, _ in self._queue})
        return states

    def cancel(self, job_ids: list[str]) -> None:
        wanted = set(job_ids)
        self._queue = deque(q for q in self._queue if q[0] not in wanted)
        for job_id in wanted & set(self._running):
            _signal_group(self._running[job_id][0], signal.SIGTERM)
            self._killing[job_id] = time.monotonic() + KILL_AFTER_S
        self.counts["cancel"] += 1

    def final_states(self, job_ids: list[str]) -> dict[str, str]:
        return {j: f"exit code {self._ended[j]}" for j in job_ids if j in self._ended}

    def log_paths(self, job_id: str) -> tuple[str, str]:
        out, err = ExperimentDir(self.root).job_log_paths(job_id)
        return str(out), str(err)

    def command_counts(self) -> dict[str, int]:
        return dict(self.counts)

    def close(self) -> None:
        self.cancel(list(self._running))
        deadline = time.monotonic() + KILL_AFTER_S
        for proc, _ in list(self._running.values()):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)


def _next_job_number(exp: ExperimentDir) -> int:
    """One more than the highest ``local-N`` this experiment used: a restored driver's job ids
    never repeat an earlier driver's, so each job's log files stay its own."""
    numbers = [int(p.stem.split("-", 1)[1]) for p in exp.jobs_dir.glob("local-*.out")
               if p.stem.split("-", 1)[1].isdigit()]
    return max(numbers, default=-1) + 1


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the driver dies (Linux), as a cancelled job would.

    Without it a killed driver leaves trials running that a restored driver cannot see.
    """
    try:
        import ctypes

        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
