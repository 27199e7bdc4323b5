"""The Searcher interface (Ray Tune's): suggest configs, learn from results, save/restore state."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from hpctune.core.objective import Objective
from hpctune.errors import ConfigError

# the one atomic write and safe pickle load, the only storage/ that search/ may use (test_decision_purity)
from hpctune.storage.atomic import write_bytes_atomic
from hpctune.storage.secure import load_private_pickle

SEARCHER_STATE_FILE = "searcher-state.pkl"


class Searcher(Objective):
    """Base class of every search algorithm.

    A searcher is pure decision logic: it never touches Slurm or files other than
    through ``save``/``restore``. ``suggest`` returns a config dict, ``None`` when it
    cannot suggest right now (try again after a result arrives), or ``Searcher.FINISHED``.
    """

    FINISHED = "FINISHED"
    #: False when suggestions do not depend on results, so the controller may ask
    #: for many at once and submit them as one throttled Slurm array.
    adaptive = True

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec: Any
    ) -> bool:
        """Receive metric, mode and param_space from TuneConfig; False if already set differently."""
        return self._merge_metric_mode(metric, mode)

    def suggest(self, trial_id: str) -> dict | None | str:
        raise NotImplementedError

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """An intermediate result arrived."""

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        """The trial ended: finished normally, or with an error."""

    def on_trial_stopped_early(self, trial_id: str, result: dict | None) -> None:
        """A scheduler or stopper ended the trial before it finished (Optuna: PRUNED)."""
        self.on_trial_complete(trial_id, result)

    def get_state(self) -> dict:
        """Everything needed to continue the search after a driver restart (picklable)."""
        return {}

    def set_state(self, state: dict) -> None:
        pass

    def save(self, checkpoint_path: str | Path) -> None:
        """Write the state atomically, with the private mode of its directory (``restore``
        refuses a pickle that others could have written)."""
        write_bytes_atomic(checkpoint_path, pickle.dumps(self.get_state()))

    def restore(self, checkpoint_path: str | Path) -> None:
        """Load the state ``save`` wrote; only from a file of yours that nobody else can write
        (a pickle runs code when loaded), checked on the open file, no symlink followed."""
        self.set_state(load_private_pickle(checkpoint_path))

    def save_to_dir(self, checkpoint_dir: str | Path) -> None:
        """Write the state to ``<checkpoint_dir>/searcher-state.pkl`` (the driver does this in
        the experiment directory with each snapshot)."""
        self.save(Path(checkpoint_dir) / SEARCHER_STATE_FILE)

    def restore_from_dir(self, checkpoint_dir: str | Path) -> None:
        """Restore from a directory where ``save_to_dir`` wrote, such as an experiment directory."""
        saved = Path(checkpoint_dir) / SEARCHER_STATE_FILE
        if not saved.exists():
            raise ConfigError(f"No searcher state in {checkpoint_dir}: expected {saved}, written by "
                              "a driver of this hpctune version or by Searcher.save_to_dir().")
        self.restore(saved)


class SearcherWrapper(Searcher):
    """A searcher that adds behaviour around another one and forwards the rest to it."""

    def __init__(self, searcher: Searcher):
        super().__init__()
        self.searcher = searcher

    @property
    def metric(self) -> Any:
        return self.searcher.metric

    @property
    def mode(self) -> Any:
        return self.searcher.mode

    @property
    def adaptive(self) -> bool:  # type: ignore[override]
        return self.searcher.adaptive

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id: str) -> dict | None | str:
        return self.searcher.suggest(trial_id)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id, result=None, error=False) -> None:
        self.searcher.on_trial_complete(trial_id, result, error)

    def on_trial_stopped_early(self, trial_id, result) -> None:
        self.searcher.on_trial_stopped_early(trial_id, result)


class SampleLimiter(SearcherWrapper):
    """Ends a model-based searcher after ``num_samples`` suggestions (-1: never).

    Random/grid search counts samples itself; model-based searchers do not, so the
    Tuner wraps them in this.
    """

    def __init__(self, searcher: Searcher, num_samples: int):
        super().__init__(searcher)
        self.num_samples = num_samples
        self.suggested = 0

    def suggest(self, trial_id: str) -> dict | None | str:
        if 0 <= self.num_samples <= self.suggested:
            return Searcher.FINISHED
        config = self.searcher.suggest(trial_id)
        if isinstance(config, dict):
            self.suggested += 1
        return config

    STATE_MARK = "sample_limiter"

    def save_to_dir(self, checkpoint_dir: str | Path) -> None:
        """The user's searcher's state: what ``restore_from_dir`` on that searcher expects."""
        self.searcher.save_to_dir(checkpoint_dir)

    def get_state(self) -> dict:
        return {self.STATE_MARK: True, "suggested": self.suggested,
                "searcher": self.searcher.get_state()}

    def set_state(self, state: dict) -> None:
        self.suggested = state["suggested"]
        self.searcher.set_state(state["searcher"])
