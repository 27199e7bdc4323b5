# Ray Tune reference (ray-tune-docs.rst), section "How to limit concurrency in Tune?":
# code block 21 of 45, at line 3437. Copied verbatim: tests/e2e/test_ray_reference_examples.py
# adds what it uses from its page, applies the rewrites it lists and switches imports to hpctune.
from ray.tune import TuneConfig

config = TuneConfig(
    # ...
    num_samples=100,
    max_concurrent_trials=10,
)
