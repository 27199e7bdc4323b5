"""Tune XGBoost on scikit-learn's breast cancer data set (it ships with scikit-learn: no download).

``TuneReportCheckpointCallback`` reports the validation log loss and error after every boosting
round and checkpoints the booster every ``--checkpoint-every`` rounds and at the end; ASHA stops
the weak trials early; a preempted trial continues from its last saved booster.
    python examples/xgboost_tune.py [--samples 8] [--rounds 20]
"""

import argparse

import sklearn.datasets
import sklearn.model_selection
import xgboost as xgb

from hpctune import train, tune
from hpctune.tune.integration.xgboost import TuneReportCheckpointCallback
from hpctune.tune.schedulers import ASHAScheduler


def train_breast_cancer(config):
    x, y = sklearn.datasets.load_breast_cancer(return_X_y=True)
    x_train, x_val, y_train, y_val = sklearn.model_selection.train_test_split(x, y, test_size=0.25,
                                                                              random_state=0)
    dtrain, dval = xgb.DMatrix(x_train, label=y_train), xgb.DMatrix(x_val, label=y_val)
    params = {"objective": "binary:logistic", "eval_metric": ["logloss", "error"], "nthread": 1,
              **{k: config[k] for k in ("eta", "max_depth", "subsample", "min_child_weight")}}
    booster, checkpoint = None, train.get_checkpoint()
    if checkpoint:  # a preempted or retried trial continues from its last saved booster
        booster = TuneReportCheckpointCallback.get_model(checkpoint)
    done = booster.num_boosted_rounds() if booster else 0
    xgb.train(params, dtrain, num_boost_round=config["rounds"] - done, evals=[(dval, "eval")],
              xgb_model=booster, verbose_eval=False,
              callbacks=[TuneReportCheckpointCallback({"logloss": "eval-logloss", "error": "eval-error"},
                                                      frequency=config["checkpoint_every"])])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--checkpoint-every", type=int, default=5)
    parser.add_argument("--storage", default="./hpctune_results")
    parser.add_argument("--name", default=None)
    args = parser.parse_args()
    tuner = tune.Tuner(
        train_breast_cancer,
        param_space={"eta": tune.loguniform(1e-2, 3e-1), "max_depth": tune.randint(1, 7),
                     "subsample": tune.uniform(0.5, 1.0), "min_child_weight": tune.choice([1, 2, 3]),
                     "rounds": args.rounds, "checkpoint_every": args.checkpoint_every},
        tune_config=tune.TuneConfig(metric="logloss", mode="min", num_samples=args.samples, seed=0,
                                    scheduler=ASHAScheduler(max_t=args.rounds, grace_period=2,
                                                            reduction_factor=2)),
        run_config=tune.RunConfig(name=args.name, storage_path=args.storage,
                                  checkpoint_config=train.CheckpointConfig(num_to_keep=2)),
    )
    results = tuner.fit()
    best = results.get_best_result()
    print(f"Best logloss {best.metrics['logloss']:.4f} (error {best.metrics['error']:.3f}) "
          f"after {best.metrics['training_iteration']} rounds with {best.config}")
    booster = TuneReportCheckpointCallback.get_model(best.checkpoint)
    print(f"Best checkpoint: {best.checkpoint} ({booster.num_boosted_rounds()} rounds)")


if __name__ == "__main__":
    main()
