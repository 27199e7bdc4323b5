"""ConcurrencyLimiter: at most ``max_concurrent`` trials of a searcher in flight at once."""

from __future__ import annotations

import logging
from pathlib import Path

from hpctune.errors import ConfigError
from hpctune.tune.search.searcher import Searcher, SearcherWrapper

logger = logging.getLogger(__name__)


class ConcurrencyLimiter(SearcherWrapper):
    """Wraps a searcher so that it has at most ``max_concurrent`` live trials.

    ``suggest`` returns None while at the limit; the controller asks again after a trial
    ends. With ``batch=True`` the wrapped searcher hears of no completion until the whole
    batch of ``max_concurrent`` trials has ended, and no new trial starts before that:
    useful for searchers that work best on synchronous batches.
    """

    def __init__(self, searcher: Searcher, max_concurrent: int, batch: bool = False):
        if not isinstance(searcher, Searcher):
            raise ConfigError(
                f"ConcurrencyLimiter wraps a Searcher, got {type(searcher).__name__}."
            )
        valid = isinstance(max_concurrent, int) and not isinstance(max_concurrent, bool)
        if not valid or max_concurrent < 1:
            raise ConfigError(
                f"The value of `max_concurrent` is {max_concurrent!r}, but must be an int >= 1."
            )
        super().__init__(searcher)
        self.max_concurrent = max_concurrent
        self.batch = batch
        self.live_trials: set[str] = set()
        # batch mode: ended trials held back until the batch is over, in order of ending
        self.cached_results: dict[str, tuple[str, dict | None, bool]] = {}

    def suggest(self, trial_id: str) -> dict | None | str:
        if trial_id in self.live_trials:
            raise ValueError(f"Trial id {trial_id!r} is already live: ids must be unique.")
        if len(self.live_trials) >= self.max_concurrent:
            logger.debug("No suggestion for %s: %d/%d trials live.",
                         trial_id, len(self.live_trials), self.max_concurrent)
            return None
        suggestion = self.searcher.suggest(trial_id)
        if isinstance(suggestion, dict):
            self.live_trials.add(trial_id)
        return suggestion

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        self._ended(trial_id, "complete", result, error)

    def on_trial_stopped_early(self, trial_id: str, result: dict | None) -> None:
        self._ended(trial_id, "stopped", result, False)

    def _ended(self, trial_id: str, how: str, result: dict | None, error: bool) -> None:
        if trial_id not in self.live_trials:  # not ours (e.g. suggested before a restore)
            self._forward(trial_id, how, result, error)
            return
        if not self.batch:
            self.live_trials.discard(trial_id)
            self._forward(trial_id, how, result, error)
            return
        self.cached_results[trial_id] = (how, result, error)
        if len(self.cached_results) < len(self.live_trials):
            return
        cached, self.cached_results = self.cached_results, {}
        self.live_trials.clear()
        for cached_id, (cached_how, cached_result, cached_error) in cached.items():
            self._forward(cached_id, cached_how, cached_result, cached_error)

    def _forward(self, trial_id: str, how: str, result: dict | None, error: bool) -> None:
        if how == "stopped":
            self.searcher.on_trial_stopped_early(trial_id, result)
        else:
            self.searcher.on_trial_complete(trial_id, result, error)

    STATE_MARK = "concurrency_limiter"

    def get_state(self) -> dict:
        return {
            self.STATE_MARK: True,
            "live_trials": set(self.live_trials),
            "cached_results": dict(self.cached_results),
            "searcher": self.searcher.get_state(),
        }

    def set_state(self, state: dict) -> None:
        """The limiter's state (``get_state``, the driver's snapshot, a file ``save`` wrote), or
        the wrapped searcher's own state (a file ``save_to_dir`` wrote)."""
        if not self._is_own_state(state):
            self.searcher.set_state(state)
            return
        self.live_trials = set(state["live_trials"])
        self.cached_results = dict(state["cached_results"])
        self.searcher.set_state(state["searcher"])

    def _is_own_state(self, state: object) -> bool:
        own = {"live_trials", "cached_results", "searcher"}
        return isinstance(state, dict) and (bool(state.get(self.STATE_MARK)) or set(state) == own)

    def save_to_dir(self, checkpoint_dir: str | Path) -> None:
        """Write the wrapped searcher's state where ``restore_from_dir`` looks (the driver does
        this in the experiment directory), so that the searcher the user made restores from it:
        ``OptunaSearch().restore_from_dir(path)`` as well as ``ConcurrencyLimiter(...)``'s. Which
        trials are live is the driver's business (its snapshot keeps it); ``save``/``restore``
        on a file keep the limiter's whole state."""
        self.searcher.save_to_dir(checkpoint_dir)

    def restore_from_dir(self, checkpoint_dir: str | Path) -> None:
        """Restore the wrapped searcher from what ``save_to_dir`` wrote (a limiter state that an
        older hpctune wrote there is read too)."""
        inner = type(self.searcher)
        if inner.restore_from_dir is Searcher.restore_from_dir and inner.restore is Searcher.restore:
            super().restore_from_dir(checkpoint_dir)  # into set_state, which takes either state
        else:
            self.searcher.restore_from_dir(checkpoint_dir)
