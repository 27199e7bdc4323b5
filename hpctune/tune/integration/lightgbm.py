"""Ray's ``tune.integration.lightgbm`` (``ray.train.lightgbm.RayTrainReportCallback``): report
LightGBM's evaluation metrics after every boosting round, with a checkpoint of the booster
every ``frequency`` rounds and at the last round (``pip install 'hpctune[lightgbm]'``).

    lgb.train(config, train_set, valid_sets=[valid], valid_names=["eval"],
              callbacks=[TuneReportCheckpointCallback({"loss": "eval-binary_logloss"})])

Restore with ``lgb.train(..., init_model=TuneReportCheckpointCallback.get_model(checkpoint))``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpctune.core.checkpoint import Checkpoint
from hpctune.tune.integration._common import BoostingReport, Metrics, import_library, report_values

_lgb = import_library("lightgbm", "hpctune.tune.integration.lightgbm", "lightgbm")

__all__ = ["TuneReportCheckpointCallback", "TuneReportCallback"]


class TuneReportCheckpointCallback(BoostingReport):
    """``metrics`` (a name, a list of names, or {reported name: ``"<data>-<metric>"``}; ``cv``'s
    are ``"<data>-<metric>-mean"`` and ``-stdv``; default: every metric), ``filename`` of the
    booster in the checkpoint (``"model.txt"``), ``frequency`` (checkpoint every that many
    rounds; 0: none during training), ``checkpoint_at_end`` (at the last round),
    ``results_postprocessing_fn`` (rewrites each reported dict)."""

    CHECKPOINT_NAME = "model.txt"
    library = "lightgbm"

    def __init__(self, metrics: Metrics = None, filename: str = CHECKPOINT_NAME, frequency: int = 0,
                 checkpoint_at_end: bool = True, results_postprocessing_fn: Any = None):
        super().__init__(metrics, filename, frequency, checkpoint_at_end, results_postprocessing_fn)

    @classmethod
    def get_model(cls, checkpoint: Checkpoint, filename: str = CHECKPOINT_NAME) -> Any:
        """The ``lightgbm.Booster`` saved in ``checkpoint`` by this callback."""
        with checkpoint.as_directory() as directory:
            return _lgb.Booster(model_file=str(Path(directory, filename)))

    def __call__(self, env: Any) -> None:
        """LightGBM's callback after each round (``env``: its ``CallbackEnv``)."""
        latest: dict[str, Any] = {}
        for data_name, eval_name, value, *rest in env.evaluation_result_list:
            if len(rest) > 1:  # cv: (data, metric, mean, higher_is_better, stdv)
                latest[f"{data_name}-{eval_name}-mean"] = value
                latest[f"{data_name}-{eval_name}-stdv"] = rest[1]
            else:
                latest[f"{data_name}-{eval_name}"] = value
        last = env.iteration == env.end_iteration - 1
        due = self._checkpoint_due(env.iteration) or (self._checkpoint_at_end and last)
        model = env.model
        save = (lambda directory: model.save_model(str(Path(directory, self._filename)))) if due else None
        report_values(self._values(latest), save)


class TuneReportCallback(TuneReportCheckpointCallback):
    """Ray's older callback: report the metrics every round, never a checkpoint."""

    def __init__(self, metrics: Metrics = None, results_postprocessing_fn: Any = None):
        super().__init__(metrics, frequency=0, checkpoint_at_end=False,
                         results_postprocessing_fn=results_postprocessing_fn)
