"""Ray's ``TBXLoggerCallback``: TensorBoard event files in each trial's directory, written live
by the driver (``tensorboard --logdir <experiment>`` shows every trial).

Every number of a result is a scalar under Ray's tag ``ray/tune/<key>`` (nested keys as
``ray/tune/a/b``; ``config``, ``pid``, ``timestamp``, ``time_total_s`` and
``training_iteration`` are left out, as in Ray) at step ``timesteps_total`` or else
``training_iteration``; a non-empty list of numbers is a histogram. When the trial ends, its
hyperparameters and last metrics go to TensorBoard's HParams view.

The events are encoded and appended by the driver itself (``tfevents``: no tensorboardX import,
no writer thread per trial): one event per result, a trial's new results in one write per step.
"""

from __future__ import annotations

import math
import socket
import sys
import time
from pathlib import Path
from typing import Any

import hpctune.tune.logger.tfevents as tfevents
from hpctune.core.metrics import flatten
from hpctune.storage.experiment import TBX_EVENTS_PREFIX, config_view
from hpctune.tune.logger.base import BatchedLoggerCallback

TAG_PREFIX = "ray/tune/"
#: not useful as curves (Ray leaves them out too)
EXCLUDED = ("config", "pid", "timestamp", "time_total_s", "training_iteration")


class TBXLoggerCallback(BatchedLoggerCallback):
    """TensorBoard files for every trial (added by default when tensorboardX is installed)."""

    def __init__(self) -> None:
        super().__init__()
        self._files: dict[str, Path] = {}
        self._last: dict[str, list[str]] = {}
        self._said_histogram = False

    def write(self, trial: Any, results: list[dict]) -> None:
        records = []
        for result in results:
            step = result.get("timesteps_total") or result.get("training_iteration") or 0
            values, tags = self._values(result)
            self._last[trial.trial_id] = tags
            records.append(tfevents.record(tfevents.event(_wall_time(result), int(step), values)))
        self.append(trial, self._path(trial), b"".join(records))

    def close_trial(self, trial: Any, failed: bool) -> None:
        """Log the trial's hyperparameters with its metrics (TensorBoard's HParams view)."""
        params = _hparams(trial.config)
        tags = self._last.pop(trial.trial_id, [])
        if params:
            values = tfevents.hparams(params, tags, failed)
            self.append(trial, self._path(trial), b"".join(
                tfevents.record(tfevents.event(time.time(), 0, [v])) for v in values))
        self._files.pop(trial.trial_id, None)

    def _path(self, trial: Any) -> Path:
        """This driver's event file of the trial, started with TensorBoard's version record."""
        path = self._files.get(trial.trial_id)
        if path is None:
            now = time.time()
            path = Path(trial.path) / f"{TBX_EVENTS_PREFIX}.{int(now)}.{socket.gethostname()}"
            self.append(trial, path, tfevents.record(tfevents.event(now, file_version=tfevents.FILE_VERSION)))
            self._files[trial.trial_id] = path
        return path

    def _values(self, result: dict) -> tuple[list[bytes], list[str]]:
        """The encoded summary values of one result, and the tags of its scalars."""
        values, tags = [], []
        for key, value in flatten({k: v for k, v in result.items() if k not in EXCLUDED}).items():
            tag = TAG_PREFIX + key
            number = _number(value)
            if number is not None:
                values.append(tfevents.scalar(tag, number))
                tags.append(tag)
            elif _is_numeric_list(value):
                values.extend(self._histogram(tag, value))
        return values, tags

    def _histogram(self, tag: str, value: Any) -> list[bytes]:
        try:
            return [tfevents.histogram(tag, value)]
        except (ValueError, TypeError) as exc:  # NaN or ragged values: skip, say once
            if not self._said_histogram:
                self._said_histogram = True
                print(f"hpctune: TBXLoggerCallback: {tag} is not a histogram ({exc}); skipped.",
                      file=sys.stderr)
            return []


def _number(value: Any) -> float | None:
    """``value`` as a float for a scalar (bools, ints, floats, numpy scalars); None otherwise
    and for NaN (Ray leaves NaN out)."""
    if isinstance(value, (str, bytes)) or value is None:
        return None
    if getattr(value, "shape", None) == () and hasattr(value, "item"):
        value = value.item()
    if not isinstance(value, (bool, int, float)):
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _is_numeric_list(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return bool(value) and all(isinstance(v, (int, float)) for v in value)
    return getattr(value, "ndim", 0) >= 1 and getattr(value, "size", 0) > 0


def _hparams(config: dict) -> dict[str, Any]:
    """The config as TensorBoard's hyperparameters: flattened, scalars only (others as text)."""
    params: dict[str, Any] = {}
    for key, value in flatten(config_view(config)).items():
        if isinstance(value, (bool, int, float, str)):
            params[key] = value
        elif value is not None:
            params[key] = str(value)
    return params


def _wall_time(result: dict) -> float:
    stamp = result.get("timestamp")
    return float(stamp) if isinstance(stamp, (int, float)) else time.time()
