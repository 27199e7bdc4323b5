"""BasicVariantGenerator: random + grid search with Ray's num_samples x grid semantics.

The counts come from "Working with Tune Search Spaces" and "How to use Custom and
Conditional Search Spaces in Tune?" in the Ray Tune docs.
"""

from __future__ import annotations

import collections
import itertools

import numpy as np
import pytest

from hpctune.errors import ConfigError, SearchSpaceError
from hpctune.space import choice, grid_search, randint, randn, sample_from, uniform
from hpctune.tune.search import BasicVariantGenerator, Searcher


def run(searcher, limit=10_000):
    """Every config until FINISHED (trial ids "0", "1", ...), completing each at once."""
    configs = []
    for i in itertools.count():
        config = searcher.suggest(str(i))
        if config == Searcher.FINISHED:
            return configs
        assert isinstance(config, dict) and i < limit
        configs.append(config)
        searcher.on_trial_complete(str(i))
    return configs


def take(searcher, n, start=0):
    return [searcher.suggest(str(start + i)) for i in range(n)]


def nn_space():
    return {
        "alpha": sample_from(lambda spec: spec.rng.uniform(0, 100)),
        "beta": sample_from(lambda spec: spec.config.alpha * spec.rng.normal()),
        "nn_layers": [grid_search([16, 64, 256]), grid_search([16, 64, 256])],
    }


XY = {"x": grid_search([1, 2, 3]), "y": grid_search(["a", "b", "c"])}


@pytest.mark.parametrize(
    ("param_space", "num_samples", "expected"),
    [
        ({"x": choice([0, 1, 2])}, 13, 13),
        ({"x": choice([0, 1, 2]), "y": randn(0, 1)}, 13, 13),
        ({"x": grid_search([1, 2, 3, 4])}, 1, 4),
        ({"x": grid_search([1, 2, 3])}, 1, 3),
        ({"x": grid_search([1, 2, 3])}, 2, 6),
        (XY, 1, 9),
        (XY, 2, 18),
        (XY, 5, 45),
        ({"x": sample_from(lambda spec: 1), "y": grid_search(["a", "b", "c"])}, 2, 6),
        (nn_space(), 10, 90),
        (nn_space(), 1, 9),
        ({}, 3, 3),
    ],
)
def test_counts_from_the_reference(param_space, num_samples, expected):
    searcher = BasicVariantGenerator(param_space, num_samples=num_samples, seed=0)
    assert searcher.total_trials == expected
    assert len(run(searcher)) == expected


def test_num_samples_repeats_the_whole_grid():
    configs = run(BasicVariantGenerator(XY, num_samples=2, seed=0))
    pairs = [(c["x"], c["y"]) for c in configs]
    one_pass = [(x, y) for y in "abc" for x in (1, 2, 3)]  # the first sorted key varies fastest
    assert pairs == one_pass + one_pass


def test_every_grid_point_gets_fresh_random_values():
    configs = run(BasicVariantGenerator(nn_space(), num_samples=10, seed=0))
    assert collections.Counter(tuple(c["nn_layers"]) for c in configs) == {
        combo: 10 for combo in itertools.product([16, 64, 256], repeat=2)
    }
    assert len({c["alpha"] for c in configs}) == 90
    assert all(isinstance(c["beta"], float) for c in configs)


def test_configs_are_resolved_nested_and_independent():
    param_space = {
        "model": {"layers": [randint(1, 4), {"units": grid_search([8, 16])}], "act": "relu"},
        "lr": uniform(0, 1),
        "const": "hello",
    }
    searcher = BasicVariantGenerator(param_space, num_samples=2, seed=0)
    configs = run(searcher)
    assert [c["model"]["layers"][1]["units"] for c in configs] == [8, 16, 8, 16]
    for c in configs:
        assert c["const"] == "hello" and c["model"]["act"] == "relu"
        assert c["model"]["layers"][0] in (1, 2, 3) and 0 <= c["lr"] < 1
    configs[0]["model"]["act"] = "mutated"
    assert configs[1]["model"]["act"] == "relu" and param_space["model"]["act"] == "relu"


def test_sample_from_is_resolved_in_dependency_order():
    param_space = {
        "beta": sample_from(lambda spec: spec.config.alpha * 2),
        "alpha": sample_from(lambda spec: spec.config.base + 1),
        "base": grid_search([10, 20]),
    }
    configs = run(BasicVariantGenerator(param_space, seed=0))
    assert [(c["alpha"], c["beta"]) for c in configs] == [(11, 22), (21, 42)]


def test_a_cycle_raises_naming_the_keys():
    param_space = {
        "a": sample_from(lambda spec: spec.config.b),
        "b": sample_from(lambda spec: spec.config.a),
    }
    with pytest.raises(SearchSpaceError, match="`a` reads `b`, `b` reads `a`"):
        BasicVariantGenerator(param_space).suggest("0")


def test_same_seed_same_sequence_different_seed_different_sequence():
    def sequence(**kwargs):
        return take(BasicVariantGenerator(nn_space(), num_samples=3, **kwargs), 20)

    assert sequence(seed=1) == sequence(seed=1)
    assert sequence(seed=1) != sequence(seed=2)
    assert sequence(random_state=5) == sequence(seed=5)
    gen = sequence(random_state=np.random.default_rng(3))
    assert gen == sequence(random_state=np.random.default_rng(3))
    assert sequence() != sequence()  # no seed: fresh entropy each time


def test_seed_can_come_from_set_search_properties():
    a = BasicVariantGenerator()
    a.set_search_properties(None, None, {"x": uniform(0, 1)}, num_samples=5, seed=4)
    b = BasicVariantGenerator({"x": uniform(0, 1)}, num_samples=5, seed=4)
    assert run(a) == run(b)


@pytest.mark.parametrize("constant_grid_search", [False, True])
@pytest.mark.parametrize("stop_after", [0, 1, 4, 9, 10, 26])
def test_state_restore_continues_the_same_sequence(tmp_path, constant_grid_search, stop_after):
    def make():
        return BasicVariantGenerator(
            nn_space(),
            num_samples=3,
            seed=11,
            constant_grid_search=constant_grid_search,
            points_to_evaluate=[{"alpha": 1.0}],
        )

    uninterrupted = run(make())
    first = make()
    head = take(first, stop_after)
    first.save(tmp_path / "state.pkl")  # Searcher.save pickles get_state()
    second = BasicVariantGenerator(nn_space())  # a restored driver: space from the Tuner again
    second.restore(tmp_path / "state.pkl")
    tail = run(second)
    assert head + tail == uninterrupted
    assert len(uninterrupted) == 27


def test_restore_without_a_seed_keeps_the_drawn_one():
    first = BasicVariantGenerator({"x": uniform(0, 1)}, num_samples=6)
    head = take(first, 2)
    state = first.get_state()
    rest = run(first)
    second = BasicVariantGenerator({"x": uniform(0, 1)})
    second.set_state(state)
    assert run(second) == rest and head[0] not in rest


def test_state_of_another_version_is_refused():
    with pytest.raises(ConfigError, match="version"):
        BasicVariantGenerator().set_state({"version": 999})


def test_num_samples_minus_one_samples_forever():
    searcher = BasicVariantGenerator(
        {"x": grid_search([1, 2]), "y": uniform(0, 1)}, num_samples=-1, seed=0
    )
    assert searcher.total_trials is None
    configs = take(searcher, 200)
    assert [c["x"] for c in configs] == [1, 2] * 100
    assert len({c["y"] for c in configs}) == 200


def test_max_concurrent_pauses_suggestions_until_a_trial_completes():
    searcher = BasicVariantGenerator({"x": uniform(0, 1)}, num_samples=5, max_concurrent=2, seed=0)
    assert isinstance(searcher.suggest("a"), dict) and isinstance(searcher.suggest("b"), dict)
    assert searcher.suggest("c") is None
    searcher.on_trial_complete("a")
    assert isinstance(searcher.suggest("c"), dict)
    searcher.on_trial_stopped_early("b", None)
    searcher.on_trial_complete("c", error=True)
    assert len(run(searcher)) == 2


def test_finished_is_returned_again_and_again():
    searcher = BasicVariantGenerator({"x": 1}, num_samples=1)
    assert searcher.suggest("0") == {"x": 1}
    assert searcher.suggest("1") == Searcher.FINISHED == searcher.suggest("2")


def test_constant_grid_search_keeps_random_values_over_the_grid():
    param_space = {
        "r": uniform(0, 1),
        "g": grid_search([1, 2, 3]),
        "f": sample_from(lambda spec: spec.config.g * spec.rng.uniform(1, 2)),
    }
    configs = run(
        BasicVariantGenerator(param_space, num_samples=2, seed=0, constant_grid_search=True)
    )
    first, second = configs[:3], configs[3:]
    assert len({c["r"] for c in first}) == 1 and len({c["r"] for c in second}) == 1
    assert first[0]["r"] != second[0]["r"]
    assert len({c["f"] for c in configs}) == 6  # depends on the grid: drawn per grid point
    plain = run(BasicVariantGenerator(param_space, num_samples=2, seed=0))
    assert len({c["r"] for c in plain}) == 6


def test_points_to_evaluate_come_first_and_count_as_samples():
    param_space = {
        "lr": uniform(0, 1),
        "g": grid_search(["a", "b"]),
        "opt": {"m": 0.9, "n": randint(0, 5)},
    }
    points = [{"lr": 0.5, "g": "a"}, {"lr": 0.25, "opt": {"n": 7}}]
    searcher = BasicVariantGenerator(param_space, num_samples=4, seed=0, points_to_evaluate=points)
    # point 1 fixes the grid (1 config), point 2 leaves it open (2), then 2 repetitions x 2
    assert searcher.total_trials == 1 + 2 + 4
    configs = run(searcher)
    assert configs[0]["lr"] == 0.5 and configs[0]["g"] == "a"
    assert [(c["lr"], c["g"], c["opt"]) for c in configs[1:3]] == [
        (0.25, "a", {"m": 0.9, "n": 7}),
        (0.25, "b", {"m": 0.9, "n": 7}),
    ]
    assert len(configs) == 7 and all(c["lr"] not in (0.5, 0.25) for c in configs[3:])


def test_more_points_than_num_samples_evaluates_every_point():
    searcher = BasicVariantGenerator(
        {"x": uniform(0, 1)}, num_samples=1, points_to_evaluate=[{"x": 1}, {"x": 2}]
    )
    assert searcher.total_trials == 2 and run(searcher) == [{"x": 1}, {"x": 2}]


def test_set_search_properties_takes_space_and_num_samples():
    searcher = BasicVariantGenerator()
    assert searcher.adaptive is False
    assert searcher.set_search_properties("loss", "min", {"x": grid_search([1, 2])}, num_samples=3)
    assert searcher.metric == "loss" and searcher.total_trials == 6
    own = BasicVariantGenerator({"x": 1})
    assert not own.set_search_properties(None, None, {"y": 2})
    assert own.set_search_properties(None, None, {}, num_samples=2) and own.total_trials == 2
    assert own.set_search_properties(None, None, {"x": 1})  # the same space again is fine


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"num_samples": 0}, ConfigError, "`num_samples` is 0"),
        ({"num_samples": -2}, ConfigError, "`num_samples` is -2"),
        ({"max_concurrent": -1}, ConfigError, "`max_concurrent` is -1"),
        ({"seed": 1, "random_state": 2}, ConfigError, "either `seed` or `random_state`"),
        ({"seed": -3}, ConfigError, "`seed` is -3"),
        ({"points_to_evaluate": [1]}, ConfigError, r"points_to_evaluate\[0\] is 1"),
        ({"param_space": {"x": {"grid_search": []}}}, SearchSpaceError, "non-empty list"),
    ],
)
def test_invalid_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        BasicVariantGenerator(**kwargs)
