# Ray Tune reference (ray-tune-docs.rst), section "Working with Tune Search Spaces":
# code block 5 of 45, at line 1655. Copied verbatim: tests/e2e/test_ray_reference_examples.py
# adds what it uses from its page, applies the rewrites it lists and switches imports to hpctune.
tuner = tune.Tuner(
    my_trainable,
    run_config=RunConfig(name="my_trainable"),
    # num_samples will repeat the entire config 10 times.
    tune_config=tune.TuneConfig(num_samples=10),
    param_space={
        # ``sample_from`` creates a generator to call the lambda once per trial.
        "alpha": tune.sample_from(lambda spec: np.random.uniform(100)),
        # ``sample_from`` also supports "conditional search spaces"
        "beta": tune.sample_from(lambda spec: spec.config.alpha * np.random.normal()),
        "nn_layers": [
            # tune.grid_search will make it so that all values are evaluated.
            tune.grid_search([16, 64, 256]),
            tune.grid_search([16, 64, 256]),
        ],
    },
)
tuner.fit()
