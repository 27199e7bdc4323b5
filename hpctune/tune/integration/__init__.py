"""Ray's ``tune.integration``: callbacks that report to Tune from inside another library's
training loop, in the trial's own process.

* ``hpctune.tune.integration.pytorch_lightning``: ``TuneReportCheckpointCallback`` and
  ``TuneReportCallback`` for a ``lightning.pytorch`` or ``pytorch_lightning`` ``Trainer``
  (``pip install 'hpctune[lightning]'``);
* ``hpctune.tune.integration.xgboost``: ``TuneReportCheckpointCallback`` and ``TuneReportCallback``
  for ``xgboost.train`` (``pip install 'hpctune[xgboost]'``);
* ``hpctune.tune.integration.lightgbm``: the same for ``lightgbm.train``
  (``pip install 'hpctune[lightgbm]'``).

Each reports with ``train.report(metrics, checkpoint=...)``; a checkpoint is written to a
temporary directory that ``report`` copies into the trial directory. Importing this package
imports none of the libraries: each module imports its own.
"""
