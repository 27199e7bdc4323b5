"""Each library searcher drives a small real run (local backend), and create_searcher /
create_scheduler know Ray's names and say which extra a missing library needs."""

from __future__ import annotations

import nevergrad as ng
import pytest

import hpctune.tune.search.bayesopt as bayesopt_module
import hpctune.tune.search.hyperopt as hyperopt_module
import hpctune.tune.search.nevergrad as nevergrad_module
import hpctune.tune.search.zoopt as zoopt_module
from hpctune import tune
from hpctune.errors import ConfigError
from hpctune.tune.schedulers import HyperBandForBOHB, create_scheduler
from hpctune.tune.search import create_searcher
from hpctune.tune.search.bayesopt import BayesOptSearch
from hpctune.tune.search.bohb import TuneBOHB
from hpctune.tune.search.hyperopt import HyperOptSearch
from hpctune.tune.search.nevergrad import NevergradSearch
from hpctune.tune.search.zoopt import ZOOptSearch


def quadratic(config):
    for step in range(1, 4):
        tune.report({"loss": (config["x"] - 0.3) ** 2 + 1 / step, "n": config["n"]})


SEARCHERS = {
    "hyperopt": lambda: HyperOptSearch(random_state_seed=0, n_initial_points=2),
    "bayesopt": lambda: BayesOptSearch(random_search_steps=2),
    "nevergrad": lambda: NevergradSearch(ng.optimizers.OnePlusOne),
    "zoopt": lambda: ZOOptSearch(budget=6, parallel_num=2, seed=0),  # seeds numpy: ZOOpt uses it
    "bohb": lambda: TuneBOHB(seed=0, bohb_config={"min_points_in_model": 1}),
}


@pytest.mark.parametrize("name", sorted(SEARCHERS))
def test_a_small_local_run(name, tmp_path, monkeypatch):
    monkeypatch.setenv("HPCTUNE_BACKEND", "local")
    scheduler = HyperBandForBOHB(max_t=3, reduction_factor=3) if name == "bohb" else None
    tuner = tune.Tuner(
        quadratic, param_space={"x": tune.uniform(0, 1), "n": tune.randint(1, 4), "k": 7},
        tune_config=tune.TuneConfig(metric="loss", mode="min", num_samples=5,
                                    max_concurrent_trials=2, search_alg=SEARCHERS[name](),
                                    scheduler=scheduler),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name=name, verbose=0))
    grid = tuner.fit()
    assert len(grid) == 5 and not grid.errors
    configs = [result.config for result in grid]
    assert all(0 <= c["x"] <= 1 and c["n"] in (1, 2, 3) and c["k"] == 7 for c in configs)
    assert len({(c["x"], c["n"]) for c in configs}) == 5  # five points, none repeated
    best = grid.get_best_result()
    assert best.metrics["loss"] == min(r.metrics["loss"] for r in grid)


OBJECTIVE = {"metric": "m", "mode": "min"}
RAY_SEARCHERS = {  # Ray's create_searcher names -> the class, with the kwargs each needs
    "random": ("BasicVariantGenerator", {}),
    "variant_generator": ("BasicVariantGenerator", {}),
    "optuna": ("OptunaSearch", OBJECTIVE),
    "hyperopt": ("HyperOptSearch", OBJECTIVE),
    "bayesopt": ("BayesOptSearch", OBJECTIVE),
    "nevergrad": ("NevergradSearch", OBJECTIVE),
    "zoopt": ("ZOOptSearch", {"budget": 10, **OBJECTIVE}),
    "bohb": ("TuneBOHB", OBJECTIVE),
}


@pytest.mark.parametrize("name", sorted(RAY_SEARCHERS))
def test_create_searcher_knows_rays_names(name):
    class_name, kwargs = RAY_SEARCHERS[name]
    assert type(create_searcher(name, **kwargs)).__name__ == class_name


@pytest.mark.parametrize(("name", "reason"), [
    ("hebo", "HEBO 0.3.6, its latest release, requires numpy<1.25"),
    ("vizier", "needs Google's OSS Vizier service"),
])
def test_unavailable_searchers_say_why(name, reason):
    with pytest.raises(ConfigError, match=reason):
        create_searcher(name, metric="m", mode="min")


@pytest.mark.parametrize(("name", "module", "attribute", "extra"), [
    ("hyperopt", hyperopt_module, "hpo", "hyperopt"),
    ("bayesopt", bayesopt_module, "bayes_opt", "bayesopt"),
    ("nevergrad", nevergrad_module, "ng", "nevergrad"),
    ("zoopt", zoopt_module, "zoopt", "zoopt"),
])
def test_a_missing_library_names_the_extra(name, module, attribute, extra, monkeypatch):
    monkeypatch.setattr(module, attribute, None)
    with pytest.raises(ImportError, match=rf"pip install 'hpctune\[{extra}\]'"):
        create_searcher(name, metric="m", mode="min", budget=5) if name == "zoopt" else \
            create_searcher(name, metric="m", mode="min")


def test_create_scheduler_knows_hb_bohb():
    scheduler = create_scheduler("hb_bohb", metric="m", mode="min", max_t=9)
    assert isinstance(scheduler, HyperBandForBOHB)


def test_hyperband_for_bohb_fills_its_most_aggressive_bracket_first():
    from hpctune.tune.experiment.trial import TrialInfo

    scheduler = HyperBandForBOHB(metric="m", mode="min", max_t=9, reduction_factor=3)
    scheduler.on_trial_add(TrialInfo("t0", {}))
    first = scheduler._bands[0][0]
    assert (first.n, first.r, first.halves) == (9, 1, 2)  # 9 trials from budget 1, halved twice
