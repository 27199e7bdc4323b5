"""The one replay of a trial's result log: what the log says happened to the trial.

``TrialReplay`` turns events into facts on a ``Trial`` record (results, status, error,
checkpoint, restarts). ``ResultGrid`` rebuilds finished experiments with it; the driver's
event handler extends it with decisions (stop, pause, retry). Replaying every log from
offset zero rebuilds an experiment: the logs are the source of truth.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from hpctune.errors import ExperimentStateError, UnsafeFileError
from hpctune.storage import events as ev
from hpctune.storage.events import EventHandler, dispatch
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.journal import read_trial_state
from hpctune.storage.result_log import read_events
from hpctune.storage.secure import check_component
from hpctune.storage.trial_meta import meta_of
from hpctune.tune.experiment.trial import Trial, TrialStatus


class TrialReplay(EventHandler):
    """Applies a trial's events to its record.

    ``stopped_after``: the iteration at which a stopper or scheduler ended the trial (its
    ``stop_decided`` event); results the worker reported after it, before it saw the
    decision, stay in the log but are not the trial's (as the driver saw it).
    """

    def __init__(self, trial: Trial, stopped_after: int | None = None):
        self.trial = trial
        self.stopped_after = stopped_after

    def on_start(self, event: dict[str, Any]) -> None:
        self._running_again().start(event.get(ev.RESTART_COUNT, 0) or 0)

    def on_result(self, event: dict[str, Any]) -> None:
        if _after_stop(event[ev.RESULT], self.stopped_after):
            return
        self._running_again().report()
        if event.get(ev.CHECKPOINT) and checkpoint_name_ok(event[ev.CHECKPOINT], self.trial.trial_id):
            self.trial.checkpoint = event[ev.CHECKPOINT]
        self.record(event[ev.RESULT])

    def record(self, result: dict[str, Any]) -> bool:
        """Keep ``result``; True when it is new progress (not a re-run after a restart
        from an older checkpoint, which is recorded but must not be acted on again)."""
        self.trial.record_result(result)
        iteration = result.get("training_iteration", 0)
        if iteration <= self.trial.max_iteration:
            return False
        self.trial.max_iteration = iteration
        return True

    def on_preempted(self, event: dict[str, Any]) -> None:
        self.trial.preemptions += 1

    def on_paused(self, event: dict[str, Any]) -> None:
        self._running_again().paused()

    def on_complete(self, event: dict[str, Any]) -> None:
        self._running_again().finish()
        self.mark_done()

    def mark_done(self) -> None:
        """The trial completed: its last result says ``done`` (as in Ray)."""
        if self.trial.last_result:
            self.trial.last_result["done"] = True

    def on_stop_decided(self, event: dict[str, Any]) -> None:
        self.mark_done()  # a stopper or scheduler ended it: its final result says done (Ray)

    def on_stopped(self, event: dict[str, Any]) -> None:
        self._running_again().finish()
        self.mark_done()
        if event.get(ev.CHECKPOINT):  # checkpoint_at_end, saved as the trial stopped
            self.trial.checkpoint = event[ev.CHECKPOINT]

    def on_error(self, event: dict[str, Any]) -> None:
        self.trial.num_failures += 1
        self._running_again().fail(event.get(ev.ERROR, "unknown error"))

    def on_exploited(self, event: dict[str, Any]) -> None:
        """PBT: the trial goes on from its donor's checkpoint; it waits to be resubmitted."""
        self._running_again().exploited(relaunch=True)
        self.continue_from_donor(event)

    def continue_from_donor(self, event: dict[str, Any]) -> None:
        """An ``exploited`` event's facts: the trial's next results are new progress from the
        donor's checkpoint (iteration ``donor_iteration``), which it now descends from."""
        trial = self.trial
        trial.max_iteration = int(event.get(ev.DONOR_ITERATION, 0) or 0)
        trial.lineage = [*trial.lineage, f"{event.get(ev.DONOR)}@{trial.max_iteration}"]
        if event.get(ev.CHECKPOINT):
            trial.checkpoint = event[ev.CHECKPOINT]

    def on_resources_changed(self, event: dict[str, Any]) -> None:
        """ResourceChangingScheduler: the trial was resubmitted with a new request."""
        new = event.get(ev.NEW_RESOURCES)
        if isinstance(new, dict):
            self.trial.resources = dict(new)

    def _running_again(self) -> Trial:
        """The trial, reopened if the log goes on after an end it recorded (a retry after an
        error, an exploit after a completion: the driver ran it again)."""
        if self.trial.is_finished:
            self.trial.reopen()
        return self.trial


def checkpoint_name_ok(name: object, trial_id: str) -> bool:
    """True for a checkpoint name that is one path component; a crafted one (``../..``) is
    never used as a path: False, with a warning naming the trial."""
    try:
        check_component(name, "checkpoint name")
    except UnsafeFileError as exc:
        warnings.warn(f"Trial {trial_id}: its result log names a checkpoint that is not used: {exc}", stacklevel=3)
        return False
    return True


def replay_trial(exp: ExperimentDir, trial_id: str, real_config: bool = True,
                 trainable_name: str | None = None) -> Trial:
    """A trial as its result log tells it; its config as the trainable got it (``params.pkl``),
    or with ``real_config=False`` the text view of ``params.json`` (no pickle is loaded).
    ``trainable_name``: the experiment's (read from ``experiment.json`` when not given)."""
    path = exp.result_log_path(trial_id)
    events = read_events(path)
    meta = trial_meta(exp, trial_id, events)
    config = trial_config(exp, trial_id) if real_config else exp.read_params(trial_id)
    trial = Trial(trial_id, config, meta.get("experiment_tag", ""),
                  str(exp.trial_dir(trial_id)), resources=meta.get("resources", {}),
                  trial_name=meta.get("trial_name", ""), dirname=meta.get("trial_dirname", ""),
                  trainable_name=_trainable_name(exp) if trainable_name is None else trainable_name)
    replay = TrialReplay(trial, stopped_after(events, path))
    for event in events:
        dispatch(event, replay, path)
    return trial


def stopped_after(events: list[dict[str, Any]], path: object = "a result log") -> int | None:
    """The iteration after which the driver stopped the trial (its first ``stop_decided``)."""
    for event in events:
        if ev.event_kind(event, path) is ev.EventKind.STOP_DECIDED:
            return int(event.get(ev.AT_ITERATION, 0) or 0)
    return None


def _after_stop(result: dict[str, Any], cutoff: int | None) -> bool:
    return cutoff is not None and result.get("training_iteration", 0) > cutoff


def trial_config(exp: ExperimentDir, trial_id: str) -> dict[str, Any]:
    """The trial's real config; its text view, with a warning, when the pickle cannot be loaded
    here (a module it needs is not importable, or the file is not safe to load)."""
    try:
        return exp.read_config(trial_id)
    except Exception as exc:  # noqa: BLE001 - unpickling can raise anything; the view still helps
        warnings.warn(f"Trial {trial_id}: its config could not be loaded from "
                      f"{exp.params_pickle_path(trial_id)} ({type(exc).__name__}: {exc}); using the "
                      f"text view of {exp.params_path(trial_id).name} instead.", stacklevel=2)
        return exp.read_params(trial_id)


def trial_meta(exp: ExperimentDir, trial_id: str, events: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The trial's metadata record (``storage/trial_meta``: the last ``meta`` event of its log,
    ``events`` when already read, or an older hpctune's ``trial.json``); ExperimentStateError
    naming the file when it is damaged."""
    path = exp.trial_meta_path(trial_id)
    try:
        if events is None:
            events = read_events(exp.result_log_path(trial_id))
        if any(e.get(ev.KIND) == ev.EventKind.META.value for e in events):
            path = exp.result_log_path(trial_id)
        meta = meta_of(events, exp.trial_meta_path(trial_id))
    except (ValueError, OSError) as exc:  # not JSON, not a regular file, too big
        meta = exc
    if not isinstance(meta, dict):
        why = f"{type(meta).__name__}: {meta}" if isinstance(meta, Exception) else "not a JSON object"
        raise ExperimentStateError(f"{path} is damaged ({why}). It holds the trial's tag and resources: "
                                   "restore it from a backup, or move the trial's directory out of the "
                                   "experiment to leave the trial out.")
    return meta


def load_trials(exp: ExperimentDir, real_config: bool = True) -> list[Trial]:
    """Every trial rebuilt from its log; the driver's snapshot adds what only the driver knew
    (a trial still queued, an error the worker could not write). A trial whose files cannot be
    read is kept as an ERROR trial saying why (with a warning): the others still load. A
    directory the driver is still creating (``being_created``) is no trial yet."""
    snapshot = {t.get("trial_id"): t for t in _snapshot_trials(exp)}
    trainable = _trainable_name(exp)  # read once, not once per trial
    trials = []
    for trial_id in exp.trial_ids():
        if trial_id not in snapshot and being_created(exp, trial_id):
            continue
        try:
            trial = replay_trial(exp, trial_id, real_config, trainable)
        except Exception as exc:  # noqa: BLE001 - a damaged file of one trial must not hide the rest
            trials.append(_unreadable(exp, trial_id, exc))
            continue
        known = snapshot.get(trial_id)
        if known and trial.status is not TrialStatus.TERMINATED:
            trial.restore_status(TrialStatus(known["status"]), known.get("error"))
        trials.append(trial)
    return trials


def being_created(exp: ExperimentDir, trial_id: str) -> bool:
    """True for a trial directory the driver is creating (or died creating): no log yet and no
    older hpctune's ``trial.json``. The driver writes the config, then the trial's record as
    the log's first event, then launches it: such a directory holds no trial yet, and its
    ``params.json`` may be half written (``storage/new_trial``). One stat, not a read."""
    try:
        logged = exp.result_log_path(trial_id).stat().st_size > 0
    except FileNotFoundError:
        logged = False
    return not logged and not exp.trial_meta_path(trial_id).exists()


def _trainable_name(exp: ExperimentDir) -> str:
    """The trainable's name in ``experiment.json`` ("" when that file is damaged: the trials'
    default names then lack it, and the rest still loads)."""
    try:
        spec = exp.read_experiment()
    except (ValueError, OSError):
        return ""
    name = spec.get("trainable", "") if isinstance(spec, dict) else ""
    return name if isinstance(name, str) else ""


def _snapshot_trials(exp: ExperimentDir) -> list[dict[str, Any]]:
    try:
        state = read_trial_state(exp)
    except (ValueError, OSError, AttributeError, ExperimentStateError) as exc:
        warnings.warn(f"{exp.state_path} cannot be read ({type(exc).__name__}: {exc}): the trials are "
                      "rebuilt from their result logs alone.", stacklevel=3)
        return []
    return list(state.trials.values()) if state is not None else []


def _unreadable(exp: ExperimentDir, trial_id: str, exc: Exception) -> Trial:
    """A trial whose files cannot be read: ERROR, saying which file and why (and a warning)."""
    message = str(exc) if isinstance(exc, ExperimentStateError) else (
        f"Trial {trial_id} cannot be read from {exp.trial_dir(trial_id)} ({type(exc).__name__}: {exc}).")
    warnings.warn(f"{message} It is shown as an errored trial.", stacklevel=3)
    trial = Trial(trial_id, {}, "", str(exp.trial_dir(trial_id)))
    trial.fail(message)
    return trial


def snapshot_trials(exp: ExperimentDir) -> list[Trial]:
    """Trials from the driver's snapshot (one small read, at most a few seconds old), or
    rebuilt from the logs when the driver has not written one yet."""
    state = read_trial_state(exp)  # state.json and the journal of changes since
    if state is None:
        return load_trials(exp, real_config=False)  # displays: the text view, no pickle loaded
    for problem in state.problems:
        warnings.warn(problem, stacklevel=2)
    return [Trial.from_dict(t) for t in state.trials.values()]


def trial_results(log_path: Path) -> list[dict[str, Any]]:
    """The results of a trial's surviving run (``ExperimentDir.result_log_path``), in order.

    A run restarted from an older checkpoint reports some iterations again; the later
    report replaces the earlier ones from that iteration on, so each ``training_iteration``
    appears once, as the trial's final lineage has it. A PBT exploit continues from the
    donor's checkpoint: the trial's results after that iteration (or after the decision,
    whichever is earlier) leave the lineage.
    """
    results: list[dict[str, Any]] = []
    events = read_events(log_path)
    cutoff = stopped_after(events, log_path)
    for event in events:
        kind = ev.event_kind(event, log_path)
        if kind is ev.EventKind.EXPLOITED:
            keep = min(int(event.get(ev.DONOR_ITERATION, 0) or 0), int(event.get(ev.STEP, 0) or 0))
            while results and results[-1].get("training_iteration", 0) > keep:
                results.pop()
            continue
        if kind is not ev.EventKind.RESULT:
            continue
        result = event[ev.RESULT]
        if _after_stop(result, cutoff):
            continue
        iteration = result.get("training_iteration")
        while results and iteration is not None and results[-1].get("training_iteration", 0) >= iteration:
            results.pop()
        results.append(result)
    return results
