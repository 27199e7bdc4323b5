# Ray Tune reference (ray-tune-docs.rst), section "What happens in ``Tuner.fit``?":
# code block 15 of 45, at line 2710. Copied verbatim: tests/e2e/test_ray_reference_examples.py
# adds what it uses from its page, applies the rewrites it lists and switches imports to hpctune.
space = {"x": tune.uniform(0, 1)}
tuner = tune.Tuner(
    my_trainable, 
    param_space=space, 
    tune_config=tune.TuneConfig(num_samples=10),
)
results = tuner.fit()
