"""AxSearch: conversion of every primitive, errors, failures told as failed, state round trip.
Every check stays in Ax's quasi-random stage (its first 5 points): Ax's Gaussian process takes
seconds per suggestion."""

from __future__ import annotations

import logging
import pickle

import pytest
from ax import ChoiceParameterConfig, RangeParameterConfig
from ax.core.trial_status import TrialStatus

from hpctune import space as tune
from hpctune.errors import ConfigError, SearchSpaceError
from hpctune.tune.search import create_searcher
from hpctune.tune.search.ax import AxSearch
from tests.unit.test_search_adapters import PRIMITIVES, UNSUPPORTED_EVERYWHERE

SUPPORTED = set(PRIMITIVES) - {"randn", "qrandn"}


def make(space=None, **kwargs) -> AxSearch:
    return AxSearch(space, **{"metric": "loss", "mode": "min", "random_seed": 0, **kwargs})


def test_every_convertible_primitive_gives_values_of_its_domain():
    space = {f"p_{name}": PRIMITIVES[name][0] for name in sorted(SUPPORTED)}
    searcher = make({"m": space, "k": "const"})
    for i in range(4):
        config = searcher.suggest(f"t{i}")
        assert config["k"] == "const"
        for name in SUPPORTED:
            assert PRIMITIVES[name][1](config["m"][f"p_{name}"]), (name, config)
        searcher.on_trial_complete(f"t{i}", {"loss": float(i)})


def test_library_forms():
    space = make(
        {
            "x": tune.qrandint(0, 10, 5),
            "l": tune.loguniform(1e-4, 1e-1),
            "c": tune.choice(["a", "b"]),
            "o": tune.choice([[1], 2]),
        }
    )._space
    assert space["x"] == RangeParameterConfig(
        name="x", bounds=(0, 10), parameter_type="int", step_size=5
    )
    assert space["l"] == RangeParameterConfig(
        name="l", bounds=(1e-4, 1e-1), parameter_type="float", scaling="log"
    )
    assert space["c"] == ChoiceParameterConfig(name="c", values=["a", "b"], parameter_type="str")
    assert space["o"].values == [0, 1]  # mixed categories: by index


@pytest.mark.parametrize("primitive", ["randn", "qrandn", *UNSUPPORTED_EVERYWHERE])
def test_unconvertible_primitives_name_key_and_primitive(primitive):
    domain = (
        PRIMITIVES[primitive][0] if primitive in PRIMITIVES else UNSUPPORTED_EVERYWHERE[primitive]
    )
    with pytest.raises(SearchSpaceError, match=rf"`m/p` \({primitive}\)"):
        make({"m": {"p": domain}})


def test_results_failures_points_and_state():
    points = [{"x": 0.25, "c": [1]}]
    searcher = make(
        {"x": tune.uniform(0, 1), "c": tune.choice([[1], 2])}, mode="max", points_to_evaluate=points
    )
    assert searcher.suggest("a") == points[0]
    searcher.suggest("b")
    searcher.suggest("c")
    searcher.on_trial_complete("a", {"loss": 2.0})
    searcher.on_trial_complete("b", error=True)
    trials = searcher._opt._experiment.trials
    assert [trials[i].status for i in (0, 1, 2)] == [
        TrialStatus.COMPLETED,
        TrialStatus.FAILED,
        TrialStatus.RUNNING,
    ]
    data = searcher._opt._experiment.lookup_data().df
    assert list(data["mean"]) == [-2.0]  # max: the loss told is negated
    restored = AxSearch()
    restored.set_state(pickle.loads(pickle.dumps(searcher.get_state())))
    restored.on_trial_complete("c", {"loss": 1.0})  # asked before, told after the restore
    assert restored._opt._experiment.trials[2].status == TrialStatus.COMPLETED
    assert restored.suggest("d") == searcher.suggest("d")


def test_by_name_and_unsupported_arguments():
    assert isinstance(create_searcher("ax", metric="m", mode="min"), AxSearch)
    with pytest.raises(
        ConfigError, match="`ax_client` and `outcome_constraints` are not supported"
    ):
        AxSearch(ax_client=object())
    with pytest.raises(ConfigError, match=r"unknown arguments \['seed'\]"):
        AxSearch(seed=1)


def test_ax_says_nothing_per_trial(caplog):
    searcher = make({"x": tune.uniform(0, 1)})
    with caplog.at_level(logging.INFO):
        searcher.suggest("a")
        searcher.on_trial_complete("a", {"loss": 1.0})
    assert not [r for r in caplog.records if r.name.startswith("ax")], caplog.text
