"""hpctune's quickstart (Ray Tune's, with one import changed): tune f(x) = a**2 + b.

Runs on Slurm when `sbatch` is available, as local processes otherwise.
    python examples/quickstart.py
"""

from hpctune import tune


def objective(config):
    score = config["a"] ** 2 + config["b"]
    return {"score": score}


def main():
    search_space = {
        "a": tune.grid_search([0.001, 0.01, 0.1, 1.0]),
        "b": tune.choice([1, 2, 3]),
    }
    tuner = tune.Tuner(
        objective,
        param_space=search_space,
        tune_config=tune.TuneConfig(metric="score", mode="min"),
        run_config=tune.RunConfig(storage_path="./hpctune_results"),
    )
    results = tuner.fit()
    best = results.get_best_result()
    print("Best config:", best.config, "score:", best.metrics["score"])
    print(results.get_dataframe()[["trial_id", "score", "config/a", "config/b"]])


if __name__ == "__main__":
    main()
