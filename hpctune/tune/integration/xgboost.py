"""Ray's ``tune.integration.xgboost`` (``ray.train.xgboost.RayTrainReportCallback``): report
XGBoost's evaluation metrics after every boosting round, with a checkpoint of the booster
every ``frequency`` rounds and at the end (``pip install 'hpctune[xgboost]'``).

    def train_fn(config):
        booster = None
        checkpoint = train.get_checkpoint()
        if checkpoint:  # a restart (a preemption, a retry): continue from the saved booster
            booster = TuneReportCheckpointCallback.get_model(checkpoint)
        xgb.train(config, dtrain, num_boost_round=20 - (booster.num_boosted_rounds() if booster else 0),
                  evals=[(dvalid, "eval")], xgb_model=booster,
                  callbacks=[TuneReportCheckpointCallback({"loss": "eval-logloss"}, frequency=5)])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpctune.core.checkpoint import Checkpoint
from hpctune.core.metrics import flatten
from hpctune.tune.integration._common import BoostingReport, Metrics, import_library, report_values

_xgb = import_library("xgboost", "hpctune.tune.integration.xgboost", "xgboost")
_callback = import_library("xgboost.callback", "hpctune.tune.integration.xgboost", "xgboost")

__all__ = ["TuneReportCheckpointCallback", "TuneReportCallback"]


class TuneReportCheckpointCallback(BoostingReport, _callback.TrainingCallback):
    """``metrics`` (a name, a list of names, or {reported name: ``"<data>-<metric>"``}; default:
    every metric), ``filename`` of the booster in the checkpoint (``"model.ubj"``), ``frequency``
    (checkpoint every that many rounds; 0: none during training), ``checkpoint_at_end``,
    ``results_postprocessing_fn`` (rewrites each reported dict)."""

    CHECKPOINT_NAME = "model.ubj"
    library = "xgboost"

    def __init__(self, metrics: Metrics = None, filename: str = CHECKPOINT_NAME, frequency: int = 0,
                 checkpoint_at_end: bool = True, results_postprocessing_fn: Any = None):
        BoostingReport.__init__(self, metrics, filename, frequency, checkpoint_at_end,
                                results_postprocessing_fn)
        _callback.TrainingCallback.__init__(self)
        self._evals_log: dict | None = None
        self._checkpointed_round: int | None = None  # at_end does not save the same round twice

    @classmethod
    def get_model(cls, checkpoint: Checkpoint, filename: str = CHECKPOINT_NAME) -> Any:
        """The ``xgboost.Booster`` saved in ``checkpoint`` by this callback."""
        booster = _xgb.Booster()
        with checkpoint.as_directory() as directory:
            booster.load_model(str(Path(directory, filename)))
        return booster

    def _latest(self) -> dict[str, Any]:
        return {name: values[-1] for name, values in flatten(self._evals_log or {}, sep="-").items()}

    def _saver(self, model: Any) -> Any:
        return lambda directory: model.save_model(str(Path(directory, self._filename)))

    def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
        """Report this round; False: training goes on. Rounds count from the booster's first
        (xgboost's ``epoch`` restarts at 0 when training continues a restored booster), so a
        restored trial keeps checkpointing every ``frequency`` rounds of the model."""
        self._evals_log = evals_log
        boosted = model.num_boosted_rounds() - 1
        due = self._checkpoint_due(boosted)
        if due:
            self._checkpointed_round = boosted
        report_values(self._values(self._latest()), self._saver(model) if due else None)
        return False

    def after_training(self, model: Any) -> Any:
        """The checkpoint at the end, unless the last round already saved one."""
        if self._checkpoint_at_end and self._checkpointed_round != model.num_boosted_rounds() - 1:
            report_values(self._values(self._latest()) if self._evals_log else {}, self._saver(model))
        return model


class TuneReportCallback(TuneReportCheckpointCallback):
    """Ray's older callback: report the metrics every round, never a checkpoint."""

    def __init__(self, metrics: Metrics = None, results_postprocessing_fn: Any = None):
        super().__init__(metrics, frequency=0, checkpoint_at_end=False,
                         results_postprocessing_fn=results_postprocessing_fn)
