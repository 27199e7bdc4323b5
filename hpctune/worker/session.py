"""What a trainable sees inside its job: ``report``, ``get_context``, ``get_checkpoint``.

One ``Session`` per worker process. ``report`` auto-fills Ray Tune's metrics, appends a
``result`` event to the trial's log, persists checkpoints and checks the driver's
control record (a STOP decision makes ``report`` end the trial cleanly). At a result where a
decision can fall (``decision_points``) it first waits for the driver's verdict (``verdict``). A STOP that
arrives as the SIGTERM of the driver's scancel raises ``StopTrial`` in the trainable's
own code (``on_stop_signal``), so its ``finally:`` blocks and ``cleanup()`` run, within
``stop_grace_s`` seconds: a watchdog ends the process when the cleanup takes longer.

In a trial of several tasks (``srun``), every task has a session; only rank 0's writes events
and checkpoints (``writes``): ``report`` on another rank keeps the call sites identical and
records nothing, but it ends that rank on a stop or a preemption like rank 0's.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hpctune.core.checkpoint import Checkpoint
from hpctune.core.decision_points import NEVER, DecisionPoints
from hpctune.errors import HpctuneError
from hpctune.storage import events as ev
from hpctune.storage.checkpoints import (
    checkpoint_dir_name,
    checkpoint_iteration,
    latest_checkpoint,
    persist_checkpoint,
    refuse_nested_source,
)
from hpctune.storage.control import ControlRecord
from hpctune.storage.events import EventKind, event_kind, new_event
from hpctune.storage.result_log import LogTail, ResultLog, read_events
from hpctune.worker.context import TrialContext, TrialStorage, slurm_job_ids  # noqa: F401 - re-exported
from hpctune.worker.report_values import check_checkpoint, plain_metrics
from hpctune.worker.verdict import Verdicts, read_request

_session: Session | None = None
PAUSE = "pause"
#: the longest a stopped trial's cleanup may take when the experiment does not say
DEFAULT_STOP_GRACE_S = 3.0
_CLEANUP_TOO_LONG = "the stopped trial's cleanup took longer than stop_grace_s={:g} s"


class StopTrial(BaseException):
    """Raised inside the trainable when the driver decided to stop the trial.

    A BaseException, so that a trainable's ``except Exception`` does not swallow it.
    ``final``: the trial ends here (a scheduler or stopper decided); otherwise it was
    cancelled (Ctrl+C on the driver, ``hpctune cancel``) and the driver decides what follows.
    """

    def __init__(self, reason: str = "stopped by the driver", final: bool = True):
        super().__init__(reason)
        self.final = final
        self.checkpoint: str | None = None  # checkpoint_at_end's, saved as the trial stopped


class Preempted(BaseException):
    """Raised inside ``report`` once Slurm announced preemption or the time limit (or the driver
    paused the trial: ``pause``) and the trial has saved what it can: the worker then exits."""
    checkpoint: str | None = None  # a checkpoint a class trainable saved as it paused (its name)


class PeerFailed(BaseException):
    """Raised on rank 0 of a multi-task trial instead of recording anything once another rank of
    this run wrote the trial's error event: srun is ending the step, the trial is retried."""


class Session:
    """The reporting channel of one trial run (one process, one restart)."""

    def __init__(self, context: TrialContext, log: ResultLog, control_path: Path,
                 stop_grace_s: float = DEFAULT_STOP_GRACE_S, decision_points: DecisionPoints = NEVER):
        self.context, self.log, self.control_path = context, log, control_path
        self.config: dict[str, Any] = {}  # the trial's config, set by the worker once loaded
        self.stop_grace_s = stop_grace_s
        self._control_mtime: float | None = None
        #: rank 0 (or the only task): the one that writes the trial's events and checkpoints
        self.writes = context.is_rank_zero()
        #: after a result at a decision point, report() waits for the driver's verdict
        self.verdicts = Verdicts(decision_points, control_path)
        self._run_offset = log.size()  # this run's events come after it
        self._errors_checked_to = self._run_offset  # rank 0: the log is free of peer errors up to here
        self.hostname = socket.gethostname()
        self.node_ip = _node_ip(self.hostname)
        self.checkpoint = _latest(Path(context.trial_dir))
        self.iteration = checkpoint_iteration(Path(self.checkpoint.path).name) if self.checkpoint else 0
        self.time_total, self.timesteps_total, self.episodes_total = 0.0, None, None
        self.iterations_since_restore = self.timesteps_since_restore = 0
        self.checkpointed_this_run = False
        self.last_result: dict[str, Any] | None = None  # this run's latest result, as recorded
        self.signal_name: str | None = None
        self.start_time = self.last_time = time.time()
        self.interruptible = False  # True while the trainable's own code runs
        self.stop_raised = False
        self._stop_pending: StopTrial | None = None
        self._watchdog: threading.Timer | None = None

    def on_signal(self, name: str) -> None:
        """Slurm's preemption / time-limit signal arrived: checkpoint at the next chance. After
        a SIGTERM (a cancel, a preemption) the worker ends within ``stop_grace_s`` even if the
        trainable never reports again (a hang, a long sleep)."""
        self.signal_name = name
        self.context.preempted = True
        if name == "SIGTERM":
            self.start_stop_watchdog("the trial did not end within stop_grace_s={:g} s of SIGTERM")

    def base_fields(self) -> dict[str, Any]:
        """The fields every event of this run carries (``events.BASE_FIELDS``)."""
        return {
            ev.TRIAL_ID: self.context.trial_id,
            ev.JOB_ID: self.context.slurm_job_id,
            ev.RESTART_COUNT: self.context.restart_count,
            ev.HOSTNAME: self.hostname,
            ev.PID: os.getpid(),
            ev.TIME: time.time(),
        }

    def log_event(self, kind: EventKind, fsync: bool = False, **fields: Any) -> None:
        """Append a ``kind`` event with the base fields, from rank 0 only (other ranks: nothing)."""
        if self.writes:
            self.append(new_event(kind, **{**fields, **self.base_fields()}), fsync=fsync)

    def append(self, event: dict[str, Any], fsync: bool = False) -> None:
        """Rank 0's append. In a multi-task trial it is checked under the log's lock: once another
        rank of this run wrote the trial's error, nothing more is recorded (``PeerFailed``)."""
        if self.context.get_world_size() <= 1:
            self.log.append(event, fsync=fsync)
            return
        end = self.log.append_first(event, self.is_error_of_this_run, self._errors_checked_to, fsync)
        if end is None:
            raise PeerFailed("another rank of this trial failed: its error event is the record")
        self._errors_checked_to = end  # each report checks only what was appended since

    def append_error(self, event: dict[str, Any]) -> None:
        """Any rank's error event: in a multi-task trial only the run's first, and none after the
        run ended (the other ranks' failures follow from it; rank 0 may have finished first)."""
        if self.context.get_world_size() <= 1:
            self.log.append(event, fsync=True)
        else:
            self.log.append_first(event, self._ended_this_run, self._run_offset)

    def restore_totals(self, result: dict[str, Any]) -> None:
        """Continue the running totals from the result of the checkpoint's iteration."""
        self.time_total = float(result.get("time_total_s", 0.0) or 0.0)
        self.timesteps_total = result.get("timesteps_total")
        self.episodes_total = result.get("episodes_total")

    def report(self, metrics: dict[str, Any], checkpoint: Checkpoint | None = None) -> dict[str, Any]:
        """Record one result (and optionally a checkpoint); may end the trial on request.

        Returns the result as recorded, with the auto-filled metrics and ``config``.
        """
        if not isinstance(metrics, dict):
            raise HpctuneError(
                f"report() takes a dict of metrics, got {type(metrics).__name__}: "
                "write report({'loss': value})."
            )
        metrics = plain_metrics(dict(metrics))  # a ReportError naming a value JSON cannot hold
        check_checkpoint(checkpoint)  # a ReportError for a file or a missing path
        if checkpoint is not None:  # Checkpoint.from_directory(".") would copy itself into itself
            refuse_nested_source(Path(checkpoint.path), Path(self.context.trial_dir))
        interruptible, self.interruptible = self.interruptible, False  # no StopTrial mid-write
        try:
            self.iteration += 1
            self.iterations_since_restore += 1
            result = self.last_result = self._auto_fill(metrics, time.time())
            if self.writes:
                self._record(result, checkpoint)
            elif checkpoint is not None:  # rank 0 writes it: every rank names the same one
                self.checkpoint = Checkpoint(Path(self.context.trial_dir) / checkpoint_dir_name(self.iteration))
                self.checkpointed_this_run = True
        finally:
            self.interruptible = interruptible
        self.verdicts.after(self.iteration)
        self.check_control()
        if interruptible:
            self.raise_pending_stop()
        pausing = self.signal_name == PAUSE  # at the result it answers, as in Ray (see class_trainable)
        if self.context.preempted and (checkpoint is not None or not self.checkpointed_this_run or pausing):
            raise Preempted(self.signal_name or "preempted")
        return {**result, "config": self.config}

    def _record(self, result: dict[str, Any], checkpoint: Checkpoint | None) -> None:
        event = new_event(EventKind.RESULT, result=result, **self.base_fields())
        if checkpoint is not None:
            path = persist_checkpoint(checkpoint.path, Path(self.context.trial_dir), self.iteration)
            self.checkpoint = Checkpoint(path)
            self.checkpointed_this_run = True
            event[ev.CHECKPOINT] = path.name
        if self.verdicts.waits_at(self.iteration):
            event[ev.WAITS] = True  # the driver answers it (a proceed, a stop or a pause)
        self.append(event, fsync=checkpoint is not None)

    def follow_rank_zero(self, timeout_s: float = 60.0, poll_s: float = 0.2) -> bool:
        """On a rank other than 0: restore what rank 0 restored, the iteration its ``start``
        event of this run names (by the time this rank looks, rank 0 may have written a newer
        checkpoint). False when that event did not come within ``timeout_s``: the latest stays."""
        tail, deadline = LogTail(self.log.path), time.monotonic() + timeout_s
        while True:
            for event in tail.read_new():
                if event.get(ev.KIND) == EventKind.START.value and self._of_this_run(event):
                    self.iteration = int(event.get(ev.RESTORED_ITERATION) or 0)
                    path = Path(self.context.trial_dir) / checkpoint_dir_name(self.iteration)
                    self.checkpoint = Checkpoint(path) if self.iteration else None
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll_s)

    def peer_failed(self) -> bool:
        """True when another rank of this run wrote the trial's error event (its failure is why
        this rank is being killed: it must add nothing to the log)."""
        if self.context.get_world_size() <= 1:
            return False
        return any(self.is_error_of_this_run(event) for event in read_events(self.log.path))

    def is_error_of_this_run(self, event: dict[str, Any]) -> bool:
        """``event`` is an error event of this job run (same job id and restart count)."""
        return event.get(ev.KIND) == EventKind.ERROR.value and self._of_this_run(event)

    def _ended_this_run(self, event: dict[str, Any]) -> bool:
        kind = event_kind(event, self.log.path)
        return kind is not None and kind.ends_run and self._of_this_run(event)

    def _of_this_run(self, event: dict[str, Any]) -> bool:
        return (event.get(ev.JOB_ID) == self.context.slurm_job_id
                and event.get(ev.RESTART_COUNT) == self.context.restart_count)

    def _auto_fill(self, result: dict[str, Any], now: float) -> dict[str, Any]:
        """Ray's auto-filled metrics; ``done``, ``timesteps_total`` and ``episodes_total`` only
        where the trainable did not report them (``*_this_iter`` add up to the totals)."""
        this_iter = now - self.last_time
        self.last_time = now
        self.time_total += this_iter
        if result.get("timesteps_this_iter") is not None:
            self.timesteps_total = (self.timesteps_total or 0) + result["timesteps_this_iter"]
            self.timesteps_since_restore += result["timesteps_this_iter"]
        if result.get("episodes_this_iter") is not None:
            self.episodes_total = (self.episodes_total or 0) + result["episodes_this_iter"]
        result.setdefault("done", False)
        result.setdefault("timesteps_total", self.timesteps_total)
        result.setdefault("episodes_total", self.episodes_total)
        result.update({
            "training_iteration": self.iteration,
            "time_this_iter_s": this_iter,
            "time_total_s": self.time_total,
            "time_since_restore": now - self.start_time,
            "iterations_since_restore": self.iterations_since_restore,
            "timesteps_since_restore": self.timesteps_since_restore,
            "timestamp": int(now),
            "date": time.strftime("%Y-%m-%d_%H-%M-%S", time.localtime(now)),
            "trial_id": self.context.trial_id,
            "experiment_id": self.context.experiment_id,
            "experiment_tag": self.context.experiment_tag,
            "hostname": self.hostname,
            "node_ip": self.node_ip,
            "pid": os.getpid(),
            "slurm_job_id": self.context.slurm_job_id,
            "restart_count": self.context.restart_count,
        })
        return result

    # -- stopping ---------------------------------------------------------------------------
    def check_control(self) -> None:
        """Raise StopTrial if the driver wrote a stop request (cheap: one stat per call)."""
        try:
            mtime = os.stat(self.control_path).st_mtime
        except FileNotFoundError:
            return
        if mtime == self._control_mtime:
            return
        self._control_mtime = mtime
        request = read_request(self.control_path)
        if request is None:
            return
        if request.is_stop:
            self.stop_raised = True
            self.start_stop_watchdog()
            raise _stop_for(request)
        if request.is_pause:
            self.on_signal(PAUSE)  # checkpoint, then exit: the driver resumes it later

    def stop_request(self) -> ControlRecord | None:
        """The driver's stop request for this trial (its control record), or None."""
        request = read_request(self.control_path)
        return request if request is not None and request.is_stop else None

    def on_stop_signal(self, request: ControlRecord) -> None:
        """The SIGTERM of a stop (the driver's scancel): raise StopTrial in the trainable now,
        or at the next safe point while hpctune writes; the cleanup has ``stop_grace_s``."""
        self.start_stop_watchdog()
        if self.stop_raised:
            return  # already stopping: its cleanup runs
        self._stop_pending = _stop_for(request)
        if self.interruptible:
            self.raise_pending_stop()

    def raise_pending_stop(self) -> None:
        stop, self._stop_pending = self._stop_pending, None
        if stop is not None and not self.stop_raised:
            self.stop_raised = True
            raise stop

    @contextlib.contextmanager
    def trainable_code(self) -> Iterator[None]:
        """Marks the trainable's own code: a STOP signal raises StopTrial right there."""
        self.interruptible = True
        try:
            self.raise_pending_stop()
            yield
        finally:
            self.interruptible = False

    def start_stop_watchdog(self, what: str = _CLEANUP_TOO_LONG) -> None:
        """End the process ``stop_grace_s`` from now if it has not exited by then (0: now).
        (A trainable stuck in C code never lets this thread run: ``exit_guard`` covers that.)"""
        if self.stop_grace_s <= 0:
            os._exit(0)
        if self._watchdog is None:
            self._watchdog = threading.Timer(self.stop_grace_s, _grace_exceeded,
                                             args=(what.format(self.stop_grace_s),))
            self._watchdog.daemon = True
            self._watchdog.start()


def stop_grace_of(spec: dict[str, Any]) -> float:
    """The experiment's ``stop_grace_s`` (``experiment.json``), or the default where it has none."""
    grace = spec.get("stop_grace_s")
    return DEFAULT_STOP_GRACE_S if grace is None else float(grace)


def _stop_for(request: ControlRecord) -> StopTrial:
    return StopTrial(request.reason or "stopped by the driver", final=request.final)


def _grace_exceeded(what: str) -> None:
    os.write(2, f"hpctune: {what}: exiting without finishing it (raise SlurmConfig(stop_grace_s=...) "
                "for a longer cleanup).\n".encode())
    os._exit(0)


def _latest(trial_dir: Path) -> Checkpoint | None:
    path = latest_checkpoint(trial_dir)
    return Checkpoint(path) if path else None


def _node_ip(hostname: str) -> str:
    try:
        return socket.gethostbyname(hostname)
    except OSError:
        return "127.0.0.1"


def current_session() -> Session | None:
    """The session of the trial running in this process, if any."""
    return _session


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
    """The running trial's context: ids, directory, resources, ranks, Slurm job, restart count."""
    return _require_session().context


def get_checkpoint() -> Checkpoint | None:
    """The latest checkpoint of this trial (after a restart, the one to resume from)."""
    return _require_session().checkpoint


def get_trial_resources() -> dict[str, Any]:
    """The running trial's resources (``tune.get_trial_resources()``): {"cpu": 2, "gpu": 1, ...}."""
    return _require_session().context.get_trial_resources()
