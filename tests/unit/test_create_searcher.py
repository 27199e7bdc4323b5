"""create_searcher: names map to searchers; unknown names list the valid ones."""

from __future__ import annotations

import pytest

from hpctune.errors import ConfigError
from hpctune.tune.search import create_searcher
from hpctune.tune.search.optuna import OptunaSearch


def test_optuna_by_name_with_kwargs():
    searcher = create_searcher("optuna", metric="loss", mode="max", seed=3)
    assert isinstance(searcher, OptunaSearch)
    assert (searcher.metric, searcher.mode) == ("loss", "max")
    assert isinstance(create_searcher(" Optuna "), OptunaSearch)


@pytest.mark.parametrize("name", ["random", "variant_generator", "basic_variant"])
def test_random_search_names(name):
    from hpctune.tune.search.basic_variant import BasicVariantGenerator

    assert isinstance(create_searcher(name), BasicVariantGenerator)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(
        ConfigError,
        match="'smac'.*ax, basic_variant, bayesopt, bohb, hebo, "
        "hyperopt, nevergrad, optuna, random",
    ):
        create_searcher("smac")


# -- every name: its keywords reach the constructor (Ray's create_searcher passes them on) -----
POINT = {"x": 0.25, "n": 2}


def _space():
    from hpctune import tune

    return {"x": tune.uniform(0, 1), "n": tune.randint(1, 4)}


def _nevergrad():
    import nevergrad as ng

    return {"space": _space(), "optimizer": ng.optimizers.OnePlusOne}


# name -> (its library, the keywords that carry the space and arguments of its own, a check that
# they arrived)
KEYWORDS = {
    "optuna": ("optuna", lambda: {"space": _space(), "seed": 7}, lambda s: s._seed == 7),
    "hyperopt": (
        "hyperopt",
        lambda: {"space": _space(), "random_state_seed": 7, "n_initial_points": 3},
        lambda s: (s._seed, s._n_initial_points) == (7, 3),
    ),
    "bayesopt": (
        "bayes_opt",
        lambda: {"space": _space(), "random_state": 7, "random_search_steps": 3},
        lambda s: (s._random_state, s._random_search_steps) == (7, 3),
    ),
    "nevergrad": ("nevergrad", _nevergrad, lambda s: "OnePlusOne" in repr(s._factory)),
    "zoopt": (
        "zoopt",
        lambda: {"dim_dict": _space(), "budget": 9, "seed": 7},
        lambda s: s._budget == 9 and s._kwargs == {"seed": 7},
    ),
    "bohb": (
        "optuna",
        lambda: {"space": _space(), "seed": 7, "bohb_config": {"min_points_in_model": 2}},
        lambda s: s._seed == 7,
    ),
    "ax": ("ax", lambda: {"space": _space(), "random_seed": 7}, lambda s: s._seed == 7),
}


@pytest.mark.parametrize("name", sorted(KEYWORDS))
def test_every_keyword_reaches_the_constructor(name):
    library, kwargs, arrived = KEYWORDS[name]
    pytest.importorskip(library)
    searcher = create_searcher(name, metric="m", mode="max", points_to_evaluate=[POINT], **kwargs())
    assert (searcher.metric, searcher.mode) == ("m", "max")
    assert arrived(searcher)
    assert searcher.suggest("t0") == POINT  # points_to_evaluate arrived: it comes first


def test_random_search_takes_its_own_keywords():
    from hpctune import tune

    searcher = create_searcher(
        "random",
        param_space={"x": tune.uniform(0, 1)},
        num_samples=2,
        points_to_evaluate=[{"x": 0.5}],
    )
    assert searcher.suggest("t0") == {"x": 0.5}
    assert searcher.total_trials == 2


@pytest.mark.parametrize(
    ("name", "keyword"),
    [("random", "metric"), ("optuna", "sed"), ("hyperopt", "seed"), ("bohb", "random_seed")],
)
def test_a_keyword_the_class_does_not_take_is_named(name, keyword):
    with pytest.raises(ConfigError, match=rf"takes no '{keyword}'; it takes .*points_to_evaluate"):
        create_searcher(name, **{keyword: 1})


def test_zoopt_checks_the_keywords_it_hands_to_its_library():
    pytest.importorskip("zoopt")
    with pytest.raises(ConfigError, match=r"\['sed'\] are not arguments of zoopt.Parameter"):
        create_searcher("zoopt", budget=5, sed=1)


@pytest.mark.parametrize(
    ("name", "module", "attribute", "extra"),
    [
        ("optuna", "hpctune.tune.search.optuna", "optuna", "optuna"),
        ("bohb", "hpctune.tune.search.bohb", "optuna", "bohb"),
        ("ax", "hpctune.tune.search.ax", "Client", "ax"),
    ],
)
def test_a_missing_library_names_its_extra(name, module, attribute, extra, monkeypatch):
    import importlib

    monkeypatch.setattr(importlib.import_module(module), attribute, None)
    with pytest.raises(ImportError, match=rf"pip install 'hpctune\[{extra}\]'"):
        create_searcher(name, metric="m", mode="min")
