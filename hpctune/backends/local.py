"""Local backend: trials as worker processes on this machine (the embedded default).

It mimics a throttled Slurm array: launched trials queue as PENDING and start while
fewer than ``capacity`` run. Same worker, same result log, same signals. GPUs are given
out like Slurm's ``--gres``: each GPU trial gets its own ``CUDA_VISIBLE_DEVICES`` from the
GPUs this machine has (the driver's ``CUDA_VISIBLE_DEVICES``, else ``nvidia-smi -L``) and
waits for free ones; a trial without GPUs sees none (``CUDA_VISIBLE_DEVICES=""``, as in Ray).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hpctune.backends.base import JobReport
from hpctune.core.ids import local_job_id
from hpctune.core.parent_death import set_parent_death_signal
from hpctune.core.resources import check_gpu_share
from hpctune.errors import ConfigError
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.local_jobs import read_next_local_job, write_next_local_job
from hpctune.storage.secure import make_private_dir, open_private

KILL_AFTER_S = 5.0


class LocalBackend:
    """Runs each trial as ``python -m hpctune.worker`` in its own process group."""

    name = "local"
    poll_interval_s = 0.1
    jobs_survive_driver = False

    def __init__(self, experiment_root: Path, max_cpus: int | None = None,
                 gpus: list[str] | None = None):
        self.root = Path(experiment_root)
        self.max_cpus = max_cpus or os.cpu_count() or 1
        self._gpus = gpus  # the GPU ids to give out; None: detected at the first GPU trial
        self._jobs_dir = ExperimentDir(self.root).jobs_dir
        self._next_id = read_next_local_job(self._jobs_dir)
        self._queue: deque[tuple[str, str, int, int]] = deque()  # (job id, trial id, cpus, gpus)
        self._running: dict[str, tuple[subprocess.Popen, int, tuple[str, ...]]] = {}  # cpus, GPU ids
        self._ended: dict[str, int] = {}
        self._killing: dict[str, float] = {}
        self._throttle: int | None = None
        self.counts: Counter[str] = Counter()

    def launch(self, trial_ids: list[str], resources: dict[str, Any], throttle: int | None) -> list[str]:
        check_gpu_share(resources, pooled=False)  # the local backend has no worker pool
        gpus = check_local_gpus(resources, lambda: self.gpus)
        self._throttle = throttle
        first, self._next_id = self._next_id, self._next_id + len(trial_ids)
        make_private_dir(self._jobs_dir)
        write_next_local_job(self._jobs_dir, self._next_id)  # before any of them starts (a restore)
        job_ids = [local_job_id(number) for number in range(first, self._next_id)]
        for job_id, trial_id in zip(job_ids, trial_ids, strict=True):
            self._queue.append((job_id, trial_id, min(resources.get("cpu", 1), self.max_cpus), gpus))
        self._start_queued()
        return job_ids

    @property
    def gpus(self) -> list[str]:
        """The GPU ids trials get (CUDA_VISIBLE_DEVICES values), detected once."""
        if self._gpus is None:
            self._gpus = detect_gpus()
        return self._gpus

    def _start_queued(self) -> None:
        while self._queue and self._has_room(*self._queue[0][2:]):
            job_id, trial_id, cpus, gpus = self._queue.popleft()
            devices = tuple(self._free_gpus()[:gpus])
            self._running[job_id] = (self._spawn(job_id, trial_id, devices), cpus, devices)
            self.counts["spawn"] += 1

    def _has_room(self, cpus: int, gpus: int = 0) -> bool:
        if self._throttle is not None and len(self._running) >= self._throttle:
            return False
        if gpus and len(self._free_gpus()) < gpus:
            return False  # never two trials on one GPU: wait for free ones
        used = sum(c for _, c, _ in self._running.values())
        return not self._running or used + cpus <= self.max_cpus

    def _free_gpus(self) -> list[str]:
        taken = {d for _, _, devices in self._running.values() for d in devices}
        return [d for d in self.gpus if d not in taken]

    def _spawn(self, job_id: str, trial_id: str, gpus: tuple[str, ...] = ()) -> subprocess.Popen:
        out, err = self.log_paths(job_id)
        make_private_dir(Path(out).parent)
        cmd = [sys.executable, "-u", "-m", "hpctune.worker", str(self.root), "--trial", trial_id]
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": ",".join(gpus)}  # none: no GPU, as in Ray
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT  # no planted symlink followed; 0600
        with open(open_private(out, flags), "ab") as stdout, open(open_private(err, flags), "ab") as stderr:
            return subprocess.Popen(cmd, stdout=stdout, stderr=stderr, start_new_session=True,
                                    preexec_fn=_die_with_parent, env=env)

    def submit_room(self, queued: int) -> int | None:
        return None

    def recorded_launches(self) -> dict[str, str]:
        """Nothing to re-attach to: local jobs end with their driver."""
        return {}

    def poll(self) -> dict[str, JobReport]:
        """States of the jobs; a slot freed by a job that ended here is given to a queued job at
        the next poll, after the driver has read that job's end (as Slurm's scheduling cycle
        does): a fail_fast or a stop decided on it still finds the queued jobs unstarted."""
        self._start_queued()
        for job_id, (proc, _, _) in list(self._running.items()):
            code = proc.poll()
            if code is not None:
                del self._running[job_id]
                self._ended[job_id] = code
                if code == 0:
                    _remove_if_empty(Path(self.log_paths(job_id)[0]))
                self._killing.pop(job_id, None)
            elif job_id in self._killing and time.monotonic() > self._killing[job_id]:
                _signal_group(proc, signal.SIGKILL)
        states = {job_id: JobReport("RUNNING", node="localhost") for job_id in self._running}
        states.update({job_id: JobReport("PENDING", "Resources") for job_id, *_ in self._queue})
        return states

    def reconcile(self) -> None:
        """Nothing left to do after a poll: this backend is its own scheduler, and its poll is
        its scheduling cycle (it starts queued processes and kills the ones past their grace)."""

    def poll_ready(self) -> bool:
        """A local poll costs no Slurm command: always."""
        return True

    def queued(self) -> set[str]:
        """Jobs waiting for a free CPU or slot (``poll`` would start some of them)."""
        return {entry[0] for entry in self._queue}  # (job id, trial id, ...)

    def cancel(self, job_ids: list[str]) -> None:
        wanted = set(job_ids)
        self._queue = deque(q for q in self._queue if q[0] not in wanted)
        for job_id in wanted & set(self._running):
            _signal_group(self._running[job_id][0], signal.SIGTERM)
            self._killing[job_id] = time.monotonic() + self._kill_after_s
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
        deadline = time.monotonic() + self._kill_after_s
        for proc, _, _ in list(self._running.values()):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)

    @property
    def _kill_after_s(self) -> float:
        """SIGKILL after the worker's own bound on a stopped trial's cleanup (stop_grace_s)."""
        grace = ExperimentDir(self.root).read_experiment().get("stop_grace_s")
        return max(KILL_AFTER_S, float(grace or 0) + 2.0)


def check_local_gpus(resources: dict[str, Any], available: Callable[[], list[str]]) -> int:
    """The GPUs one trial of ``resources`` takes here; a ConfigError if this machine has fewer
    (``available()``, asked only for a GPU trial). ``Tuner.fit`` checks it before anything is
    written, each launch again."""
    # a trial of several tasks runs here as its rank 0 alone: one task's GPUs (docs/distributed.md)
    gpus = int(resources.get("gpu", 0) or resources.get("gpus_per_task", 0) or 0)
    have = len(available()) if gpus else 0
    if gpus > have:
        raise ConfigError(
            f"The trials ask for {gpus} GPU(s) each, but this machine has {have} "
            f"({_gpu_source()}): run them on Slurm, or request at most {have} with "
            "with_resources(trainable, {'gpu': ...}).")
    return gpus


def detect_gpus() -> list[str]:
    """GPUs of this machine: the driver's CUDA_VISIBLE_DEVICES if set, else ``nvidia-smi -L``,
    else none."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        found = []
        for device in (d.strip() for d in visible.split(",")):
            if not device or device.startswith("-") or device == "NoDevFiles":
                break  # CUDA ignores everything from the first invalid entry on
            found.append(device)
        return found
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.split(":", 1)[0].split()[1] for line in out.splitlines()
            if line.startswith("GPU ") and ":" in line]


def _gpu_source() -> str:
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        return f"CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']!r}"
    return "nvidia-smi -L" if shutil.which("nvidia-smi") else "no nvidia-smi on PATH"


def _remove_if_empty(log: Path) -> None:
    """A process that ended cleanly and wrote nothing leaves no log (a file per trial fewer;
    ``jobs/local-next.json``, not the logs, keeps a restored driver's numbers new)."""
    with contextlib.suppress(OSError):
        if os.lstat(log).st_size == 0:
            log.unlink()


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the driver dies (Linux), as a cancelled job would.

    Without it a killed driver leaves trials running that a restored driver cannot see.
    """
    set_parent_death_signal(signal.SIGTERM)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
