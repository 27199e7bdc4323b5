# Ray Tune reference (ray-tune-docs.rst), section "Working with Tune Search Spaces":
# code block 1 of 45, at line 1558. Copied verbatim: tests/e2e/test_ray_reference_examples.py
# adds what it uses from its page, applies the rewrites it lists and switches imports to hpctune.
tuner = tune.Tuner(
    trainable,
    param_space={"bar": tune.grid_search([True, False])})
results = tuner.fit()
