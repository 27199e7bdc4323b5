# Ray Tune reference (ray-tune-docs.rst), section "Tune Search Algorithms (tune.search)":
# code block 36 of 45, at line 4253. Copied verbatim: tests/e2e/test_ray_reference_examples.py
# adds what it uses from its page, applies the rewrites it lists and switches imports to hpctune.
from ray import train, tune
from ray.tune.search.optuna import OptunaSearch


def train_fn(config):
    # This objective function is just for demonstration purposes
    train.report({"loss": config["param"]})

tuner = tune.Tuner(
    train_fn,
    tune_config=tune.TuneConfig(
        search_alg=OptunaSearch(),
        num_samples=100,
        metric="loss",
        mode="min",
    ),
    param_space={"param": tune.uniform(0, 1)},
)
results = tuner.fit()
