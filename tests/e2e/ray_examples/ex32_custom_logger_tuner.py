# Ray Tune reference (ray-tune-docs.rst), section "How to Build Custom Tune Loggers?":
# code block 32 of 45, at line 4070. Copied verbatim: tests/e2e/test_ray_reference_examples.py
# adds what it uses from its page, applies the rewrites it lists and switches imports to hpctune.
from ray import tune
from ray.train import RunConfig

tuner = tune.Tuner(
    MyTrainableClass,
    run_config=RunConfig(name="experiment_name", callbacks=[CustomLoggerCallback("log_test.txt")])
)
results = tuner.fit()
