# Ray Tune reference (ray-tune-docs.rst), section "Configuring Tune with a network filesystem (NFS)":
# code block 9 of 45, at line 1833. Copied verbatim: tests/e2e/test_ray_reference_examples.py
# adds what it uses from its page, applies the rewrites it lists and switches imports to hpctune.
from ray import train, tune

tuner = tune.Tuner(
    trainable,
    run_config=train.RunConfig(
        name="experiment_name",
        storage_path="/mnt/path/to/shared/storage/",
    )
)
tuner.fit()
