# Ray Tune reference (ray-tune-docs.rst), section "How to redirect Trainable logs to files in a Tune run?":
# code block 27 of 45, at line 3874. Copied verbatim: tests/e2e/test_ray_reference_examples.py
# adds what it uses from its page, applies the rewrites it lists and switches imports to hpctune.
tuner = tune.Tuner(
    trainable,
    run_config=RunConfig(log_to_file=True)
)
results = tuner.fit()
