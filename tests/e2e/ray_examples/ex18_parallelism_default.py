# Ray Tune reference (ray-tune-docs.rst), section "A Guide To Parallelism and Resources for Ray Tune":
# code block 18 of 45, at line 3313. Copied verbatim: tests/e2e/test_ray_reference_examples.py
# adds what it uses from its page, applies the rewrites it lists and switches imports to hpctune.
# If you have 4 CPUs on your machine, this will run 4 concurrent trials at a time.
tuner = tune.Tuner(
    trainable,
    tune_config=tune.TuneConfig(num_samples=10)
)
results = tuner.fit()
