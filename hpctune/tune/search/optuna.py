"""OptunaSearch: Optuna's samplers (TPE by default) behind the Searcher interface.

Suggestions use Optuna's ask/tell interface, so each ``suggest`` asks at once: trials run
asynchronously, with no batch barrier. hpctune search spaces (nested dicts allowed) are
converted to Optuna distributions under "/"-joined keys; a define-by-run function
``space(trial) -> dict | None`` gives conditional spaces. ``optuna`` is imported here
only, so ``import hpctune.tune.search`` works without it.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable
from typing import Any

from hpctune.core.metrics import flatten
from hpctune.core.objective import check_state_version, finite_or_none
from hpctune.errors import ConfigError, SearchSpaceError
from hpctune.tune.search.optuna_space import (
    INSTALL_HINT,
    _contains_searchable,
    _Param,
    convert_search_space,
)
from hpctune.tune.search.searcher import Searcher
from hpctune.tune.search.space_conversion import check_objectives, fill, merge, unflatten

try:
    import optuna
    from optuna.trial import TrialState
except ImportError:  # pragma: no cover - exercised by monkeypatching in the tests
    optuna = None

logger = logging.getLogger(__name__)

TRAINING_ITERATION = "training_iteration"
_STATE_VERSION = 1


def _require_optuna() -> None:
    if optuna is None:
        raise ImportError(INSTALL_HINT)


# ---------------------------------------------------------------- the searcher


class OptunaSearch(Searcher):
    """Optuna's samplers (TPE by default) as an hpctune Searcher.

    ``space``: an hpctune search space (nested dicts allowed; constants are copied into
    every config), a dict of Optuna distributions, or a define-by-run function
    ``space(optuna_trial) -> dict | None`` whose returned dict holds constants to add.
    Without ``space`` the Tuner's ``param_space`` is converted. ``metric``/``mode`` may be
    lists (multi-objective). ``points_to_evaluate`` are run first; with
    ``evaluated_rewards`` they are told to Optuna as finished instead. ``sampler``
    defaults to ``TPESampler(seed=seed)``.
    """

    def __init__(
        self,
        space: dict | Callable[[Any], dict | None] | None = None,
        metric: str | list[str] | None = None,
        mode: str | list[str] | None = None,
        points_to_evaluate: list[dict] | None = None,
        sampler: Any = None,
        seed: int | None = None,
        evaluated_rewards: list | None = None,
    ):
        _require_optuna()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        check_objectives(metric, mode)
        super().__init__(None if isinstance(metric, list) else metric,
                         None if isinstance(mode, list) else mode)
        self._metric, self._mode = metric, mode
        if sampler is not None and not isinstance(sampler, optuna.samplers.BaseSampler):
            raise ConfigError(f"`sampler` must be an optuna.samplers.BaseSampler, got {sampler!r}.")
        if sampler is not None and seed is not None:
            logger.warning("OptunaSearch: `seed` is ignored when a `sampler` is passed; seed it.")
        self._sampler, self._seed = sampler, seed
        self._points = [dict(p) for p in points_to_evaluate or []]
        self._rewards = None if evaluated_rewards is None else list(evaluated_rewards)
        if self._rewards is not None and len(self._rewards) != len(self._points):
            raise ConfigError(
                f"`evaluated_rewards` has {len(self._rewards)} values but `points_to_evaluate` "
                f"has {len(self._points)} points; they must match one to one."
            )
        self._define_by_run: Callable | None = None
        self._params: dict[str, _Param] = {}
        self._template: dict = {}
        self._extra: dict = {}
        self._set_space(space)
        self._check_points()
        self._study: Any = None
        self._trials: dict[str, Any] = {}  # running: trial_id -> optuna.trial.Trial
        self._finished: set[str] = set()
        self._last_step: dict[str, int] = {}

    def _set_space(self, space: Any) -> None:
        if space is None or (isinstance(space, dict) and not space):
            return
        if callable(space) and not isinstance(space, dict):
            if self._rewards is not None:
                raise ConfigError(
                    "`evaluated_rewards` needs a dict search space, not a define-by-run "
                    "function: Optuna must know the distributions of the evaluated points."
                )
            self._define_by_run = space
        elif not isinstance(space, dict):
            raise ConfigError(f"`space` must be a dict or a define-by-run function, got {space!r}.")
        elif _contains_searchable(space):
            self._params, self._template = convert_search_space(space), space
        else:
            self._extra = space

    @property
    def study(self) -> Any:
        """The ``optuna.Study`` (created at the first suggestion), for inspection."""
        return self._study

    @property
    def has_space(self) -> bool:
        return bool(self._params) or self._define_by_run is not None

    @property
    def _metrics(self) -> list[str]:
        return self._metric if isinstance(self._metric, list) else [self._metric]

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec: Any
    ) -> bool:
        """Adopt the Tuner's metric, mode and param_space; False if they clash with ours.

        A param_space with search spaces is converted when this searcher has none (or the
        same one, as after a restore); one with constants only is merged into every config.
        """
        check_objectives(metric, mode)
        params = None
        if config and _contains_searchable(config):
            if self._define_by_run is not None:
                return False
            params = convert_search_space(config)
            if self._params and params != self._params:
                return False
        if not super().set_search_properties(metric, mode, config, **spec):
            return False
        if params is not None:
            self._params, self._template = params, config
        elif config:
            self._extra = merge(self._extra, config)
        self._check_points()
        return True

    def _check_points(self) -> None:
        """A SearchSpaceError now, before the experiment is written, for a point of
        ``points_to_evaluate`` that names a parameter the space lacks."""
        if self._define_by_run is None and self._params:
            for point in self._points:
                self._encode_point(point, strict=True)

    # -- study set-up

    def _ensure_study(self) -> Any:
        if self._study is not None:
            return self._study
        if not self.has_space:
            raise ConfigError(
                "OptunaSearch has no search space: pass OptunaSearch(space=...) or "
                "Tuner(param_space={...}) with search spaces such as tune.uniform(0, 1)."
            )
        if not self._metric or not self._mode:
            raise ConfigError(
                "OptunaSearch needs `metric` and `mode`: pass them to OptunaSearch(...) or to "
                "TuneConfig(metric='loss', mode='min')."
            )
        modes = self._mode if isinstance(self._mode, list) else [self._mode]
        self._study = optuna.create_study(
            sampler=self._sampler or optuna.samplers.TPESampler(seed=self._seed),
            pruner=optuna.pruners.NopPruner(),
            directions=["minimize" if m == "min" else "maximize" for m in modes],
        )
        for index, point in enumerate(self._points):
            params = self._encode_point(point, strict=True)
            if self._rewards is None:
                self._study.enqueue_trial(params)
            else:
                reward = self._rewards[index]
                self._add_finished(params, reward if isinstance(reward, list) else [reward])
        return self._study

    def _encode_point(self, config: dict, strict: bool) -> dict[str, Any]:
        """Optuna params for a config: flattened, encoded, constants dropped."""
        flat = flatten(config)
        if self._define_by_run is not None:
            return flat
        known = set(flatten(self._template)) | set(self._params)
        unknown = [key for key in flat if key not in known]
        if strict and unknown:
            raise SearchSpaceError(
                f"points_to_evaluate names {unknown[0]!r}, which is not in the search space "
                f"(parameters: {sorted(self._params)})."
            )
        return {k: self._params[k].encode(v) for k, v in flat.items() if k in self._params}

    def _add_finished(self, params: dict[str, Any], values: list) -> None:
        numbers = [finite_or_none(v) for v in values]
        if None in numbers or len(numbers) != len(self._metrics):
            raise ConfigError(f"Evaluated reward {values!r} must be {len(self._metrics)} finite number(s).")
        dists = {key: self._params[key].dist for key in params}
        self._study.add_trial(
            optuna.trial.create_trial(params=params, distributions=dists, values=numbers)
        )

    # -- ask

    def suggest(self, trial_id: str) -> dict | None:
        """Ask Optuna for a new trial at once (no waiting for other trials)."""
        study = self._ensure_study()
        trial = self._trials.get(trial_id)
        if trial is None:
            fixed = None if self._define_by_run else {k: p.dist for k, p in self._params.items()}
            trial = study.ask(fixed)
            self._trials[trial_id] = trial
        try:
            config = self._config_of(trial)
        except BaseException:
            del self._trials[trial_id]
            study.tell(trial.number, state=TrialState.FAIL)
            raise
        return merge(self._extra, config) if self._extra else config

    def _config_of(self, trial: Any) -> dict:
        if self._define_by_run is None:
            values = {k: self._params[k].decode(v) for k, v in trial.params.items()}
            return fill(self._template, values)
        constants = self._define_by_run(trial)
        if constants is not None and not isinstance(constants, dict):
            raise ConfigError(
                "The define-by-run function passed as `space` must return None or a dict of "
                f"constants, got {type(constants).__name__}."
            )
        return unflatten({**trial.params, **(constants or {})})

    # -- tell

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Report the metric as an intermediate value at step ``training_iteration``."""
        trial = self._trials.get(trial_id)
        if trial is None or isinstance(self._metric, list):
            return  # unknown or finished; Optuna has no intermediate values for multi-objective
        value = finite_or_none(result.get(self._metric))
        if value is not None:
            self._report(trial_id, trial, value, result.get(TRAINING_ITERATION))

    def _report(self, trial_id: str, trial: Any, value: float, step: Any) -> None:
        last = self._last_step.get(trial_id)
        step = int(step) if step is not None else (0 if last is None else last + 1)
        if last is not None and step <= last:
            return  # already reported (Optuna would warn and ignore it)
        trial.report(value, step)
        self._last_step[trial_id] = step

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        """Tell COMPLETE with the metric; FAIL on error or when the metric is missing."""
        trial = self._trials.pop(trial_id, None)
        if trial is None:
            self._adopt(trial_id, result, error)
            return
        values = None if error else self._objective_values(trial_id, result)
        if values is None:
            self._study.tell(trial.number, state=TrialState.FAIL)
        else:
            self._study.tell(trial.number, values)
        self._finish(trial_id)

    def on_trial_stopped_early(self, trial_id: str, result: dict | None) -> None:
        """Tell PRUNED, after reporting the last result so samplers can use it."""
        trial = self._trials.get(trial_id)
        if trial is None:
            logger.warning("OptunaSearch: trial %s is not running here; ignored.", trial_id)
            return
        if result:
            self.on_trial_result(trial_id, result)
        del self._trials[trial_id]
        self._study.tell(trial.number, state=TrialState.PRUNED)
        self._finish(trial_id)

    def _finish(self, trial_id: str) -> None:
        self._finished.add(trial_id)
        self._last_step.pop(trial_id, None)

    def _objective_values(self, trial_id: str, result: dict | None) -> list[float] | None:
        values = []
        for metric in self._metrics:
            value = finite_or_none((result or {}).get(metric))
            if value is None:
                logger.warning(
                    "OptunaSearch: trial %s ended without a finite value for metric %r "
                    "(result keys: %s); Optuna records the trial as FAIL.",
                    trial_id, metric, sorted(result or {}),
                )
                return None
            values.append(value)
        return values

    def _adopt(self, trial_id: str, result: dict | None, error: bool) -> None:
        """Record a trial this searcher did not ask for (asked after the last save)."""
        config = (result or {}).get("config")
        if trial_id in self._finished:
            logger.warning("OptunaSearch: trial %s already finished; ignored.", trial_id)
            return
        if error or self._study is None or self._define_by_run or not isinstance(config, dict):
            logger.warning("OptunaSearch: trial %s was not suggested here; ignored.", trial_id)
            return
        values = self._objective_values(trial_id, result)
        try:
            params = self._encode_point(config, strict=False)
            if values is not None:
                self._add_finished(params, values)
        except (ConfigError, ValueError) as exc:
            logger.warning("OptunaSearch: cannot record trial %s: %s", trial_id, exc)
            return
        self._finish(trial_id)

    # -- state

    def get_state(self) -> dict:
        """A snapshot: the study (in-memory storage, sampler RNG included), running trials."""
        return {
            "version": _STATE_VERSION,
            "metric": self._metric,
            "mode": self._mode,
            "params": self._params,
            "template": self._template,
            "extra": self._extra,
            "define_by_run": self._define_by_run is not None,
            # one pickle, so that the running trials keep pointing at this study
            "study": pickle.dumps((self._study, self._trials)),
            "finished": set(self._finished),
            "last_step": dict(self._last_step),
        }

    def set_state(self, state: dict) -> None:
        check_state_version(state, _STATE_VERSION, self)
        if state["define_by_run"] and self._define_by_run is None:
            raise ConfigError(
                "The saved OptunaSearch used a define-by-run space: create it with the same "
                "function, OptunaSearch(space=fn), before restoring."
            )
        self._metric, self._mode = state["metric"], state["mode"]
        self._params, self._template = state["params"], state["template"]
        self._extra = state["extra"]
        self._study, self._trials = pickle.loads(state["study"])
        self._finished = set(state["finished"])
        self._last_step = dict(state["last_step"])
