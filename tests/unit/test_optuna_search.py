"""OptunaSearch: space conversion, ask/tell bookkeeping, warm starts, save/restore, quality."""

from __future__ import annotations

import logging
import math
import subprocess
import sys

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

import hpctune.tune.search.optuna as optuna_module
from hpctune import space as tune
from hpctune.errors import ConfigError, SearchSpaceError
from hpctune.tune.search.optuna import OptunaSearch, convert_search_space


def _search(space, **kwargs) -> OptunaSearch:
    kwargs = {"metric": "loss", "mode": "min", "seed": 0, **kwargs}
    return OptunaSearch(space, **kwargs)


def _states(searcher: OptunaSearch) -> list[TrialState]:
    return [t.state for t in searcher.study.trials]


# ---------------------------------------------------------------- conversion


@pytest.mark.parametrize(
    ("domain", "dist"),
    [
        (tune.uniform(-1, 2), FloatDistribution(-1, 2)),
        (tune.quniform(0, 1, 0.25), FloatDistribution(0, 1, step=0.25)),
        (tune.loguniform(1e-4, 1e-1), FloatDistribution(1e-4, 1e-1, log=True)),
        (tune.qloguniform(1e-3, 1.0, 1e-3), FloatDistribution(1e-3, 1.0, log=True)),
        (tune.randint(0, 10), IntDistribution(0, 9)),  # upper excluded
        (tune.qrandint(0, 10, 5), IntDistribution(0, 10, step=5)),  # upper included
        (tune.lograndint(1, 100), IntDistribution(1, 99, log=True)),  # upper excluded
        (tune.qlograndint(5, 100, 5), IntDistribution(5, 100, log=True)),  # upper included
        (tune.choice(["a", "b", 3]), CategoricalDistribution(["a", "b", 3])),
        (tune.choice([[1, 2], {"k": 1}]), CategoricalDistribution([0, 1])),  # by index
    ],
)
def test_every_primitive_converts(domain, dist):
    assert convert_search_space({"p": domain})["p"].dist == dist


def test_quantized_bounds_snap_to_multiples_of_q():
    params = convert_search_space({"f": tune.quniform(0.05, 1.0, 0.1), "i": tune.qrandint(1, 10, 3)})
    f, i = params["f"].dist, params["i"].dist
    assert (f.low, f.high, f.step) == (pytest.approx(0.1), pytest.approx(1.0), 0.1)
    assert (i.low, i.high, i.step) == (3, 9, 3)
    searcher = _search({"f": tune.quniform(0.05, 1.0, 0.1)})
    values = {searcher.suggest(str(n))["f"] for n in range(30)}
    assert values <= {round(0.1 * k, 1) for k in range(1, 11)}  # exact, no float noise


def test_sampled_values_honour_bounds_and_steps():
    space = {
        "ri": tune.randint(0, 3),
        "qi": tune.qrandint(0, 10, 5),
        "li": tune.lograndint(1, 4),
        "qli": tune.qlograndint(1, 100, 5),  # 1 is no multiple of 5: from 5 up
        "qlf": tune.qloguniform(1e-3, 1.0, 1e-3),
        "obj": tune.choice([[1, 2], {"k": 1}]),
    }
    searcher = _search(space)
    configs = [searcher.suggest(str(n)) for n in range(60)]
    assert {c["ri"] for c in configs} == {0, 1, 2}
    assert {c["qi"] for c in configs} == {0, 5, 10}
    assert {c["li"] for c in configs} <= {1, 2, 3}
    assert all(c["qli"] % 5 == 0 and 5 <= c["qli"] <= 100 for c in configs)
    assert all(isinstance(c["qli"], int) for c in configs)
    assert all(math.isclose(c["qlf"] / 1e-3, round(c["qlf"] / 1e-3)) for c in configs)
    assert all(1e-3 - 1e-12 <= c["qlf"] <= 1.0 + 1e-12 for c in configs)
    assert {str(c["obj"]) for c in configs} == {"[1, 2]", "{'k': 1}"}


@pytest.mark.parametrize(
    ("domain", "primitive"),
    [
        (tune.sample_from(lambda spec: 1), "sample_from"),
        (tune.grid_search([1, 2]), "grid_search"),
        (tune.randn(0, 1), "randn"),
        (tune.qrandn(0, 1, 0.1), "qrandn"),
    ],
)
def test_unconvertible_primitives_name_key_and_primitive(domain, primitive):
    with pytest.raises(SearchSpaceError, match=rf"`model/x` \({primitive}\)"):
        OptunaSearch({"model": {"x": domain}, "y": tune.uniform(0, 1)})


def test_search_spaces_in_lists_and_slashed_keys_are_rejected():
    with pytest.raises(SearchSpaceError, match="list at `layers`"):
        convert_search_space({"layers": [tune.randint(1, 4), 8]})
    with pytest.raises(SearchSpaceError, match="'a/b'"):
        convert_search_space({"a/b": tune.uniform(0, 1)})


def test_nested_space_with_constants_round_trips():
    space = {
        "lr": tune.loguniform(1e-4, 1e-1),
        "model": {"depth": tune.randint(1, 5), "act": "relu", "dims": [64, 32]},
        "seed": 7,
    }
    searcher = _search(space)
    first = searcher.suggest("a")
    assert set(first) == {"lr", "model", "seed"} and first["seed"] == 7
    assert first["model"]["act"] == "relu" and 1 <= first["model"]["depth"] <= 4
    first["model"]["dims"].append(0)  # configs must not share constant objects
    assert searcher.suggest("b")["model"]["dims"] == [64, 32]
    assert set(searcher.study.trials[0].params) == {"lr", "model/depth"}


# ---------------------------------------------------------------- define-by-run


def _conditional(trial):
    kind = trial.suggest_categorical("kind", ["linear", "tree"])
    if kind == "linear":
        trial.suggest_float("linear/alpha", 1e-3, 1.0, log=True)
    else:
        trial.suggest_int("tree/depth", 2, 8)
    return {"const": 1, "extra/nested": True}


def test_define_by_run_gives_conditional_configs_with_constants():
    searcher = _search(_conditional)
    configs = [searcher.suggest(str(n)) for n in range(20)]
    for config in configs:
        assert config["const"] == 1 and config["extra"] == {"nested": True}
        other = "tree" if config["kind"] == "linear" else "linear"
        assert config["kind"] in config and other not in config
    assert {c["kind"] for c in configs} == {"linear", "tree"}


def test_define_by_run_bad_return_fails_the_optuna_trial():
    searcher = _search(lambda trial: trial.suggest_float("x", 0, 1) and 42)
    with pytest.raises(ConfigError, match="must return None or a dict"):
        searcher.suggest("a")
    assert _states(searcher) == [TrialState.FAIL]


def test_define_by_run_rejects_evaluated_rewards():
    with pytest.raises(ConfigError, match="evaluated_rewards"):
        _search(_conditional, points_to_evaluate=[{"kind": "tree"}], evaluated_rewards=[1.0])


# ---------------------------------------------------------------- ask / tell


def test_suggest_asks_at_once_without_a_batch_barrier():
    searcher = _search({"x": tune.uniform(0, 1)})
    configs = [searcher.suggest(str(n)) for n in range(5)]
    assert all(isinstance(c, dict) for c in configs)
    assert _states(searcher) == [TrialState.RUNNING] * 5
    assert searcher.suggest("2") == configs[2]  # same id: same trial, nothing new asked
    assert len(searcher.study.trials) == 5


def test_complete_failed_missing_metric_and_pruned_trials(caplog):
    searcher = _search({"x": tune.uniform(0, 1)})
    for trial_id in "abcde":
        searcher.suggest(trial_id)
    for step in (1, 2, 3):
        searcher.on_trial_result("a", {"loss": 1.0 / step, "training_iteration": step})
    searcher.on_trial_complete("a", {"loss": 0.25})
    searcher.on_trial_complete("b", {"loss": 0.5}, error=True)
    with caplog.at_level(logging.WARNING):
        searcher.on_trial_complete("c", {"accuracy": 0.9})
        searcher.on_trial_complete("d", {"loss": float("nan")})
    assert "'loss'" in caplog.text and "trial c" in caplog.text and "trial d" in caplog.text
    searcher.on_trial_result("e", {"loss": 0.9, "training_iteration": 1})
    searcher.on_trial_stopped_early("e", {"loss": 0.8, "training_iteration": 2})

    trials = searcher.study.trials
    assert _states(searcher) == [TrialState.COMPLETE] + [TrialState.FAIL] * 3 + [TrialState.PRUNED]
    assert trials[0].value == 0.25
    assert trials[0].intermediate_values == {1: 1.0, 2: 0.5, 3: pytest.approx(1 / 3)}
    assert trials[4].intermediate_values == {1: 0.9, 2: 0.8}

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        searcher.on_trial_complete("a", {"loss": 0.0})  # a second completion is ignored
    assert "already finished" in caplog.text and trials[0].value == 0.25


def test_maximize_mode_and_results_without_iteration():
    searcher = _search({"x": tune.uniform(0, 1)}, metric="acc", mode="max")
    searcher.suggest("a")
    searcher.on_trial_result("a", {"acc": 0.1})
    searcher.on_trial_result("a", {"acc": 0.2})
    searcher.on_trial_complete("a", {"acc": 0.3})
    assert searcher.study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert searcher.study.trials[0].intermediate_values == {0: 0.1, 1: 0.2}


def test_multi_objective_tells_every_metric():
    searcher = _search({"x": tune.uniform(0, 1)}, metric=["loss", "time"], mode=["min", "max"])
    searcher.suggest("a")
    searcher.suggest("b")
    searcher.on_trial_result("a", {"loss": 1.0, "time": 2.0, "training_iteration": 1})
    searcher.on_trial_complete("a", {"loss": 1.0, "time": 2.0})
    searcher.on_trial_complete("b", {"loss": 1.0})
    assert searcher.study.trials[0].values == [1.0, 2.0]
    assert _states(searcher) == [TrialState.COMPLETE, TrialState.FAIL]
    with pytest.raises(ConfigError, match="lists of equal length"):
        OptunaSearch(metric=["a", "b"], mode="min")


def test_results_of_unknown_trials_are_adopted_when_they_carry_their_config(caplog):
    searcher = _search({"x": tune.uniform(0, 1), "k": 1})
    searcher.suggest("a")
    searcher.on_trial_complete("ghost", {"loss": 0.5, "config": {"x": 0.25, "k": 1}})
    with caplog.at_level(logging.WARNING):
        searcher.on_trial_complete("nobody", {"loss": 0.5})
    assert "nobody" in caplog.text
    done = [t for t in searcher.study.trials if t.state == TrialState.COMPLETE]
    assert [(t.params, t.value) for t in done] == [({"x": 0.25}, 0.5)]


# ---------------------------------------------------------------- set-up


def test_points_to_evaluate_come_first_and_may_be_partial():
    space = {"x": tune.uniform(0, 1), "m": {"n": tune.randint(1, 9)}, "k": "const"}
    points = [{"x": 0.5, "m": {"n": 3}}, {"x": 0.125}]
    searcher = _search(space, points_to_evaluate=points)
    first, second = searcher.suggest("a"), searcher.suggest("b")
    assert first == {"x": 0.5, "m": {"n": 3}, "k": "const"}
    assert second["x"] == 0.125 and 1 <= second["m"]["n"] <= 8
    with pytest.raises(SearchSpaceError, match="'y'"):
        _search(space, points_to_evaluate=[{"y": 1}]).suggest("a")


def test_evaluated_rewards_are_told_not_rerun():
    space = {"x": tune.uniform(0, 1)}
    searcher = _search(space, points_to_evaluate=[{"x": 0.1}, {"x": 0.9}], evaluated_rewards=[1, 2])
    config = searcher.suggest("a")
    trials = searcher.study.trials
    assert [(t.params, t.value, t.state) for t in trials[:2]] == [
        ({"x": 0.1}, 1.0, TrialState.COMPLETE),
        ({"x": 0.9}, 2.0, TrialState.COMPLETE),
    ]
    assert config["x"] not in (0.1, 0.9)
    with pytest.raises(ConfigError, match="must match one to one"):
        _search(space, points_to_evaluate=[{"x": 0.1}], evaluated_rewards=[1, 2])


def test_set_search_properties_converts_the_param_space():
    searcher = OptunaSearch(seed=0)
    param_space = {"x": tune.uniform(0, 1), "k": 3}
    assert searcher.set_search_properties("loss", "min", param_space)
    assert searcher.metric == "loss" and searcher.mode == "min"
    assert searcher.suggest("a")["k"] == 3
    assert searcher.set_search_properties("loss", "min", {"x": tune.uniform(0, 1), "k": 3})
    assert not searcher.set_search_properties("loss", "min", {"y": tune.uniform(0, 1)})
    assert not searcher.set_search_properties("acc", "min", {})


def test_own_space_plus_constants_only_param_space_merges_them():
    searcher = _search({"x": tune.uniform(0, 1)})
    assert searcher.set_search_properties(None, None, {"epochs": 5, "opt": {"name": "sgd"}})
    assert searcher.suggest("a")["opt"] == {"name": "sgd"}
    assert not _search(_conditional).set_search_properties(None, None, {"y": tune.randint(0, 2)})


def test_missing_space_metric_or_optuna_give_clear_errors(monkeypatch):
    with pytest.raises(ConfigError, match="no search space"):
        OptunaSearch(metric="loss", mode="min").suggest("a")
    with pytest.raises(ConfigError, match="needs `metric` and `mode`"):
        OptunaSearch({"x": tune.uniform(0, 1)}).suggest("a")
    with pytest.raises(ConfigError, match="sampler"):
        OptunaSearch(sampler="tpe")
    monkeypatch.setattr(optuna_module, "optuna", None)
    with pytest.raises(ImportError, match=r"pip install 'hpctune\[optuna\]'"):
        OptunaSearch()


def test_importing_hpctune_search_does_not_import_optuna():
    code = "import sys, hpctune.tune.search; assert 'optuna' not in sys.modules, 'optuna imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_other_samplers_can_be_passed():
    searcher = _search({"x": tune.uniform(0, 1)}, sampler=optuna.samplers.RandomSampler(seed=1))
    searcher.suggest("a")
    assert isinstance(searcher.study.sampler, optuna.samplers.RandomSampler)


# ---------------------------------------------------------------- save / restore


def _drive(searcher_factory, n_trials: int, in_flight: int, restart_at: int | None, tmp_path):
    """Run trials ``in_flight`` at a time; optionally save and restore into a new searcher."""
    searcher = searcher_factory()
    running: list[str] = []
    history = []
    for n in range(n_trials):
        if n == restart_at:
            searcher.save(tmp_path / "searcher-state.pkl")
            searcher = searcher_factory()
            searcher.restore_from_dir(tmp_path)
        config = searcher.suggest(f"t{n}")
        history.append(config)
        running.append(f"t{n}")
        if len(running) == in_flight:
            done = running.pop(0)
            x = history[int(done[1:])]["x"]
            searcher.on_trial_result(done, {"loss": x * x + 1, "training_iteration": 1})
            searcher.on_trial_complete(done, {"loss": x * x})
    for done in running:
        searcher.on_trial_complete(done, {"loss": history[int(done[1:])]["x"] ** 2})
    return searcher, history


def test_restore_continues_the_same_study_with_in_flight_trials(tmp_path):
    def factory():
        return _search({"x": tune.uniform(-3, 3)}, points_to_evaluate=[{"x": 1.0}])

    plain, plain_history = _drive(factory, 24, in_flight=3, restart_at=None, tmp_path=tmp_path)
    restored, history = _drive(factory, 24, in_flight=3, restart_at=13, tmp_path=tmp_path)
    assert history == plain_history  # no repeated or different suggestions
    trials = restored.study.trials
    assert len(trials) == 24 and all(t.state == TrialState.COMPLETE for t in trials)
    # the two trials in flight at the restart landed on their own Optuna trials
    for n in (11, 12):
        assert trials[n].value == pytest.approx(history[n]["x"] ** 2)
        assert trials[n].intermediate_values == {1: pytest.approx(history[n]["x"] ** 2 + 1)}
    assert [t.values for t in trials] == [t.values for t in plain.study.trials]


def test_restore_before_the_first_suggestion_keeps_points_to_evaluate(tmp_path):
    searcher = _search({"x": tune.uniform(0, 1)}, points_to_evaluate=[{"x": 0.5}])
    searcher.save(tmp_path / "s.pkl")
    fresh = _search({"x": tune.uniform(0, 1)}, points_to_evaluate=[{"x": 0.5}])
    fresh.restore(tmp_path / "s.pkl")
    assert fresh.suggest("a") == {"x": 0.5}


def test_define_by_run_state_needs_the_function_back(tmp_path):
    searcher = _search(_conditional)
    searcher.suggest("a")
    searcher.save(tmp_path / "s.pkl")
    with pytest.raises(ConfigError, match="same function"):
        OptunaSearch().restore(tmp_path / "s.pkl")
    again = _search(_conditional)
    again.restore(tmp_path / "s.pkl")
    again.on_trial_complete("a", {"loss": 1.0})
    assert _states(again) == [TrialState.COMPLETE]


# ---------------------------------------------------------------- quality


def test_seeded_tpe_beats_seeded_random_by_a_wide_margin():
    def loss(x: float) -> float:
        return (x - 1.3) ** 2

    tpe_best, random_best = [], []
    for seed in range(5):
        searcher = _search({"x": tune.uniform(-10, 10)}, seed=seed)
        values = []
        for n in range(40):
            values.append(loss(searcher.suggest(str(n))["x"]))
            searcher.on_trial_complete(str(n), {"loss": values[-1]})
        tpe_best.append(min(values))
        rng = np.random.default_rng(seed)
        random_best.append(min(loss(x) for x in rng.uniform(-10, 10, size=40)))
    assert all(t < r for t, r in zip(tpe_best, random_best, strict=True))
    assert np.median(tpe_best) * 5 < np.median(random_best)
