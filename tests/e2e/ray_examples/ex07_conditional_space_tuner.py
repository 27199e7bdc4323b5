# Ray Tune reference (ray-tune-docs.rst), section "How to use Custom and Conditional Search Spaces in Tune?":
# code block 7 of 45, at line 1718. Copied verbatim: tests/e2e/test_ray_reference_examples.py
# adds what it uses from its page, applies the rewrites it lists and switches imports to hpctune.
tuner = tune.Tuner(
    my_trainable,
    run_config=RunConfig(name="my_trainable"),
    param_space={
        "alpha": tune.sample_from(lambda spec: np.random.uniform(100)),
        "beta": tune.sample_from(lambda spec: spec.config.alpha * np.random.normal()),
        "nn_layers": [
            tune.grid_search([16, 64, 256]),
            tune.grid_search([16, 64, 256]),
        ],
    }
)
