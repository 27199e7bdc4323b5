"""Repeater: run each suggestion several times and tell the searcher the average."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field

from hpctune.core.objective import finite_or_none
from hpctune.errors import ConfigError
from hpctune.tune.search.searcher import Searcher, SearcherWrapper

logger = logging.getLogger(__name__)

TRIAL_INDEX = "__trial_index__"
"""Config key holding a repeat's index (0 .. repeat-1), e.g. to seed it."""


@dataclass
class _Group:
    """The trials that share one suggestion; ``primary`` is the id the searcher knows."""

    primary: str
    config: dict
    trial_ids: list[str] = field(default_factory=list)
    # trial id -> its metric values (None where missing), or None when the trial failed
    ended: dict[str, list[float | None] | None] = field(default_factory=dict)


class Repeater(SearcherWrapper):
    """Runs each suggestion of ``searcher`` ``repeat`` times and reports the mean metric.

    The wrapped searcher sees one trial per suggestion (the first repeat's id) and hears
    of it once every repeat has ended, with the metric averaged over the repeats that
    reported it; if none did, it is told the trial failed. Intermediate results are not
    forwarded. With ``set_index`` each config gets ``"__trial_index__"``. Set
    ``num_samples`` to a multiple of ``repeat``; avoid early-stopping schedulers, whose
    stopped trials would drag the average.
    """

    def __init__(self, searcher: Searcher, repeat: int = 1, set_index: bool = True):
        if not isinstance(searcher, Searcher):
            raise ConfigError(f"Repeater wraps a Searcher, got {type(searcher).__name__}.")
        if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
            raise ConfigError(f"The value of `repeat` is {repeat!r}, but must be an int >= 1.")
        super().__init__(searcher)
        self.repeat = repeat
        self.set_index = set_index
        self._groups: dict[str, _Group] = {}  # every not yet reported trial id -> its group
        self._current: _Group | None = None

    def suggest(self, trial_id: str) -> dict | None | str:
        if self._current is None or len(self._current.trial_ids) >= self.repeat:
            config = self.searcher.suggest(trial_id)
            if not isinstance(config, dict):
                return config
            self._current = _Group(trial_id, copy.deepcopy(config))
        group = self._current
        group.trial_ids.append(trial_id)
        self._groups[trial_id] = group
        config = copy.deepcopy(group.config)
        if self.set_index:
            config[TRIAL_INDEX] = len(group.trial_ids) - 1
        return config

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Not forwarded: the wrapped searcher only hears the mean over the repeats."""

    def on_trial_stopped_early(self, trial_id: str, result: dict | None) -> None:
        self.on_trial_complete(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        group = self._groups.get(trial_id)
        if group is None:
            logger.warning("Repeater: trial %s is unknown or already counted; ignored.", trial_id)
            return
        metrics = self._metric_names()
        group.ended[trial_id] = None if error else [finite_or_none((result or {}).get(m)) for m in metrics]
        if len(group.ended) == self.repeat:
            self._report_group(group, metrics)

    def _metric_names(self) -> list[str]:
        metric = self.searcher.metric
        if not metric:
            raise ConfigError("Repeater needs the wrapped searcher's `metric` to average.")
        return metric if isinstance(metric, list) else [metric]

    def _report_group(self, group: _Group, metrics: list[str]) -> None:
        means = {}
        for index, metric in enumerate(metrics):
            values = [v[index] for v in group.ended.values() if v and v[index] is not None]
            if values:
                means[metric] = sum(values) / len(values)
        for trial_id in group.trial_ids:
            self._groups.pop(trial_id, None)
        if len(means) < len(metrics):
            self.searcher.on_trial_complete(group.primary, None, error=True)
        else:
            result = {**means, "config": copy.deepcopy(group.config)}
            self.searcher.on_trial_complete(group.primary, result)

    def get_state(self) -> dict:
        groups = {id(g): g for g in self._groups.values()}
        if self._current is not None:
            groups[id(self._current)] = self._current
        current = self._current.primary if self._current is not None else None
        return {
            "groups": [copy.deepcopy(g) for g in groups.values()],
            "current": current,
            "searcher": self.searcher.get_state(),
        }

    def set_state(self, state: dict) -> None:
        self._groups, self._current = {}, None
        for group in state["groups"]:
            if group.primary == state["current"]:
                self._current = group
            for trial_id in group.trial_ids:
                if len(group.ended) < self.repeat:
                    self._groups[trial_id] = group
        self.searcher.set_state(state["searcher"])
