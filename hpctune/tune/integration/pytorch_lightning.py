"""Ray's ``tune.integration.pytorch_lightning``: report a Lightning ``Trainer``'s logged
metrics (``trainer.callback_metrics``) to Tune at the hooks you name, with a checkpoint of the
trainer (``pip install 'hpctune[lightning]'``).

The callbacks work with both packages users have, ``lightning.pytorch`` and
``pytorch_lightning``: when both are installed they are a ``Callback`` of each.

    trainer = pl.Trainer(max_epochs=10, callbacks=[TuneReportCheckpointCallback(
        {"loss": "val_loss"}, filename="trainer.ckpt", on="validation_end")])
    checkpoint = train.get_checkpoint()
    if checkpoint:  # a restart (a preemption, a retry): continue where the checkpoint left off
        with checkpoint.as_directory() as directory:
            trainer.fit(model, ckpt_path=os.path.join(directory, "trainer.ckpt"))
    else:
        trainer.fit(model)
"""

from __future__ import annotations

import importlib
import logging
import os
from typing import Any

from hpctune.errors import ConfigError
from hpctune.tune.integration._common import (
    Metrics,
    normalize_metrics,
    report_values,
    select_metrics,
)
from hpctune.worker.session import Preempted, current_session

logger = logging.getLogger(__name__)

__all__ = ["TuneReportCheckpointCallback", "TuneReportCallback"]


def _lightning_callback_classes() -> tuple[type, ...]:
    """``Callback`` of each installed Lightning package (a Trainer accepts only its own's)."""
    found = []
    for package in ("lightning.pytorch", "pytorch_lightning"):
        try:
            found.append(importlib.import_module(package).Callback)
        except ImportError:
            continue
    if not found:
        raise ConfigError("hpctune.tune.integration.pytorch_lightning needs Lightning: "
                          "pip install 'hpctune[lightning]' (or lightning, or pytorch_lightning) "
                          "in the trials' environment.")
    return tuple(found)


_BASES = _lightning_callback_classes()
#: the hook names ``on`` may take: Lightning's ``on_<hook>`` methods, without ``on_``
HOOKS = frozenset(name[3:] for base in _BASES for name in dir(base)
                  if name.startswith("on_") and callable(getattr(base, name)))


class TuneReportCheckpointCallback(*_BASES):  # type: ignore[misc]
    """``metrics`` (a name, a list of names, or {reported name: Lightning's name}; default:
    every logged metric), ``filename`` of the trainer's checkpoint in the Tune checkpoint
    (``"checkpoint"``), ``save_checkpoints`` (False: report only), ``on`` (a hook or a list of
    hooks, Lightning's ``on_<hook>`` without ``on_``; default ``"validation_end"``).

    Nothing is reported during Lightning's sanity check, nor when none of the metrics is logged
    yet. A metric asked for but not logged is left out, with a warning (as in Ray).
    """

    def __init__(self, metrics: Metrics = None, filename: str = "checkpoint",
                 save_checkpoints: bool = True, on: str | list[str] = "validation_end"):
        hooks = [on] if isinstance(on, str) else list(on)
        unknown = [hook for hook in hooks if hook not in HOOKS]
        if unknown or not hooks:
            raise ConfigError(f"on={on!r}: each hook must be one of Lightning's, without "
                              f"'on_': {sorted(HOOKS)}.")
        self._metrics = normalize_metrics(metrics)
        self._filename = filename
        self._save_checkpoints = save_checkpoints
        self._on = hooks
        for hook in set(hooks) - {"exception"}:  # the others stay Lightning's no-ops
            setattr(self, f"on_{hook}", self._handle)

    def _handle(self, trainer: Any, *args: Any, **kwargs: Any) -> None:
        if trainer.sanity_checking:
            return
        values = select_metrics(trainer.callback_metrics, self._metrics, _warn_missing)
        if not values:
            return
        values = {name: _number(value) for name, value in values.items()}
        save = lambda directory: trainer.save_checkpoint(os.path.join(directory, self._filename))  # noqa: E731
        report_values(values, save if self._save_checkpoints else None)

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        """Lightning ends ``fit`` with its ``SIGTERMException`` (a ``SystemExit``) after a
        SIGTERM. When Slurm preempted the trial, that is a preemption, not the trial's end."""
        if "exception" in self._on:
            self._handle(trainer, pl_module, exception)
        session = current_session()
        if isinstance(exception, SystemExit) and session is not None and session.context.preempted:
            raise Preempted(session.signal_name or "preempted") from exception


class TuneReportCallback(TuneReportCheckpointCallback):
    """Ray's older callback: report the metrics at the hooks, never a checkpoint."""

    def __init__(self, metrics: Metrics = None, on: str | list[str] = "validation_end"):
        super().__init__(metrics, save_checkpoints=False, on=on)


def _number(value: Any) -> Any:
    """A logged value as a plain number (Lightning logs tensors)."""
    return value.item() if hasattr(value, "item") else value


def _warn_missing(name: str) -> None:
    logger.warning("Metric %s does not exist in trainer.callback_metrics: not reported.", name)
