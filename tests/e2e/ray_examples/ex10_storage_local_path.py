# Ray Tune reference (ray-tune-docs.rst), section "Configure Tune without external persistent storage":
# code block 10 of 45, at line 1862. Copied verbatim: tests/e2e/test_ray_reference_examples.py
# adds what it uses from its page, applies the rewrites it lists and switches imports to hpctune.
from ray import tune
from ray.train import RunConfig

tuner = tune.Tuner(
    trainable,
    run_config=RunConfig(
        storage_path="/tmp/custom/storage/path",
        name="experiment_name",
    )
)
tuner.fit()
