"""space_conversion: the one walk over a param_space, primitive names, errors, snapping."""

from __future__ import annotations

import numpy as np
import pytest

from hpctune import space as tune
from hpctune.errors import SearchSpaceError
from hpctune.tune.search.space_conversion import (
    convert_space,
    fill,
    primitive_name,
    searchable_leaves,
    snap,
)


@pytest.mark.parametrize(
    ("domain", "name"),
    [
        (tune.uniform(0, 1), "uniform"),
        (tune.quniform(0, 1, 0.1), "quniform"),
        (tune.loguniform(1e-3, 1), "loguniform"),
        (tune.qloguniform(1e-3, 1, 1e-3), "qloguniform"),
        (tune.randn(0, 1), "randn"),
        (tune.qrandn(0, 1, 0.5), "qrandn"),
        (tune.randint(0, 5), "randint"),
        (tune.qrandint(0, 10, 5), "qrandint"),
        (tune.qrandint(0, 10, 1), "randint"),  # q=1 is plain randint
        (tune.lograndint(1, 100), "lograndint"),
        (tune.qlograndint(5, 100, 5), "qlograndint"),
        (tune.choice(["a", "b"]), "choice"),
        (tune.choice([{"x": tune.uniform(0, 1)}, 2]), "choice of search spaces"),
        (tune.grid_search([1, 2]), "grid_search"),
        (tune.sample_from(lambda spec: 1), "sample_from"),
    ],
)
def test_primitive_names(domain, name):
    assert primitive_name(domain) == name


def test_leaves_of_a_nested_space_under_slash_keys_in_order():
    space = {
        "lr": tune.uniform(0, 1),
        "model": {"depth": tune.randint(1, 3), "act": "relu"},
        "seed": 7,
        "layers": [32, 16],
    }
    assert list(searchable_leaves(space, "S")) == ["lr", "model/depth"]


def test_lists_with_search_spaces_and_slashed_keys_are_refused_with_the_key():
    with pytest.raises(SearchSpaceError, match="S cannot search inside the list at `a/b`"):
        searchable_leaves({"a": {"b": [tune.uniform(0, 1)]}}, "S")
    with pytest.raises(SearchSpaceError, match="S needs string keys without '/'.*'a/b'"):
        searchable_leaves({"a/b": tune.uniform(0, 1)}, "S")


def test_a_primitive_without_converter_names_key_primitive_library_and_fix():
    converters = {"uniform": lambda key, d: ("U", key)}
    assert convert_space({"m": {"x": tune.uniform(0, 1)}}, "S", "Lib", converters) == {
        "m/x": ("U", "m/x")
    }
    with pytest.raises(
        SearchSpaceError,
        match=r"S cannot convert `m/y` \(randn\) to a Lib "
        r"parameter\. Use a bounded domain",
    ):
        convert_space({"m": {"x": tune.uniform(0, 1), "y": tune.randn()}}, "S", "Lib", converters)
    with pytest.raises(SearchSpaceError, match=r"`z` \(randint\).*supports: uniform"):
        convert_space({"z": tune.randint(0, 3)}, "S", "Lib", converters)


def test_native_leaves_are_kept_as_they_are():
    marker = object()
    out = convert_space({"x": marker}, "S", "Lib", {}, native=lambda v: v is marker)
    assert out == {"x": marker}


@pytest.mark.parametrize(
    ("domain", "raw", "expected"),
    [
        (tune.uniform(0, 1), 1.2, 1.0),  # clipped
        (tune.quniform(0, 1, 0.1), 0.3100001, 0.3),  # no float noise
        (tune.qloguniform(1e-3, 1, 1e-3), 0.00449, 0.004),
        (tune.randint(0, 3), 2.6, 2),  # upper excluded: 2 is the largest
        (tune.qrandint(0, 10, 5), 6.0, 5),
        (tune.lograndint(1, 100), 99.7, 99),
        (tune.qrandn(0, 1, 0.5), 0.74, 0.5),
        (tune.choice(["a", [1], True]), np.str_("a"), "a"),
    ],
)
def test_snap_gives_values_the_domain_could_sample(domain, raw, expected):
    value = snap(domain, raw)
    assert value == expected
    assert type(value) is type(expected)


def test_snap_returns_the_category_of_the_same_type_first():
    assert snap(tune.choice([1, True]), True) is True
    assert snap(tune.choice([True, 1]), 1) == 1 and type(snap(tune.choice([True, 1]), 1)) is int


def test_fill_replaces_leaves_and_copies_constants():
    dims = [64, 32]
    space = {"lr": tune.uniform(0, 1), "model": {"depth": tune.randint(1, 3), "dims": dims}}
    config = fill(space, {"lr": 0.5, "model/depth": 2})
    assert config == {"lr": 0.5, "model": {"depth": 2, "dims": [64, 32]}}
    assert config["model"]["dims"] is not dims


# -- one walk: no adapter walks a param_space itself ------------------------------------------------
ADAPTERS = (
    "hyperopt",
    "bayesopt",
    "nevergrad",
    "zoopt",
    "bohb",
    "ax",
    "optuna",
    "optuna_space",
    "library_searcher",
)


def _self_calling_functions(path) -> list[str]:
    import ast

    tree = ast.parse(path.read_text())
    return [
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        and any(
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Name)
            and call.func.id == node.name
            for call in ast.walk(node)
        )
    ]


def test_only_space_conversion_walks_a_nested_space():
    from pathlib import Path

    import hpctune.tune.search as search

    folder = Path(search.__file__).parent
    assert _self_calling_functions(folder / "space_conversion.py")  # the check can see a walk
    walkers = {name: _self_calling_functions(folder / f"{name}.py") for name in ADAPTERS}
    assert walkers == dict.fromkeys(ADAPTERS, [])


def test_every_library_adapter_converts_through_space_conversion():
    from hpctune.tune.search import space_conversion
    from hpctune.tune.search.ax import AxSearch
    from hpctune.tune.search.bayesopt import BayesOptSearch
    from hpctune.tune.search.bohb import TuneBOHB
    from hpctune.tune.search.hyperopt import HyperOptSearch
    from hpctune.tune.search.library_searcher import LibrarySearcher
    from hpctune.tune.search.nevergrad import NevergradSearch
    from hpctune.tune.search.optuna_space import convert_search_space
    from hpctune.tune.search.zoopt import ZOOptSearch

    for cls in (AxSearch, BayesOptSearch, TuneBOHB, HyperOptSearch, NevergradSearch, ZOOptSearch):
        assert issubclass(cls, LibrarySearcher), cls
    assert LibrarySearcher._convert.__code__.co_names.count("convert_space") == 1
    assert "convert_space" in convert_search_space.__code__.co_names  # OptunaSearch's path
    assert space_conversion.convert_space.__module__ == space_conversion.__name__
