"""How tests/data/experiment_v1_pickles was made: an experiment of hpctune 0.1 with its pickles.

Run with hpctune 0.1 (commit 91ae19e, before the modules moved into packages), then copy
STORAGE/experiment_v1_pickles without jobs/, .driver.lock and the TensorBoard files:
    HPCTUNE_BACKEND=local python make_experiment_v1_pickles.py STORAGE
Its pickles name the old module paths (hpctune.schedulers.async_hyperband, hpctune.stoppers,
hpctune.search.basic_variant), which tests/unit/test_log_compatibility.py restores.

Trial b=3 fails on its first run (a marker file the restore test removes is absent here), so
Tuner.restore(restart_errored=True) must unpickle tuner.pkl, driver-state.pkl and trainable.pkl
to run it again.
"""
import os
import sys

from hpctune import train, tune


def objective(config):
    if config["b"] == 3 and not os.environ.get("FROZEN_OK"):
        raise RuntimeError("fails until restored")
    for step in range(3):
        train.report({"score": config["a"] + config["b"] / (step + 1)})

tuner = tune.Tuner(
    objective,
    param_space={"a": tune.grid_search([0.0, 1.0]), "b": tune.choice([2, 3])},
    tune_config=tune.TuneConfig(metric="score", mode="min", num_samples=1,
                                search_alg=tune.search.BasicVariantGenerator(random_state=1),
                                scheduler=tune.schedulers.ASHAScheduler(max_t=3, grace_period=1)),
    run_config=tune.RunConfig(name="experiment_v1_pickles", storage_path=sys.argv[1],
                              stop=tune.stopper.MaximumIterationStopper(3),
                              failure_config=tune.FailureConfig(max_failures=0)),
)
grid = tuner.fit()
print([(r.config, r.error is not None) for r in grid])
