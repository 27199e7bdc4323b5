"""The library searchers (HyperOpt, BayesOpt, Nevergrad, ZOOpt, BOHB): conversion of every
primitive, clear errors, ask/tell bookkeeping, failures told the library's way, save/restore."""

from __future__ import annotations

import math
import pickle

import hyperopt
import nevergrad as ng
import numpy as np
import pytest
from zoopt import ValueType

from hpctune import space as tune
from hpctune.errors import ConfigError, SearchSpaceError
from hpctune.tune.search.bayesopt import BayesOptSearch
from hpctune.tune.search.bohb import TuneBOHB
from hpctune.tune.search.hyperopt import HyperOptSearch
from hpctune.tune.search.nevergrad import NevergradSearch
from hpctune.tune.search.searcher import Searcher
from hpctune.tune.search.zoopt import ZOOptSearch


def make(name: str, space: dict | None = None, **kwargs) -> Searcher:
    """A seeded searcher of each kind, its space given to the constructor."""
    kwargs = {"metric": "loss", "mode": "min", **kwargs}
    if name == "hyperopt":
        return HyperOptSearch(space, random_state_seed=0, n_initial_points=5, **kwargs)
    if name == "bayesopt":
        return BayesOptSearch(space, random_state=0, random_search_steps=4, **kwargs)
    if name == "nevergrad":
        np.random.seed(0)  # Nevergrad seeds its parametrization from numpy's global generator
        return NevergradSearch(ng.optimizers.OnePlusOne, space=space, **kwargs)
    if name == "zoopt":
        return ZOOptSearch(budget=30, dim_dict=space, seed=0, **kwargs)
    return TuneBOHB(space, seed=0, **kwargs)


ALL = ["hyperopt", "bayesopt", "nevergrad", "zoopt", "bohb"]
DETERMINISTIC = ["hyperopt", "bayesopt", "nevergrad", "bohb"]  # ZOOpt draws from numpy's global RNG

# primitive -> (domain, what every suggested value must satisfy)
PRIMITIVES = {
    "uniform": (tune.uniform(-1, 2), lambda v: type(v) is float and -1 <= v <= 2),
    "quniform": (tune.quniform(0, 1, 0.25), lambda v: v in (0.0, 0.25, 0.5, 0.75, 1.0)),
    "loguniform": (tune.loguniform(1e-4, 1e-1), lambda v: 1e-4 <= v <= 1e-1),
    "qloguniform": (tune.qloguniform(1e-3, 1, 1e-3),
                    lambda v: 1e-3 <= v <= 1 and v == float(f"{round(v * 1000) / 1000:.15g}")),
    "randn": (tune.randn(0, 1), lambda v: type(v) is float),
    "qrandn": (tune.qrandn(0, 1, 0.5), lambda v: v * 2 == round(v * 2)),
    "randint": (tune.randint(0, 3), lambda v: type(v) is int and v in (0, 1, 2)),
    "qrandint": (tune.qrandint(0, 10, 5), lambda v: type(v) is int and v in (0, 5, 10)),
    "lograndint": (tune.lograndint(1, 100), lambda v: type(v) is int and 1 <= v <= 99),
    "qlograndint": (tune.qlograndint(5, 100, 5), lambda v: type(v) is int and v % 5 == 0
                    and 5 <= v <= 100),
    "choice": (tune.choice(["a", "b", 3]), lambda v: v in ("a", "b", 3)),
}
UNSUPPORTED_EVERYWHERE = {
    "grid_search": tune.grid_search([1, 2]),
    "sample_from": tune.sample_from(lambda spec: 1),
    "choice of search spaces": tune.choice([{"x": tune.uniform(0, 1)}, 2]),
}
SUPPORTED = {
    "hyperopt": set(PRIMITIVES),
    "nevergrad": set(PRIMITIVES),
    "bayesopt": {"uniform", "quniform", "loguniform", "qloguniform", "randint", "qrandint",
                 "lograndint", "qlograndint"},
    "zoopt": {"uniform", "quniform", "randint", "qrandint", "choice"},
    "bohb": set(PRIMITIVES) - {"randn", "qrandn"},
}
CASES = [(n, p) for n in ALL for p in PRIMITIVES if p in SUPPORTED[n]]
REFUSED = [(n, p) for n in ALL for p in [*PRIMITIVES, *UNSUPPORTED_EVERYWHERE]
           if p not in SUPPORTED[n]]


def run(searcher: Searcher, n: int, loss=lambda i, c: float(i % 3)) -> list[dict]:
    """n suggestions, each completed at once (a searcher that waits gets asked again)."""
    configs = []
    for i in range(n * 3):
        config = searcher.suggest(f"t{i}")
        if config == Searcher.FINISHED:
            break
        if config is None:
            continue
        configs.append(config)
        searcher.on_trial_complete(f"t{i}", {"loss": loss(i, config)})
        if len(configs) == n:
            break
    return configs


@pytest.mark.parametrize(("name", "primitive"), CASES)
def test_every_convertible_primitive_gives_values_of_its_domain(name, primitive):
    domain, valid = PRIMITIVES[primitive]
    configs = run(make(name, {"m": {"p": domain}, "k": "const"}), 6)
    assert len(configs) >= 2  # BayesOpt and ZOOpt end a search that only repeats points
    for config in configs:
        assert config["k"] == "const"
        assert valid(config["m"]["p"]), (primitive, config)


@pytest.mark.parametrize(("name", "primitive"), REFUSED)
def test_every_unconvertible_primitive_names_key_and_primitive(name, primitive):
    domain = PRIMITIVES[primitive][0] if primitive in PRIMITIVES else UNSUPPORTED_EVERYWHERE[primitive]
    with pytest.raises(SearchSpaceError, match=rf"`m/p` \({primitive}\)"):
        make(name, {"m": {"p": domain}, "q": tune.uniform(0, 1)})


def test_library_forms_of_the_converted_space():
    assert BayesOptSearch({"x": tune.uniform(-1, 2), "lr": tune.loguniform(1e-4, 1e-1),
                           "n": tune.randint(0, 3)})._space == {
        "x": (-1.0, 2.0), "lr": (math.log(1e-4), math.log(1e-1)), "n": (-0.5, 2.5)}
    assert ZOOptSearch(budget=5, dim_dict={"x": tune.uniform(0, 1), "n": tune.randint(0, 3),
                                           "c": tune.choice(["a", "b"])})._space == {
        "x": (ValueType.CONTINUOUS, [0.0, 1.0], 1e-10), "n": (ValueType.DISCRETE, [0, 2], True),
        "c": (ValueType.GRID, [0, 1])}  # by index
    space = NevergradSearch(space={"lr": tune.loguniform(1e-4, 1e-1), "n": tune.randint(0, 3),
                                   "c": tune.choice(["a", "b"])})._space
    assert isinstance(space["lr"], ng.p.Log) and isinstance(space["c"], ng.p.Choice)
    assert (space["n"].bounds[0][0], space["n"].bounds[1][0]) == (0, 2)
    label = HyperOptSearch({"x": tune.uniform(0, 1)})._space["x"]
    assert label.name == "float" and label.pos_args[0].pos_args[0].obj == "x"


@pytest.mark.parametrize("name", ALL)
def test_native_space_and_param_space(name):
    native = {
        "hyperopt": {"x": hyperopt.hp.uniform("x", 0, 1)},
        "bayesopt": {"x": (0, 1)},
        "nevergrad": {"x": ng.p.Scalar(lower=0, upper=1)},
        "zoopt": {"x": (ValueType.CONTINUOUS, [0, 1], 1e-6)},
        "bohb": {"x": __import__("optuna").distributions.FloatDistribution(0, 1)},
    }[name]
    for config in run(make(name, native), 4):
        assert 0 <= config["x"] <= 1
    searcher = make(name)
    assert searcher.set_search_properties(None, None, {"x": tune.uniform(5, 6), "c": 1})
    assert not searcher.set_search_properties(None, None, {"x": tune.uniform(7, 8)})
    assert all(5 <= c["x"] <= 6 and c["c"] == 1 for c in run(searcher, 4))


@pytest.mark.parametrize("name", ALL)
def test_points_to_evaluate_run_first_and_bad_points_name_the_key(name):
    space = {"x": tune.uniform(0, 10), "n": tune.randint(0, 5)}
    points = [{"x": 1.5, "n": 2}, {"x": 7.0, "n": 4}]
    configs = run(make(name, space, points_to_evaluate=points), 3)
    assert configs[:2] == points
    with pytest.raises(SearchSpaceError, match=r"names \['y'\], not in the search space"):
        make(name, space, points_to_evaluate=[{"x": 1.0, "n": 1, "y": 2}]).suggest("t")
    with pytest.raises(SearchSpaceError, match=r"lacks \['n'\]"):
        make(name, space, points_to_evaluate=[{"x": 1.0}]).suggest("t")


@pytest.mark.parametrize("name", ALL)
def test_no_space_and_no_metric_are_clear_errors(name):
    with pytest.raises(ConfigError, match="has no search space"):
        make(name).suggest("t")
    with pytest.raises(ConfigError, match="has no valid `metric`"):
        make(name, {"x": tune.uniform(0, 1)}, metric=None).suggest("t")


def test_bayesopt_bounds_are_parameters_only_in_its_own_space():
    searcher = make("bayesopt", {"x": (0, 1), "shape": [2, 3]})
    assert searcher._space == {"x": (0, 1)}
    searcher = make("bayesopt")
    searcher.set_search_properties(None, None, {"x": tune.uniform(0, 1), "shape": (2, 3)})
    assert searcher._space == {"x": (0.0, 1.0)}
    assert searcher.suggest("t")["shape"] == (2, 3)  # a constant of the param_space


def test_hyperopt_tells_losses_failures_and_max_mode():
    searcher = make("hyperopt", {"x": tune.uniform(0, 1)}, mode="max")
    for trial in ("a", "b", "c"):
        searcher.suggest(trial)
    searcher.on_trial_complete("a", {"loss": 2.0})
    searcher.on_trial_complete("b", error=True)
    searcher.on_trial_stopped_early("c", {"loss": 0.5})
    docs = searcher._opt["trials"]._dynamic_trials  # all of them: errors are filtered out of .trials
    assert [t["result"] for t in docs] == [{"loss": -2.0, "status": "ok"}, {"status": "fail"},
                                           {"loss": -0.5, "status": "ok"}]
    assert [t["state"] for t in docs] == [2, 3, 2]  # DONE, ERROR, DONE
    assert len(searcher._opt["trials"].trials) == 2


def test_nevergrad_tells_results_and_leaves_failures_untold():
    searcher = make("nevergrad", {"x": tune.uniform(0, 1)})
    for trial in ("a", "b", "c"):
        searcher.suggest(trial)
    searcher.on_trial_complete("a", {"loss": 2.0})
    searcher.on_trial_complete("b", error=True)
    searcher.on_trial_complete("c", {"other": 1.0})  # no metric: a failure
    assert (searcher._opt.num_ask, searcher._opt.num_tell) == (3, 1)


def test_bayesopt_registers_after_the_random_steps_and_never_failures():
    searcher = make("bayesopt", {"x": tune.uniform(0, 1)}, mode="max")
    configs = [searcher.suggest(f"t{i}") for i in range(6)]
    searcher.on_trial_complete("t0", error=True)
    for i in range(1, 4):
        searcher.on_trial_complete(f"t{i}", {"loss": float(i)})
    assert len(searcher._opt["optimizer"].space) == 0  # 3 results < random_search_steps=4
    searcher.on_trial_complete("t4", {"loss": 4.0})
    optimizer = searcher._opt["optimizer"]
    assert list(optimizer.space.target) == [1.0, 2.0, 3.0, 4.0]  # maximised as given
    assert optimizer.space.params[0][0] == pytest.approx(configs[1]["x"])


def test_zoopt_tells_failures_as_the_worst_loss_and_frees_the_slot():
    searcher = make("zoopt", {"x": tune.uniform(0, 1)}, parallel_num=2)
    assert searcher.suggest("a") is not None and searcher.suggest("b") is not None
    assert searcher._opt.live_num == 2
    searcher.on_trial_complete("a", error=True)
    assert searcher._opt.live_num == 1
    assert searcher._opt._data[0].get_value() == math.inf


def test_bohb_models_the_largest_budget_with_enough_results():
    searcher = make("bohb", {"x": tune.uniform(0, 1)}, bohb_config={"min_points_in_model": 1})
    for i in range(4):
        searcher.suggest(f"t{i}")
    for i in range(2):
        searcher.on_trial_result(f"t{i}", {"loss": 1.0, "training_iteration": 1})
    assert searcher.model_budget() is None  # 2 < min_points_in_model + 2
    searcher.on_trial_result("t2", {"loss": 1.0, "training_iteration": 1})
    assert searcher.model_budget() == 1.0
    for i in range(2):
        searcher.on_trial_result(f"t{i}", {"loss": 0.5, "training_iteration": 3})
    assert searcher.model_budget() == 1.0  # budget 3 has 2 results
    searcher.on_trial_complete("t0", {"loss": 0.4, "training_iteration": 3})  # replaces t0's
    assert searcher.model_budget() == 1.0
    searcher.on_trial_stopped_early("t2", {"loss": 0.7, "training_iteration": 3})
    assert searcher.model_budget() == 3.0
    assert searcher._opt["observations"][3.0]["t0"][1] == 0.4
    searcher.on_trial_complete("t1", error=True)
    assert searcher._opt["observations"][3.0]["t1"][1] == 0.5  # a failure adds nothing
    with pytest.raises(ConfigError, match=r"unknown `bohb_config` keys \['eta'\]"):
        TuneBOHB(bohb_config={"eta": 3})


@pytest.mark.parametrize("name", ALL)
def test_state_round_trip_continues_the_same_search(name):
    space = {"x": tune.uniform(0, 10), "n": {"c": tune.randint(0, 5)}}
    searcher = make(name, space, **({"parallel_num": 3} if name == "zoopt" else {}))
    run(searcher, 5)
    running = searcher.suggest("live") or searcher.suggest("live")  # ZOOpt may wait once
    state = pickle.loads(pickle.dumps(searcher.get_state()))  # what the driver snapshot holds
    restored = make(name)  # no space: it comes with the state
    restored.set_state(state)
    restored.on_trial_complete("live", {"loss": 0.25})  # asked before, told after the restore
    assert "live" in restored._finished and not restored._live
    if name in DETERMINISTIC:
        searcher.on_trial_complete("live", {"loss": 0.25})
        assert run(restored, 3) == run(searcher, 3)
    else:  # ZOOpt: its counters go on from the saved ones
        assert restored._opt.complete_num == 6 and restored._opt.live_num == 0
        assert run(restored, 1)
    assert running is not None


def test_save_and_restore_through_a_file(tmp_path):
    searcher = make("hyperopt", {"x": tune.uniform(0, 1)})
    run(searcher, 3)
    searcher.save(tmp_path / "s.pkl")
    restored = HyperOptSearch()
    restored.restore(tmp_path / "s.pkl")
    assert run(restored, 2) == run(searcher, 2)


def test_restore_refuses_another_space():
    state = make("hyperopt", {"x": tune.uniform(0, 1)}).get_state()
    with pytest.raises(ConfigError, match="searched another space"):
        make("hyperopt", {"x": tune.uniform(0, 2)}).set_state(state)
