"""Search-space primitives: bounds, rounding, distributions, resolution, validation, tags.

Bounds are checked by drawing many values from a seeded Generator; reference values
come from the "Tune Search Space API" section of the Ray Tune docs.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest

from hpctune import space
from hpctune.errors import SearchSpaceError
from hpctune.space import (
    Categorical,
    Float,
    Function,
    Integer,
    Spec,
    choice,
    format_experiment_tag,
    grid_search,
    grid_variables,
    grid_variant,
    is_grid_search,
    lograndint,
    loguniform,
    qlograndint,
    qloguniform,
    qrandint,
    qrandn,
    quniform,
    randint,
    randn,
    resolve_config,
    sample_from,
    sampled_paths,
    uniform,
    validate_space,
)

N = 4000


def draws(domain, n=N, seed=0):
    rng = np.random.default_rng(seed)
    return [domain.sample(rng) for _ in range(n)]


def is_multiple(value, q):
    return abs(value / q - round(value / q)) < 1e-9


# --- bounds and rounding, primitive by primitive ---


def test_uniform_stays_in_bounds_and_returns_floats():
    values = draws(uniform(-5, -1))
    assert all(type(v) is float and -5 <= v < -1 for v in values)
    assert min(values) < -4.9 and max(values) > -1.1


def test_quniform_rounds_to_multiples_of_q_and_reaches_both_ends():
    values = draws(quniform(3.2, 5.4, 0.2))
    assert all(3.2 <= v <= 5.4 and is_multiple(v, 0.2) for v in values)
    assert {3.2, 5.4} <= set(values)
    assert all(v == round(v, 10) for v in values)  # 3.4, not 3.4000000000000004
    assert len(set(values)) == 12


def test_quniform_bounds_that_are_not_multiples_shrink_to_the_multiples_inside():
    domain = quniform(0.1, 1.0, 0.3)
    assert set(draws(domain)) == {0.3, 0.6, 0.9}
    assert domain.inclusive_bounds() == (0.3, 0.9)


def test_loguniform_is_uniform_in_log_space():
    values = draws(loguniform(1e-4, 1e-2))
    assert all(1e-4 <= v <= 1e-2 for v in values)
    below_geometric_middle = sum(v < 1e-3 for v in values) / len(values)
    assert 0.45 < below_geometric_middle < 0.55  # a linear uniform would give ~0.09


def test_loguniform_base_is_kept_and_respected():
    domain = loguniform(1, 1024, base=2)
    assert domain.base == 2 and domain.log
    values = draws(domain)
    assert all(1 <= v <= 1024 for v in values)
    assert 0.45 < sum(v < 32 for v in values) / len(values) < 0.55


def test_qloguniform_rounds_to_q_in_bounds():
    values = draws(qloguniform(1e-4, 1e-1, 5e-5))
    assert all(1e-4 <= v <= 1e-1 and is_multiple(v, 5e-5) for v in values)
    assert sum(v < 1e-2 for v in values) / len(values) > 0.5  # log scale: small values dominate


def test_randn_has_the_given_mean_and_sd():
    values = np.array(draws(randn(10, 2)))
    assert abs(values.mean() - 10) < 0.15 and abs(values.std() - 2) < 0.15
    assert randn().mean == 0.0 and randn().sd == 1.0


def test_qrandn_rounds_to_q():
    values = draws(qrandn(10, 2, 0.2))
    assert all(is_multiple(v, 0.2) for v in values)
    assert abs(np.mean(values) - 10) < 0.15


def test_randint_excludes_upper():
    values = draws(randint(-9, 15))
    assert all(type(v) is int for v in values)
    assert set(values) == set(range(-9, 15))
    assert randint(-9, 15).inclusive_bounds() == (-9, 14)


def test_qrandint_includes_upper():
    values = draws(qrandint(-21, 12, 3))
    assert set(values) == set(range(-21, 13, 3))  # 12 included
    assert qrandint(-21, 12, 3).inclusive_bounds() == (-21, 12)


def test_qrandint_with_q_one_is_randint_with_upper_excluded():
    assert set(draws(qrandint(1, 10, 1))) == set(range(1, 10))
    assert qrandint(1, 10).inclusive_bounds() == (1, 9)


def test_qrandint_takes_the_multiples_of_q_inside_the_bounds():
    assert set(draws(qrandint(1, 10, 3))) == {3, 6, 9}
    assert qrandint(1, 10, 3).inclusive_bounds() == (3, 9)


def test_lograndint_excludes_upper_and_favours_small_values():
    values = draws(lograndint(1, 10))
    assert set(values) == set(range(1, 10))
    assert lograndint(1, 10).inclusive_bounds() == (1, 9)
    counts = np.bincount(values)
    assert counts[1] > counts[5] > counts[9]


def test_qlograndint_includes_upper():
    values = draws(qlograndint(1, 10, 2))
    assert set(values) == {2, 4, 6, 8, 10}
    assert qlograndint(1, 10, 2).inclusive_bounds() == (2, 10)
    assert qlograndint(1, 10, 1).inclusive_bounds() == (1, 9)  # q == 1: lograndint
    assert max(draws(qlograndint(1, 10, 1))) == 9


def test_log_integers_stay_in_bounds_over_wide_ranges():
    values = draws(lograndint(1, 100_000))
    assert min(values) >= 1 and max(values) <= 99_999
    assert sum(v < 316 for v in values) / len(values) > 0.4  # half the log range


def test_choice_hits_every_category_and_returns_the_objects():
    marker = object()
    values = draws(choice(["a", marker, 3]))
    assert set(map(id, values)) == {id("a"), id(marker), id(3)}


def test_same_seed_same_values_different_seed_different_values():
    for domain in (uniform(0, 1), loguniform(1e-3, 1), randint(0, 10**6), choice(range(100))):
        assert draws(domain, 20, seed=7) == draws(domain, 20, seed=7)
        assert draws(domain, 20, seed=7) != draws(domain, 20, seed=8)


# --- the class contract the Optuna adapter codes against ---


def test_float_attributes():
    d = qloguniform(1e-4, 1e-1, 5e-5, base=2)
    assert (d.lower, d.upper, d.log, d.q, d.sampler, d.base) == (
        1e-4,
        1e-1,
        True,
        5e-5,
        "loguniform",
        2,
    )
    assert (d.mean, d.sd) == (None, None)
    u = uniform(0, 1)
    assert (u.log, u.q, u.sampler, u.base) == (False, None, "uniform", None)
    n = qrandn(10, 2, 0.5)
    assert (n.lower, n.upper, n.mean, n.sd, n.q, n.sampler) == (None, None, 10, 2, 0.5, "normal")
    assert isinstance(d, Float) and isinstance(d, space.Domain)


def test_integer_attributes_keep_the_user_bounds():
    d = qrandint(-21, 12, 3)
    assert isinstance(d, Integer)
    assert (d.lower, d.upper, d.log, d.q, d.sampler) == (-21, 12, False, 3, "uniform")
    lg = lograndint(1, 10, base=2)
    assert (lg.lower, lg.upper, lg.log, lg.q, lg.sampler, lg.base) == (
        1,
        10,
        True,
        None,
        "loguniform",
        2,
    )


def test_categorical_and_function_attributes():
    assert choice(("a", "b")).categories == ["a", "b"]
    assert isinstance(choice([1]), Categorical)

    def f(spec):
        return 1

    assert sample_from(f).func is f and isinstance(sample_from(f), Function)


def test_repr_names_the_primitive():
    assert repr(qrandint(-21, 12, 3)) == "qrandint(-21, 12, q=3)"
    assert repr(loguniform(1, 8, base=2)) == "loguniform(1, 8, base=2)"
    assert repr(randn(10, 2)) == "randn(10, 2)"


# --- sample_from and the spec ---


def test_sample_from_reads_the_config_by_attribute_and_by_index():
    spec = Spec({"alpha": 3, "nested": {"b": [10, 20]}})
    attr = sample_from(lambda s: s.config.alpha * s.config.nested.b[1])
    index = sample_from(lambda s: s["config"]["alpha"] + s.config["nested"]["b"][-1])
    rng = np.random.default_rng(0)
    assert attr.sample(rng, spec) == 60
    assert index.sample(rng, spec) == 23
    assert attr.sample(rng, {"alpha": 2, "nested": {"b": [0, 1]}}) == 2  # a plain dict works too


def test_sample_from_without_arguments_and_with_spec_rng():
    rng = np.random.default_rng(0)
    assert sample_from(lambda: 5).sample(rng) == 5
    seeded = sample_from(lambda spec: spec.rng.integers(10**9))
    assert seeded.sample(np.random.default_rng(1)) == seeded.sample(np.random.default_rng(1))


def test_reading_an_unsampled_value_raises_unresolved():
    with pytest.raises(space.UnresolvedValueError) as info:
        Spec({"a": {"b": uniform(0, 1)}}).config.a.b  # noqa: B018
    assert info.value.path == ("a", "b")


# --- grid expansion and resolution ---


def test_grid_search_is_rays_plain_dict():
    assert grid_search((1, 2)) == {"grid_search": [1, 2]}
    assert is_grid_search(grid_search([1])) and is_grid_search({"grid_search": [1]})
    assert not is_grid_search({"grid_search": [1], "other": 2}) and not is_grid_search([1])


def test_grid_variables_are_sorted_and_the_first_varies_fastest():
    param_space = {"y": grid_search(["a", "b"]), "x": grid_search([1, 2, 3])}
    assert [path for path, _ in grid_variables(param_space)] == [("x",), ("y",)]
    combos = [(v["x"], v["y"]) for v in (grid_variant(param_space, i) for i in range(6))]
    assert combos == [(1, "a"), (2, "a"), (3, "a"), (1, "b"), (2, "b"), (3, "b")]
    assert space.count_grid_variants(param_space) == 6 and space.count_grid_variants({}) == 1


def test_resolve_keeps_constants_and_nesting_and_copies_containers():
    inner = {"units": 4}
    param_space = {"model": {"layers": [randint(1, 3), inner], "act": "relu"}, "lr": 0.1}
    config = resolve_config(param_space, np.random.default_rng(0))
    assert config["model"]["layers"][0] in (1, 2)
    assert config["model"]["layers"][1] == inner and config["model"]["layers"][1] is not inner
    assert config["model"]["act"] == "relu" and config["lr"] == 0.1
    assert isinstance(param_space["model"]["layers"][0], Integer)  # input untouched


def test_sample_from_runs_after_what_it_reads_whatever_the_order():
    param_space = {
        "c": sample_from(lambda s: s.config.b + 1),
        "b": sample_from(lambda s: s.config.a * 10),
        "a": randint(1, 5),
        "d": sample_from(lambda s: s.config.nested.x * 2),
        "nested": {"x": sample_from(lambda s: s.config.c)},
    }
    config = resolve_config(param_space, np.random.default_rng(0))
    assert config["b"] == config["a"] * 10 and config["c"] == config["b"] + 1
    assert config["nested"]["x"] == config["c"] and config["d"] == 2 * config["c"]


def test_domains_inside_a_chosen_category_are_resolved():
    param_space = {
        "opt": choice([{"name": "sgd", "lr": uniform(0, 1), "m": sample_from(lambda s: 2)}])
    }
    config = resolve_config(param_space, np.random.default_rng(0))
    assert (
        config["opt"]["name"] == "sgd" and 0 <= config["opt"]["lr"] < 1 and config["opt"]["m"] == 2
    )


def test_sample_from_may_return_a_domain_or_a_subtree():
    param_space = {
        "a": sample_from(lambda s: uniform(5, 6)),
        "b": {"x": randint(0, 2)},
        "copy": sample_from(lambda s: s.config.b),
    }
    config = resolve_config(param_space, np.random.default_rng(0))
    assert 5 <= config["a"] < 6
    assert config["copy"] == config["b"] and isinstance(config["copy"], dict)


@pytest.mark.parametrize(
    ("param_space", "names"),
    [
        (
            {"a": sample_from(lambda s: s.config.b), "b": sample_from(lambda s: s.config.a)},
            ["`a` reads `b`", "`b` reads `a`"],
        ),
        ({"a": sample_from(lambda s: s.config.a)}, ["`a` reads `a`"]),
        (
            {
                "x": {"a": sample_from(lambda s: s.config.z)},
                "z": sample_from(lambda s: s.config.x["a"]),
            },
            ["`x.a` reads `z`", "`z` reads `x.a`"],
        ),
    ],
)
def test_cycles_raise_naming_the_keys(param_space, names):
    with pytest.raises(SearchSpaceError, match="cycle") as info:
        resolve_config(param_space, np.random.default_rng(0))
    for name in names:
        assert name in str(info.value)


def test_a_failing_sample_from_names_its_key():
    with pytest.raises(SearchSpaceError, match=r"`b`.*ZeroDivisionError"):
        resolve_config({"b": sample_from(lambda s: 1 / 0)}, np.random.default_rng(0))
    with pytest.raises(SearchSpaceError, match="no key 'missing'"):
        resolve_config({"b": sample_from(lambda s: s.config.missing)}, np.random.default_rng(0))


def test_partial_resolution_leaves_what_depends_on_the_grid():
    param_space = {
        "g": grid_search([1, 2]),
        "r": uniform(0, 1),
        "f": sample_from(lambda s: s.config.g * 10),
    }
    held = resolve_config(param_space, np.random.default_rng(0), partial=True)
    assert (
        isinstance(held["r"], float)
        and is_grid_search(held["g"])
        and isinstance(held["f"], Function)
    )


# --- paths, tags, validation ---


def test_sampled_paths_find_domains_and_grids_in_nested_dicts_and_lists():
    param_space = {
        "a": uniform(0, 1),
        "b": {"c": grid_search([1, 2]), "d": 1},
        "e": [randint(0, 3), 3, {"f": choice([1, 2])}],
        "const": "x",
    }
    assert sampled_paths(param_space) == [("a",), ("b", "c"), ("e", 0), ("e", 2, "f")]
    assert sampled_paths(None) == []


def test_experiment_tag_like_rays():
    param_space = {"lr": loguniform(1e-4, 1e-1), "layers": grid_search([2, 4]), "const": 5}
    assert (
        format_experiment_tag(3, {"lr": 0.01, "layers": 2, "const": 5}, param_space)
        == "3_layers=2,lr=0.01"
    )
    assert format_experiment_tag(7, {"w": -53.11612345}, {"w": uniform(-99, 0)}) == "7_w=-53.116"
    assert format_experiment_tag(0, {"a": 1}, {"a": 1}) == "0"


def test_experiment_tag_is_safe_in_a_directory_name():
    tag = format_experiment_tag(
        1,
        {"p": "a/b c:d", "n": {"x": [1]}},
        {"p": choice(["a/b c:d"]), "n": {"x": grid_search([[1]])}},
    )
    assert tag == "1_x=1,p=a_b_c_d"
    assert "/" not in tag and " " not in tag


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: uniform(5, 3), r"The value of `lower` is 5, but must be < `upper` \(3\)"),
        (lambda: randint(4, 4), "must be < `upper`"),
        (lambda: quniform(0, 1, 0), "`q` is 0, but must be > 0"),
        (lambda: qrandint(0, 10, -2), "`q` is -2, but must be > 0"),
        (lambda: qrandint(0, 10, 2.5), "`q` is 2.5, but must be an integer"),
        (lambda: randint(0.5, 3), "`lower` is 0.5, but must be an integer"),
        (lambda: choice([]), "empty list of categories"),
        (lambda: choice("abc"), "takes a list of categories"),
        (lambda: loguniform(0, 1), "`lower` is 0, but must be > 0 on a log scale"),
        (lambda: qloguniform(-1, 1, 0.1), "must be > 0 on a log scale"),
        (lambda: lograndint(0, 10), "`lower` is 0, but must be > 0 on a log scale"),
        (lambda: qlograndint(-5, 10, 2), "must be > 0 on a log scale"),
        (lambda: loguniform(1, 10, base=1), "`base` is 1, but must be > 0 and != 1"),
        (lambda: randn(0, 0), "`sd` is 0, but must be > 0"),
        (lambda: qrandn(0, -1, 0.1), "`sd` is -1, but must be > 0"),
        (lambda: randn([0, 1, 2]), "`mean` is \\[0, 1, 2\\], but must be a finite number"),
        (lambda: uniform(0, math.inf), "must be a finite number"),
        (lambda: qrandint(1, 2, 3), "no multiple of `q`"),
        (lambda: quniform(0.1, 0.2, 1), "no multiple of `q`"),
        (lambda: grid_search([]), "empty list"),
        (lambda: grid_search(5), "takes a list of values"),
        (lambda: sample_from(3), "takes a function"),
        (lambda: sample_from(lambda a, b: 0), "must take one argument"),
    ],
)
def test_invalid_domains_raise_at_construction(make, message):
    with pytest.raises(SearchSpaceError, match=message):
        make()


@pytest.mark.parametrize(
    ("param_space", "message"),
    [
        ({"a": {"grid_search": []}}, "grid_search at `a` is \\[\\], but must be a non-empty list"),
        ({"a": {"b": [1, {"grid_search": 3}]}}, "grid_search at `a.b\\[1\\]`"),
        ({"a": grid_search([grid_search([1])])}, "grid_search at `a\\[0\\]` is nested"),
        ({"a": choice([{"b": grid_search([1, 2])}])}, "grid_search at `a\\[0\\].b` is nested"),
        ({"a": sample_from(lambda s: s.config.b), "b": sample_from(lambda s: s.config.a)}, "cycle"),
        ({"a": sample_from(lambda s: grid_search([1, 2]))}, "cannot be expanded there"),
        ([uniform(0, 1)], "param_space must be a dict"),
        (grid_search([1]), "param_space must be a dict"),
    ],
)
def test_validate_space_finds_problems_anywhere(param_space, message):
    with pytest.raises(SearchSpaceError, match=message):
        validate_space(param_space)


def test_validate_space_rechecks_domains_deep_inside_categories():
    broken = uniform(0, 1)
    broken.lower = 4  # mutated after construction
    with pytest.raises(SearchSpaceError, match=r"`m.x\[1\].y`: uniform\(4, 1\)"):
        validate_space({"m": {"x": choice([1, {"y": broken}])}})


def test_validate_space_accepts_the_reference_example_and_none():
    validate_space(None)
    validate_space(
        {
            "uniform": uniform(-5, -1),
            "quniform": quniform(3.2, 5.4, 0.2),
            "loguniform": loguniform(1e-4, 1e-2),
            "qloguniform": qloguniform(1e-4, 1e-1, 5e-5),
            "randn": randn(10, 2),
            "qrandn": qrandn(10, 2, 0.2),
            "randint": randint(-9, 15),
            "qrandint": qrandint(-21, 12, 3),
            "lograndint": lograndint(1, 10),
            "qlograndint": qlograndint(1, 10, 2),
            "choice": choice(["a", "b", "c"]),
            "func": sample_from(lambda spec: spec.config.uniform * 0.01),
            "grid": grid_search([32, 64, 128]),
        }
    )


def test_space_module_imports_nothing_from_slurm_backends_or_storage():
    sources = sorted(Path(space.__file__).parent.glob("*.py"))
    # the walk found the package's modules
    assert {"__init__.py", "domains.py", "resolve.py", "validate.py"} <= {p.name for p in sources}
    tree = ast.parse("\n".join(p.read_text() for p in sources))
    modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    modules -= {"hpctune.space.domains", "hpctune.space.resolve", "hpctune.space.validate",
                "hpctune.space.sample_from"}
    assert modules <= {
        "__future__",
        "inspect",
        "math",
        "numbers",
        "re",
        "collections.abc",
        "typing",
        "numpy",
        "hpctune.errors",
    }
