"""What runs inside each Slurm job (or local process): one trial, start to end.

``python -m hpctune.worker EXP_DIR (--trial ID | --manifest FILE)``. With a manifest
(one trial id per line) the Slurm array task id picks the line. The worker loads the
pickled trainable and the trial's config, changes into the trial directory, runs
the trainable with a ``Session`` and writes ``start``/``complete``/``stopped``/``error``
events. It imports nothing heavy: the trainable decides what else is loaded.

A trial of several tasks runs one worker per task (``srun``): rank 0 writes the events and
checkpoints and requeues the job; a failing rank writes the one ``error`` event of the run;
the other ranks, killed because of it, write nothing.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from hpctune.core.decision_points import META_KEY as POINTS_KEY
from hpctune.core.decision_points import DecisionPoints
from hpctune.core.ids import default_trial_name, experiment_id_of
from hpctune.storage.array_manifest import trial_of_task
from hpctune.storage.checkpoints import checkpoint_iteration
from hpctune.storage.control import clear_control
from hpctune.storage.events import (
    CHECKPOINT,
    KIND,
    NODELIST,
    RANK,
    RESULT,
    WORLD_SIZE,
    EventKind,
    new_event,
)
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.result_log import checkpoint_results
from hpctune.storage.secure import load_private_pickle
from hpctune.worker import session as session_mod
from hpctune.worker.class_trainable import run_class
from hpctune.worker.exit_guard import start_guard, stop_guard
from hpctune.worker.output import redirect_output
from hpctune.worker.session import (
    PeerFailed,
    Preempted,
    Session,
    StopTrial,
    TrialContext,
    slurm_job_ids,
)

CHDIR_ENV = "HPCTUNE_CHDIR_TO_TRIAL_DIR"
#: set by a pool task (``hpctune.pool``) for each trial it runs: the run's job id (``pool-N``)
POOL_JOB_ENV = "HPCTUNE_POOL_JOB"


def trial_id_from_manifest(manifest: Path, task_id: str | None) -> str:
    if task_id is None:
        raise SystemExit("hpctune.worker: --manifest needs SLURM_ARRAY_TASK_ID (run as an array task)")
    return trial_of_task(manifest, task_id)


def make_session(exp: ExperimentDir, trial_id: str, spec: dict | None = None) -> Session:
    meta = exp.read_trial_meta(trial_id)
    spec = spec if spec is not None else exp.read_experiment()
    job, array_job, task = slurm_job_ids()
    job = os.environ.get(POOL_JOB_ENV) or job  # in a pool, events name the run, not the pool task
    context = TrialContext(
        trial_id=trial_id,
        trial_name=meta.get("trial_name") or default_trial_name(spec.get("trainable", ""), trial_id),
        trial_dir=str(exp.trial_dir(trial_id)),
        experiment_name=exp.root.name,
        experiment_tag=meta.get("experiment_tag", ""),
        resources=meta.get("resources", {}),
        slurm_job_id=job,
        slurm_array_job_id=array_job,
        slurm_array_task_id=task,
        restart_count=int(os.environ.get("SLURM_RESTART_COUNT", "0")),
        experiment_id=experiment_id_of(trial_id) or exp.root.name,  # the experiment's unique prefix
    )
    session = Session(context, exp.result_log(trial_id), exp.control_path(trial_id),
                      stop_grace_s=session_mod.stop_grace_of(spec),
                      decision_points=DecisionPoints.from_json(meta.get(POINTS_KEY)))
    if session.checkpoint is not None:  # the running totals continue from its result
        name = Path(session.checkpoint.path).name
        session.restore_totals(checkpoint_results(exp.result_log_path(trial_id)).get(name, {}))
    return session


def run_trial(exp: ExperimentDir, trial_id: str) -> int:
    """Run one trial; returns the process exit code (0 also when stopped or preempted)."""
    spec = exp.read_experiment()
    redirect_output(exp.trial_dir(trial_id), spec)  # RunConfig(log_to_file=...)
    session = make_session(exp, trial_id, spec)
    session_mod.set_session(session)
    session.log_event(EventKind.START, restored_iteration=session.iteration, **_ranks(session))
    if not session.writes and not session.follow_rank_zero():
        print("hpctune: rank 0 wrote no start event within 60 s: restoring the latest checkpoint",
              file=sys.stderr, flush=True)
    guard = start_guard(session.stop_grace_s)  # ends the worker after a SIGTERM even when Python cannot
    watcher = Watcher(session, float(spec.get("heartbeat_s", 30.0)))
    watcher.start()
    try:
        return _run_guarded(exp, trial_id, session, spec)
    except PeerFailed:
        return 1  # another rank's error is the trial's record: srun is ending the step
    finally:
        watcher.stop()
        stop_guard(guard)  # gone before the worker: Slurm frees the slot a second sooner


def _ranks(session: Session) -> dict[str, Any]:
    """The start event's record of a multi-task trial: how many tasks, on which nodes."""
    size = session.context.get_world_size()
    return {WORLD_SIZE: size, NODELIST: os.environ.get("SLURM_JOB_NODELIST", "")} if size > 1 else {}


def _run_guarded(exp: ExperimentDir, trial_id: str, session: Session, spec: dict) -> int:
    try:
        trainable = load_private_pickle(exp.trainable_path)  # only a file of yours nobody else can write
        session.config = exp.read_config(trial_id)  # params.pkl: exactly what the searcher made
        if os.environ.get(CHDIR_ENV, "1") != "0":
            os.chdir(session.context.trial_dir)
        final = _run(trainable, session.config, session, spec)
        if isinstance(final, dict):
            session.report(final)
        _final_event(session, new_event(EventKind.COMPLETE))
        return 0
    except StopTrial as stop:
        # A scheduler's or stopper's decision ends the trial; a cancel (Ctrl+C on the driver,
        # `hpctune cancel`) leaves it to the driver, which may resume it later.
        kind = EventKind.STOPPED if stop.final else EventKind.TERMINATED
        at_end = {CHECKPOINT: stop.checkpoint, RESULT: session.last_result} if stop.checkpoint else {}
        _final_event(session, new_event(kind, reason=str(stop), **at_end))
        if stop.final:
            _await_the_cancel(session)
        return 0
    except Preempted as why:
        return _exit_for(str(why), session, why.checkpoint)
    except PeerFailed:
        raise  # not an error of this rank's: run_trial ends the worker, recording nothing
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the log
        traceback.print_exc()
        _error_event(session, exc)
        return 1


def _await_the_cancel(session: Session) -> None:
    """A Slurm array task the driver stopped is scancelled in the same driver step: a worker
    that saw the verdict first waits a moment for that SIGTERM, so that Slurm records the task
    CANCELLED, as a stopped trial's task is (not COMPLETED). A pool run is ended by its task."""
    if not os.environ.get("SLURM_JOB_ID") or os.environ.get(POOL_JOB_ENV):
        return
    deadline = time.monotonic() + min(1.0, session.stop_grace_s / 2)
    while session.signal_name != "SIGTERM" and time.monotonic() < deadline:
        time.sleep(0.01)


def _error_event(session: Session, exc: BaseException) -> None:
    """Write the trial's error event; when the log cannot take it (a full or read-only
    filesystem, a lost mount), say so on stderr, which lands in the job's log."""
    try:
        event = {**new_event(EventKind.ERROR, error=_describe(exc)), **session.base_fields()}
        if session.context.get_world_size() > 1:
            event[RANK] = session.context.get_world_rank()
        session.append_error(event)  # of ranks failing together, the first one's
        if session.writes:
            clear_control(session.control_path)  # a retry starts with none (the driver clears it too)
    except Exception as failed:  # noqa: BLE001 - the trial's own error is the one to report
        print(f"hpctune: trial {session.context.trial_id} failed ({type(exc).__name__}: {str(exc)[:200]}) and "
              f"its error event could not be written to {session.log.path}: {failed}",
              file=sys.stderr, flush=True)


def _final_event(session: Session, event: dict) -> None:
    """Write the trial's last event (result.json and progress.csv are the driver's loggers');
    rank 0's alone in a multi-task trial."""
    if session.writes:
        session.append({**event, **session.base_fields()}, fsync=True)
        if event[KIND] == EventKind.TERMINATED.value:
            return  # a cancel: the driver reads its stop request when the job is gone, and may resume it
        clear_control(session.control_path)  # the trial is over: what was asked of it, done
        if session.context.get_world_size() == 1 and session.context.slurm_job_id:
            sys.stdout.flush()
            sys.stderr.flush()
            ExperimentDir(Path(session.context.trial_dir).parents[1]).remove_empty_job_log(
                session.context.slurm_job_id)


def _exit_for(signal_name: str, session: Session, checkpoint: str | None = None) -> int:
    """Leave after a checkpoint: paused (the driver resubmits), requeued, or terminated.

    SIGTERM comes from Slurm's preemption (Slurm requeues the job itself) or from a
    cancel (the job must stay cancelled), so only USR1/USR2 warnings requeue here. In a
    multi-task trial rank 0 alone writes and requeues, and nothing at all when the SIGTERM is
    srun ending the step because another rank failed (its error event is the trial's record).
    """
    if not session.writes or (signal_name == "SIGTERM" and session.peer_failed()):
        return 0
    fields: dict[str, Any] = {}
    if signal_name == session_mod.PAUSE:
        kind = EventKind.PAUSED
        if checkpoint:  # a class trainable's, saved as it paused
            fields = {CHECKPOINT: checkpoint, RESULT: session.last_result}
        else:
            _warn_paused_without_checkpoint(session)
    elif signal_name == "SIGTERM":
        kind = EventKind.TERMINATED
    else:
        kind = EventKind.REQUEUED
    session.append(new_event(kind, **fields, **session.base_fields()), fsync=True)
    if kind is EventKind.REQUEUED:
        requeue_self(session)
    return 0


def _warn_paused_without_checkpoint(session: Session) -> None:
    """A function trainable paused at a result that carried no checkpoint: as in Ray, it resumes
    from its latest checkpoint and runs the iterations after it again. Said in the job's log."""
    done = session.iteration
    saved = session.checkpoint
    at = checkpoint_iteration(Path(saved.path).name) if saved is not None else 0
    if session.last_result is None or at == done:
        return
    start = f"its checkpoint of iteration {at}" if at else "the start (it reported no checkpoint)"
    print(f"hpctune: trial {session.context.trial_name} ({session.context.trial_id}) was paused at "
          f"iteration {done}, whose result carried no checkpoint: it resumes from {start} and runs "
          f"iterations {at + 1}-{done} again (as in Ray). Report a checkpoint where a scheduler may "
          "pause it (HyperBand's milestones, PBT's perturbation points).", file=sys.stderr, flush=True)


def _describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def _run(trainable: Any, config: dict, session: Session, spec: dict) -> Any:
    """Run the trainable's own code; a STOP signal raises StopTrial inside it (``trainable_code``)."""
    import inspect

    from hpctune.tune.trainable import is_class_trainable

    with session.trainable_code():
        try:
            if is_class_trainable(trainable):
                return run_class(trainable, config, session, spec.get("checkpoint_config", {}))
            out = trainable(config)
            return _run_generator(out, session) if inspect.isgenerator(out) else out
        except SystemExit as end:
            if end.code not in (0, None):
                raise
            return None  # sys.exit(0) in the trainable: a normal end, the trial completes


def _run_generator(gen: Any, session: Session) -> Any:
    """A generator function trainable: each yielded dict is a ``report``; a STOP or a preemption
    is thrown into the generator, so that its ``finally:`` blocks run."""
    try:
        value = next(gen)
        while True:
            try:
                session.report(value)
            except BaseException as exc:
                _throw_into(gen, exc)
                raise
            value = next(gen)
    except StopIteration as end:
        return end.value


def _throw_into(gen: Any, exc: BaseException) -> None:
    """Raise ``exc`` at the generator's ``yield``; if it yields again anyway, close it."""
    try:
        gen.throw(exc)
    except StopIteration:
        return
    except BaseException as raised:
        if raised is not exc:
            raise
        return
    gen.close()


class Watcher:
    """Turns Slurm's signals into a session flag and writes heartbeats from a thread.

    The signal handler only sets flags (it may interrupt the main thread while it holds
    the log's lock), except for the SIGTERM of a stop: that raises StopTrial in the
    trainable's own code (never while hpctune writes, see ``Session``). This thread writes the ``preempted`` event as soon as a signal
    arrives, so the driver knows a restart is expected even if the job is killed
    before the trainable's next checkpoint.
    """

    SIGNALS = ("SIGTERM", "SIGUSR1", "SIGUSR2")

    def __init__(self, session: Session, heartbeat_s: float):
        self.session = session
        self.heartbeat_s = heartbeat_s
        self._wake = threading.Event()
        self._done = False
        self._signal_logged = False
        self._parent = os.getppid()
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._loop, name="hpctune-heartbeat", daemon=True)

    def start(self) -> None:
        for name in self.SIGNALS:
            signal.signal(getattr(signal, name), self._on_signal)
        self._thread.start()

    def stop(self) -> None:
        self._done = True
        self._wake.set()
        self._thread.join(timeout=5)

    def _on_signal(self, signum: int, _frame: object) -> None:
        if os.getpid() != self._pid:  # a forked child of the trainable (a data loader worker)
            if signum == signal.SIGTERM and self.session.stop_request() is not None:
                os._exit(0)
            return
        if signum == signal.SIGTERM and os.getppid() != self._parent:
            # The local driver died (PDEATHSIG): a restored driver relaunches this trial from its
            # checkpoint, so this worker must be gone now, not at its next report. No event: the
            # main thread may hold the log's lock.
            os._exit(0)
        request = self.session.stop_request() if signum == signal.SIGTERM else None
        if request is not None:
            # The driver stopped this trial and cancels it: StopTrial is raised here, in the
            # trainable, so its cleanup runs (within stop_grace_s); then the worker exits.
            self.session.on_stop_signal(request)
            return
        self.session.on_signal(signal.Signals(signum).name)
        self._wake.set()

    def _loop(self) -> None:
        while not self._done:
            self._wake.wait(self.heartbeat_s)
            self._wake.clear()
            if self._done:
                return
            try:
                self._beat()
            except PeerFailed:
                os._exit(1)  # srun ends the step for another rank's error: nothing to add

    def _beat(self) -> None:
        """The first signal's ``preempted`` event, else a heartbeat (rank 0's)."""
        if self.session.signal_name and not self._signal_logged:
            self._signal_logged = True
            if self.session.signal_name == "SIGTERM" and self.session.peer_failed():
                raise PeerFailed("srun ends the step for another rank's error")
            if self.session.signal_name == "SIGTERM" and self.session.stop_raised:
                return  # the SIGTERM of the driver's stop: the trial ends `stopped`, not preempted
            self.session.log_event(EventKind.PREEMPTED, fsync=True, signal=self.session.signal_name)
        else:
            self.session.log_event(EventKind.HEARTBEAT)


def requeue_self(session: Session) -> None:
    """Put this Slurm job back in the queue (array tasks by their array id)."""
    job_id = session.context.slurm_job_id
    if not job_id or os.environ.get(POOL_JOB_ENV):
        return  # a pool task requeues itself once all its trials have checkpointed
    from hpctune.backends.slurm_commands import requeue_args
    from hpctune.backends.slurm_limits import shared_commands

    proc = shared_commands().run(requeue_args(job_id), check=False)
    if proc.returncode != 0:
        print(f"hpctune: scontrol requeue {job_id} failed: {proc.stderr.strip()}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hpctune.worker")
    parser.add_argument("experiment_dir")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--trial")
    group.add_argument("--manifest")
    args = parser.parse_args(argv)
    exp = ExperimentDir(args.experiment_dir)
    if args.trial:
        trial_id = args.trial
    else:
        trial_id = trial_id_from_manifest(Path(args.manifest), os.environ.get("SLURM_ARRAY_TASK_ID"))
    return run_trial(exp, trial_id)
