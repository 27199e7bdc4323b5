"""Between the controller and the user's scheduler and searcher: the same calls for every form.

The controller calls a scheduler with a ``TrialInfo`` and a result. ``SchedulerBridge`` passes
those calls on to the user's scheduler: results flattened (``"val/acc"``), decisions as
``Decision`` (Ray's strings too), Ray's signatures (``on_trial_result(tune_controller, trial,
result)``) with a read-only ``RunView`` and the trial's full record, and a new trial named
(``TuneConfig(trial_name_creator=...)``) before anything else hears of it. ``FlatResults``
does the flattening for a searcher's completion calls. Neither decides anything itself.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpctune.backends.capacity import cluster_resources
from hpctune.core.checks import strict_metric_checking
from hpctune.core.decision_points import EVERY, DecisionPoints, declared
from hpctune.core.metrics import flatten
from hpctune.errors import ConfigError
from hpctune.storage.pbt_files import read_policy_rows
from hpctune.tune.experiment.trial import Trial, TrialInfo
from hpctune.tune.schedulers.trial_scheduler import (
    RAY_NOOP,
    ChangeResources,
    Decision,
    Exploit,
    SchedulerDecision,
    TrialScheduler,
    ray_style_hooks,
)
from hpctune.tune.search.searcher import Searcher, SearcherWrapper

if TYPE_CHECKING:
    from hpctune.controller.controller import Controller
    from hpctune.controller.trial_names import TrialNamer

class RunView:
    """The ``tune_controller`` a Ray-style scheduler gets: a read-only view of the run."""

    def __init__(self, controller: Controller):
        self._ctl = controller

    def get_trials(self) -> list[Trial]:
        """Every trial of the experiment so far."""
        return self._ctl.trial_list

    def get_live_trials(self) -> list[Trial]:
        """The trials that have not ended."""
        return self._ctl.live_trials

    @property
    def experiment_path(self) -> str:
        return str(self._ctl.exp.root)


class SchedulerBridge(TrialScheduler):
    """Calls the user's scheduler in its own form (see the module docstring)."""

    def __init__(self, scheduler: Any, namer: TrialNamer | None = None, trainable_name: str = ""):
        super().__init__()
        self.scheduler = scheduler
        self.ray_hooks = ray_style_hooks(scheduler)
        self.namer, self.trainable_name = namer, trainable_name
        self._ctl: Controller | None = None
        if getattr(scheduler, "needs_policy_rows", False):  # PBT replay: the driver reads files
            scheduler.set_policy(read_policy_rows(scheduler.policy_file))

    def bind(self, controller: Controller) -> None:
        """The run whose trials the scheduler's hooks get (before the first call); a scheduler
        that shares the cluster's CPUs/GPUs out (ResourceChangingScheduler) learns how many."""
        self._ctl = controller
        wants = getattr(self.scheduler, "wants_cluster_resources", False)
        if wants and not getattr(self.scheduler, "cluster_resources", None):  # the user's wins
            self.scheduler.set_cluster_resources(cluster_resources(controller.backend))

    # -- what the Tuner and the snapshots ask of a scheduler ------------------------------------
    @property
    def metric(self) -> Any:
        return getattr(self.scheduler, "metric", None)

    @property
    def mode(self) -> Any:
        return getattr(self.scheduler, "mode", None)

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return self.scheduler.set_search_properties(metric, mode, **spec)

    def get_state(self) -> dict:
        return self.scheduler.get_state()

    def set_state(self, state: dict) -> None:
        self.scheduler.set_state(state)

    def debug_string(self) -> str:
        return self.scheduler.debug_string()

    # -- the hooks --------------------------------------------------------------------------------
    def on_trial_add(self, trial: TrialInfo) -> None:
        record = self._record(trial)
        if isinstance(record, Trial):
            record.trainable_name = record.trainable_name or self.trainable_name
            if self.namer is not None and self._ctl is not None:
                self.namer.name(record, self._ctl.trials.values())
        self._call("on_trial_add", trial)

    def initial_config(self, trial: TrialInfo) -> Mapping[str, Any] | None:
        """The new trial's config as the scheduler completes it (PBT fills the keys the search
        space lacks), or None (schedulers without the hook: Ray's, the user's own)."""
        method = getattr(self.scheduler, "initial_config", None)
        return method(trial) if method is not None else None

    def on_trial_result(self, trial: TrialInfo, result: dict) -> SchedulerDecision:
        flat = flatten(result)
        metric = self.metric
        if isinstance(metric, str) and metric not in flat and not strict_metric_checking():
            return Decision.CONTINUE
        return self._decision(self._call("on_trial_result", trial, flat))

    def decision_points(self, trial: TrialInfo) -> DecisionPoints:
        """The user's scheduler's declaration; every result for one with Ray's hooks."""
        if "on_trial_result" in self.ray_hooks:
            return EVERY
        return declared(self.scheduler, "on_trial_result", trial)

    def resume_decision(self, trial: TrialInfo) -> SchedulerDecision | None:
        """The scheduler's word on a PAUSED trial (schedulers without the hook: resume it)."""
        method = getattr(self.scheduler, "resume_decision", None)
        if method is None:
            return Decision.CONTINUE
        value = method(trial)
        return None if value is None else self._decision(value)

    def on_trial_complete(self, trial: TrialInfo, result: dict | None) -> None:
        self._call("on_trial_complete", trial, flatten(result) if result else result)

    def on_trial_error(self, trial: TrialInfo) -> None:
        self._call("on_trial_error", trial)

    def on_trial_remove(self, trial: TrialInfo) -> None:
        self._call("on_trial_remove", trial)

    def _call(self, hook: str, trial: TrialInfo, *args: Any) -> Any:
        method = getattr(self.scheduler, hook, None)
        if method is None:
            return None
        if hook in self.ray_hooks:
            view = RunView(self._ctl) if self._ctl is not None else None
            return method(view, self._record(trial), *args)
        return method(trial, *args)

    def _record(self, trial: TrialInfo) -> Any:
        """The controller's record of the trial (Ray's schedulers read its status, results)."""
        if self._ctl is None:
            return trial
        return self._ctl.trials.get(trial.trial_id, trial)

    def _decision(self, value: Any) -> SchedulerDecision:
        if value is None or value == RAY_NOOP:
            return Decision.CONTINUE
        if isinstance(value, (Exploit, ChangeResources)):
            return value
        try:
            return Decision(value)
        except ValueError:
            raise ConfigError(
                f"{type(self.scheduler).__name__}.on_trial_result returned {value!r}: return "
                "TrialScheduler.CONTINUE, PAUSE or STOP (or Ray's strings 'CONTINUE', 'PAUSE', "
                "'STOP', 'NOOP'), or schedulers.Exploit(donor_trial_id, new_config).") from None


_BRIDGE_CLASSES: dict[str, type[SchedulerBridge]] = {}


def bridge_scheduler(scheduler: Any, namer: TrialNamer | None = None,
                     trainable_name: str = "") -> SchedulerBridge:
    """The bridge to ``scheduler``, of a class named like it ("Using ASHAScheduler ...")."""
    name = type(scheduler).__name__
    cls = _BRIDGE_CLASSES.setdefault(name, type(name, (SchedulerBridge,), {}))
    return cls(scheduler, namer, trainable_name)


def user_searcher(searcher: Any) -> Any:
    """The user's own searcher inside hpctune's wrappers (FlatResults, SampleLimiter,
    ConcurrencyLimiter...): the one an error message names."""
    seen = 0
    while isinstance(searcher, SearcherWrapper) and seen < 32:
        searcher, seen = searcher.searcher, seen + 1
    return searcher


def _bad_key(config: dict, path: str = "") -> str | None:
    """The first key of ``config`` (nested dicts too) that is not a string, as a path."""
    for key, value in config.items():
        if not isinstance(key, str):
            return f"{path}{key!r} (type {type(key).__name__})"
        if isinstance(value, dict):
            bad = _bad_key(value, f"{path}{key}/")
            if bad is not None:
                return bad
    return None


def checked_suggestion(searcher: Any, trial_id: str, config: Any) -> dict | None | str:
    """``config`` as ``searcher.suggest(trial_id)`` returned it, if it is a suggestion the
    controller can use: a dict with string keys, None (nothing now) or ``Searcher.FINISHED``.
    Anything else is a ConfigError naming the searcher and what it returned, raised before the
    trial exists (a non-dict counted as no suggestion once created trials without end)."""
    if config is None or (isinstance(config, str) and config == Searcher.FINISHED):
        return config
    if isinstance(config, dict) and _bad_key(config) is None:
        return config
    name = type(user_searcher(searcher)).__name__
    if isinstance(config, dict):
        what = f"a dict whose key {_bad_key(config)} is not a string"
    else:
        shown = repr(config)
        what = f"{shown[:80] + '...' if len(shown) > 80 else shown} (type {type(config).__name__})"
    raise ConfigError(
        f"{name}.suggest({trial_id!r}) returned {what}: a searcher must return a config dict "
        "with string keys, None when it has nothing to suggest yet, or Searcher.FINISHED when "
        "it is done. Nothing was written for this trial; fix the searcher and rerun (or "
        "Tuner.restore) the experiment.")


class FlatResults(SearcherWrapper):
    """Forwards everything to the user's searcher, with the results of ended trials flattened
    (results during the run reach it flattened already), and keeps its state format; what it
    suggests is checked first (``checked_suggestion``)."""

    def suggest(self, trial_id: str) -> dict | None | str:
        return checked_suggestion(self.searcher, trial_id, self.searcher.suggest(trial_id))

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.searcher.on_trial_complete(trial_id, flatten(result) if result else result, error)

    def on_trial_stopped_early(self, trial_id: str, result: dict | None) -> None:
        self.searcher.on_trial_stopped_early(trial_id, flatten(result) if result else result)

    def get_state(self) -> dict:
        return self.searcher.get_state()

    def set_state(self, state: dict) -> None:
        self.searcher.set_state(state)

    def save_to_dir(self, checkpoint_dir: Any) -> None:
        self.searcher.save_to_dir(checkpoint_dir)

    def __getattr__(self, name: str) -> Any:
        if name == "searcher":  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.searcher, name)


def wrap_searcher(searcher: Searcher) -> Searcher:
    """``searcher`` seen through ``FlatResults`` (for model-based searchers the Tuner wraps)."""
    return FlatResults(searcher)


_PACKAGE = str(Path(__file__).resolve().parents[1])


def note_user_error(exc: BaseException, experiment: str | Path) -> None:
    """Add to an exception the user's code raised in the driver (a searcher's ``suggest``, a
    stopper, a scheduler's or a callback's hook) a note that says where hpctune called it
    from and that the experiment can be continued: the exception itself stays what the user's
    code raised (as in Ray), but no longer reads like hpctune's own failure. hpctune's own
    errors are left alone (their messages say all that)."""
    from hpctune.errors import HpctuneError

    if isinstance(exc, HpctuneError) or not hasattr(exc, "add_note"):  # add_note: Python >= 3.11
        return
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [i for i, f in enumerate(frames) if str(Path(f.filename).resolve()).startswith(_PACKAGE)]
    if not ours or ours[-1] == len(frames) - 1:
        return  # raised inside hpctune, not by the user's code
    caller, raiser = frames[ours[-1]], frames[ours[-1] + 1]
    exc.add_note(f"hpctune: raised by your code, {raiser.name}() at {raiser.filename}:{raiser.lineno}, "
                 f"called by the driver ({Path(caller.filename).name}, {caller.name}). The "
                 f"experiment's state is saved: fix the code, then Tuner.restore('{experiment}', ...) "
                 "or `hpctune resume` continues it.")
