"""What a trainable sees inside its job: ``report``, ``get_context``, ``get_checkpoint``.

One ``Session`` per worker process. ``report`` auto-fills Ray Tune's metrics, appends a
``result`` event to the trial's log, persists checkpoints and checks the driver's
control record (a STOP decision makes ``report`` end the trial cleanly).
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpctune.checkpoint import Checkpoint, latest_checkpoint, persist_checkpoint
from hpctune.errors import HpctuneError
from hpctune.storage.atomic import read_json
from hpctune.storage.events import EventKind, new_event
from hpctune.storage.result_log import ResultLog

_session: Session | None = None
PAUSE = "pause"


class StopTrial(BaseException):
    """Raised inside ``report`` when the driver decided to stop the trial.

    A BaseException, so that a trainable's ``except Exception`` does not swallow it.
    """


class Preempted(BaseException):
    """Raised inside ``report`` once Slurm announced preemption or the time limit and the
    trial has saved what it can: the worker then requeues the job and exits."""


@dataclass
class TrialContext:
    """Identity of the running trial (Ray's ``get_context()``), plus its Slurm coordinates."""

    trial_id: str
    trial_name: str
    trial_dir: str
    experiment_name: str
    experiment_tag: str
    resources: dict[str, Any] = field(default_factory=dict)
    slurm_job_id: str | None = None
    slurm_array_job_id: str | None = None
    slurm_array_task_id: str | None = None
    restart_count: int = 0
    preempted: bool = False

    def get_trial_id(self) -> str:
        return self.trial_id

    def get_trial_name(self) -> str:
        return self.trial_name

    def get_trial_dir(self) -> str:
        return self.trial_dir

    def get_experiment_name(self) -> str:
        return self.experiment_name

    def get_trial_resources(self) -> dict[str, Any]:
        return dict(self.resources)

    def get_world_size(self) -> int:
        return int(os.environ.get("SLURM_NTASKS", "1"))

    def get_world_rank(self) -> int:
        return int(os.environ.get("SLURM_PROCID", "0"))

    def should_checkpoint(self) -> bool:
        """True once Slurm announced preemption or the time limit: checkpoint now."""
        return self.preempted


def slurm_job_ids() -> tuple[str | None, str | None, str | None]:
    """(job id as Slurm names the task, array job id, array task id) from the environment."""
    env = os.environ
    array_job, task = env.get("SLURM_ARRAY_JOB_ID"), env.get("SLURM_ARRAY_TASK_ID")
    job = f"{array_job}_{task}" if array_job and task else env.get("SLURM_JOB_ID")
    return job, array_job, task


class Session:
    """The reporting channel of one trial run (one process, one restart)."""

    def __init__(self, context: TrialContext, log: ResultLog, control_path: Path):
        self.context = context
        self.log = log
        self.control_path = control_path
        self._control_mtime: float | None = None
        self.hostname = socket.gethostname()
        self.node_ip = _node_ip(self.hostname)
        self.checkpoint = _latest(Path(context.trial_dir))
        self.iteration = _checkpoint_iteration(self.checkpoint)
        self.time_total = 0.0
        self.iterations_since_restore = 0
        self.checkpointed_this_run = False
        self.signal_name: str | None = None
        self.start_time = self.last_time = time.time()

    def on_signal(self, name: str) -> None:
        """Slurm's preemption / time-limit signal arrived: checkpoint at the next chance."""
        self.signal_name = name
        self.context.preempted = True

    def base_fields(self) -> dict[str, Any]:
        return {
            "trial_id": self.context.trial_id,
            "slurm_job_id": self.context.slurm_job_id,
            "restart_count": self.context.restart_count,
            "hostname": self.hostname,
            "pid": os.getpid(),
            "time": time.time(),
        }

    def restore_time_total(self, previous_time_total: float) -> None:
        self.time_total = previous_time_total

    def report(self, metrics: dict[str, Any], checkpoint: Checkpoint | None = None) -> None:
        """Record one result (and optionally a checkpoint); may end the trial on request."""
        if not isinstance(metrics, dict):
            raise HpctuneError(
                f"report() takes a dict of metrics, got {type(metrics).__name__}: "
                "write report({'loss': value})."
            )
        now = time.time()
        self.iteration += 1
        self.iterations_since_restore += 1
        result = {**metrics, **self._auto_fields(now)}
        event = new_event(EventKind.RESULT, result=result, **self.base_fields())
        if checkpoint is not None:
            path = persist_checkpoint(checkpoint.path, Path(self.context.trial_dir), self.iteration)
            self.checkpoint = Checkpoint(path)
            self.checkpointed_this_run = True
            event["checkpoint"] = path.name
        self.log.append(event, fsync=checkpoint is not None)
        self.check_control()
        if self.context.preempted and (checkpoint is not None or not self.checkpointed_this_run):
            raise Preempted(self.signal_name or "preempted")

    def _auto_fields(self, now: float) -> dict[str, Any]:
        this_iter = now - self.last_time
        self.last_time = now
        self.time_total += this_iter
        return {
            "training_iteration": self.iteration,
            "time_this_iter_s": this_iter,
            "time_total_s": self.time_total,
            "time_since_restore": now - self.start_time,
            "iterations_since_restore": self.iterations_since_restore,
            "timestamp": int(now),
            "date": time.strftime("%Y-%m-%d_%H-%M-%S", time.localtime(now)),
            "done": False,
            "trial_id": self.context.trial_id,
            "experiment_tag": self.context.experiment_tag,
            "hostname": self.hostname,
            "node_ip": self.node_ip,
            "pid": os.getpid(),
            "slurm_job_id": self.context.slurm_job_id,
            "restart_count": self.context.restart_count,
        }

    def check_control(self) -> None:
        """Raise StopTrial if the driver wrote a stop request (cheap: one stat per call)."""
        try:
            mtime = os.stat(self.control_path).st_mtime
        except FileNotFoundError:
            return
        if mtime == self._control_mtime:
            return
        self._control_mtime = mtime
        request = self._control_request()
        if request.get("action") == "stop":
            raise StopTrial(str(request.get("reason", "stopped by the driver")))
        if request.get("action") == "pause":
            self.on_signal(PAUSE)  # checkpoint, then exit: the driver resumes it later

    def stop_request(self) -> str | None:
        """The driver's reason to stop this trial, or None."""
        request = self._control_request()
        if request.get("action") == "stop":
            return str(request.get("reason", "stopped by the driver"))
        return None

    def _control_request(self) -> dict[str, Any]:
        return read_json(self.control_path, default={}) or {}


def _latest(trial_dir: Path) -> Checkpoint | None:
    path = latest_checkpoint(trial_dir)
    return Checkpoint(path) if path else None


def _checkpoint_iteration(checkpoint: Checkpoint | None) -> int:
    if checkpoint is None:
        return 0
    return int(Path(checkpoint.path).name.rsplit("_", 1)[1])


def _node_ip(hostname: str) -> str:
    try:
        return socket.gethostbyname(hostname)
    except OSError:
        return "127.0.0.1"


def _require_session() -> Session:
    if _session is None:
        raise HpctuneError(
            "This function only works inside a trial: pass your function to "
            "hpctune.Tuner(trainable, ...) and call Tuner.fit()."
        )
    return _session


def set_session(session: Session | None) -> None:
    global _session
    _session = session


def report(metrics: dict[str, Any], *, checkpoint: Checkpoint | None = None) -> None:
    """Report metrics (and optionally a checkpoint) from inside a trainable."""
    _require_session().report(metrics, checkpoint=checkpoint)


def get_context() -> TrialContext:
    """The running trial's context: ids, directory, Slurm job, restart count."""
    return _require_session().context


def get_checkpoint() -> Checkpoint | None:
    """The latest checkpoint of this trial (after a restart, the one to resume from)."""
    return _require_session().checkpoint
