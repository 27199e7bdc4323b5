"""What the integration callbacks share: choosing the metrics to report, a temporary checkpoint
directory, and the error for a library that is not installed."""

from __future__ import annotations

import contextlib
import importlib
import tempfile
from collections.abc import Callable, Iterator, Mapping
from types import ModuleType
from typing import Any

from hpctune.core.checkpoint import Checkpoint
from hpctune.errors import ConfigError
from hpctune.worker.session import report

#: Ray's ``metrics`` argument: one name, names reported as they are, or {reported name: library's name}
Metrics = str | list[str] | dict[str, str] | None


def import_library(module: str, callback: str, extra: str) -> ModuleType:
    """``module``, or a ConfigError saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"{callback} needs {module.split('.')[0]}: pip install 'hpctune[{extra}]' "
                          f"in the trials' environment.") from exc


def normalize_metrics(metrics: Metrics) -> list[str] | dict[str, str] | None:
    """Ray's rule: a single name is a list of one; an empty list or dict means every metric."""
    if isinstance(metrics, str):
        return [metrics]
    if metrics is not None and not isinstance(metrics, (list, tuple, dict)):
        raise ConfigError(f"metrics must be a name, a list of names or a dict "
                          f"{{reported name: library's name}}, got {type(metrics).__name__}.")
    return (dict(metrics) if isinstance(metrics, dict) else list(metrics)) if metrics else None


def select_metrics(available: Mapping[str, Any], metrics: list[str] | dict[str, str] | None,
                   on_missing: Callable[[str], None]) -> dict[str, Any]:
    """The values to report: all of ``available`` without ``metrics``, else each chosen one under
    its reported name; ``on_missing(name)`` is called for a chosen name the library did not log."""
    if not metrics:
        return dict(available)
    pairs = metrics.items() if isinstance(metrics, dict) else ((name, name) for name in metrics)
    chosen = {}
    for reported, logged in pairs:
        if logged in available:
            chosen[reported] = available[logged]
        else:
            on_missing(logged)
    return chosen


@contextlib.contextmanager
def temporary_checkpoint(save: Callable[[str], None]) -> Iterator[Checkpoint]:
    """A checkpoint of a new temporary directory that ``save(directory)`` filled; removed once
    the block ends (``report`` has copied it into the trial directory by then)."""
    with tempfile.TemporaryDirectory(prefix="hpctune-checkpoint-") as directory:
        save(directory)
        yield Checkpoint.from_directory(directory)


def report_values(values: dict[str, Any], save: Callable[[str], None] | None = None) -> None:
    """``train.report(values)``, with a checkpoint of what ``save(directory)`` writes when given."""
    if save is None:
        report(values)
        return
    with temporary_checkpoint(save) as checkpoint:
        report(values, checkpoint=checkpoint)


class BoostingReport:
    """The arguments and the reporting rule of Ray's XGBoost and LightGBM callbacks.

    Every boosting round reports the latest value of each chosen metric (``"<data>-<metric>"``,
    e.g. ``"eval-logloss"``); a round whose number (from 1) is a multiple of ``frequency`` also
    saves the model as ``filename`` in a checkpoint, and so does the last round with
    ``checkpoint_at_end``. ``results_postprocessing_fn`` may rewrite the dict before it is
    reported (e.g. average folds of ``cv``).
    """

    library = ""  # set by each subclass: the library's name, in messages

    def __init__(self, metrics: Metrics = None, filename: str = "", frequency: int = 0,
                 checkpoint_at_end: bool = True,
                 results_postprocessing_fn: Callable[[dict[str, Any]], dict[str, Any]] | None = None):
        if not isinstance(frequency, int) or frequency < 0:
            raise ConfigError(f"frequency must be a whole number >= 0 (0: no checkpoint during "
                              f"training), got {frequency!r}.")
        self._metrics = normalize_metrics(metrics)
        self._filename = filename
        self._frequency = frequency
        self._checkpoint_at_end = checkpoint_at_end
        self._results_postprocessing_fn = results_postprocessing_fn

    def _checkpoint_due(self, round_index: int) -> bool:
        """Round ``round_index`` (from 0) checkpoints by ``frequency``."""
        return self._frequency > 0 and (round_index + 1) % self._frequency == 0

    def _values(self, latest: dict[str, Any]) -> dict[str, Any]:
        """What to report of this round's ``latest`` metric values."""
        def missing(name: str) -> None:
            raise ConfigError(f"{type(self).__name__}: {self.library} logged no metric {name!r}; "
                              f"it logged {sorted(latest)} (name them as '<data>-<metric>', e.g. "
                              f"metrics={{'loss': 'eval-logloss'}}, with evals/valid_sets set).")

        values = select_metrics(latest, self._metrics, missing)
        if self._results_postprocessing_fn is not None:
            values = self._results_postprocessing_fn(values)
        return values

