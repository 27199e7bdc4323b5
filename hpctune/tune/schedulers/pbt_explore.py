"""PBT's explore step, as Ray Tune's ``_explore``: perturb a donor's config into a new one.

For each key of ``hyperparam_mutations``:

* a list (or tuple) of values: with ``resample_probability`` (or when the current value is
  not in the list) draw any value of the list, otherwise step to a neighbour (left or
  right, staying put at the ends);
* a search-space object (``tune.uniform``...) or a function: with ``resample_probability``
  draw a new value from it, otherwise multiply the current value by one of
  ``perturbation_factors`` (an int stays an int);
* a dict: the same, one level down.

``custom_explore_fn(config)`` then sees (and returns) the result. Every random draw comes
from the injected ``numpy.random.Generator``, so a seeded scheduler explores the same way
every time.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from hpctune.errors import ConfigError
from hpctune.space import Domain, is_grid_search
from hpctune.space.sample_from import Function


def check_mutations(mutations: Mapping[str, Any], where: str = "hyperparam_mutations") -> None:
    """Refuse values PBT cannot mutate, naming the key and what to use instead."""
    for key, value in mutations.items():
        if isinstance(value, Function):
            raise ConfigError(
                f"The value of `{where}[{key!r}]` is a tune.sample_from(...), which PBT cannot "
                "perturb: use a list of values, tune.uniform/loguniform/choice/randint, or a "
                "function without arguments.")
        if is_grid_search(value):
            raise ConfigError(
                f"The value of `{where}[{key!r}]` is a tune.grid_search(...), which PBT cannot "
                "mutate (it would put {'grid_search': ...} in the config): give the values as a "
                f"list, `{key!r}: {value['grid_search']!r}`, or tune.choice(...).")
        if isinstance(value, Mapping):
            check_mutations(value, f"{where}[{key!r}]")
        elif not isinstance(value, (list, tuple, Domain)) and not callable(value):
            raise ConfigError(
                f"The value of `{where}[{key!r}]` is {value!r} (a {type(value).__name__}), but "
                "must be a list of values, a search-space object (tune.uniform(0, 1)), a "
                "function without arguments, or a dict of those.")
        elif isinstance(value, (list, tuple)) and not value:
            raise ConfigError(f"The value of `{where}[{key!r}]` is an empty list: give the values "
                              "PBT may choose from.")


def sample(space: Any, rng: np.random.Generator) -> Any:
    """A fresh value of one mutation entry (a dict: a dict of fresh values)."""
    if isinstance(space, Mapping):
        return {k: sample(v, rng) for k, v in space.items()}
    if isinstance(space, (list, tuple)):
        return space[int(rng.integers(len(space)))]
    if isinstance(space, Domain):
        return space.sample(rng)
    return space()


def fill_config(config: Mapping[str, Any], mutations: Mapping[str, Any],
                rng: np.random.Generator) -> dict[str, Any]:
    """``config`` with the mutated keys it lacks sampled from ``mutations`` (Ray fills them
    when a trial is added, so a search space may leave them out)."""
    filled = dict(config)
    for key, space in mutations.items():
        if key not in filled:
            filled[key] = sample(space, rng)
        elif isinstance(space, Mapping) and isinstance(filled[key], Mapping):
            filled[key] = fill_config(filled[key], space, rng)
    return filled


def explore(config: Mapping[str, Any], mutations: Mapping[str, Any], resample_probability: float,
            perturbation_factors: Sequence[float], custom_explore_fn: Callable | None,
            rng: np.random.Generator) -> tuple[dict[str, Any], dict[str, Any]]:
    """(new config, what was done to each key: "resample", "shift left", "* 1.2", ...)."""
    new_config = copy.deepcopy(dict(config))
    operations: dict[str, Any] = {}
    for key, space in mutations.items():
        if key not in config or (isinstance(space, Mapping) and not isinstance(config[key], Mapping)):
            new_config[key], operations[key] = sample(space, rng), "resample"
        elif isinstance(space, Mapping):
            new_config[key], operations[key] = explore(config[key], space, resample_probability,
                                                       perturbation_factors, None, rng)
        elif isinstance(space, (list, tuple)):
            new_config[key], operations[key] = _explore_list(config[key], space, resample_probability, rng)
        else:
            new_config[key], operations[key] = _explore_number(
                config[key], space, resample_probability, perturbation_factors, rng)
    if custom_explore_fn is not None:
        new_config = custom_explore_fn(new_config)
        if not isinstance(new_config, Mapping):
            raise ConfigError(
                f"custom_explore_fn returned {new_config!r}, but must return the config (a dict): "
                "end it with `return config`.")
        new_config = dict(new_config)
    return new_config, operations


def _explore_list(value: Any, values: Sequence, resample_probability: float,
                  rng: np.random.Generator) -> tuple[Any, str]:
    if rng.random() < resample_probability or not _contains(values, value):
        return values[int(rng.integers(len(values)))], "resample"
    shift = -1 if int(rng.integers(2)) == 0 else 1
    old = _index(values, value)
    new = min(max(old + shift, 0), len(values) - 1)
    label = f"shift {'left' if shift < 0 else 'right'}{' (noop)' if new == old else ''}"
    return values[new], label


def _explore_number(value: Any, space: Any, resample_probability: float,
                    perturbation_factors: Sequence[float], rng: np.random.Generator) -> tuple[Any, str]:
    if rng.random() < resample_probability:
        new, label = (space.sample(rng) if isinstance(space, Domain) else space()), "resample"
    else:
        factor = perturbation_factors[int(rng.integers(len(perturbation_factors)))]
        new, label = value * factor, f"* {factor}"
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        new = int(new)  # a batch size stays a whole number
    return new, label


def _contains(values: Sequence, value: Any) -> bool:
    try:
        return any(v == value for v in values)
    except (TypeError, ValueError):  # an array compared with ==
        return False


def _index(values: Sequence, value: Any) -> int:
    return next(i for i, v in enumerate(values) if v == value)


def mutated_params(config: Mapping[str, Any], mutations: Mapping[str, Any]) -> dict[str, Any]:
    """Only the keys of ``config`` that ``mutations`` names (nested dicts filtered too)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key not in mutations:
            continue
        space = mutations[key]
        nested = isinstance(value, Mapping) and isinstance(space, Mapping)
        out[key] = mutated_params(value, space) if nested else value
    return out


def perturbed_tag(orig_tag: str, config: Mapping[str, Any], mutations: Mapping[str, Any]) -> str:
    """Ray's tag of an exploited trial: ``3_lr=0.01@perturbed[lr=0.012,momentum=0.9]``."""
    parts = [f"{key}={_short(value)}" for key, value in _flat(mutated_params(config, mutations))]
    return f"{orig_tag}@perturbed[{','.join(parts)}]"


def _flat(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key, value in params.items():
        name = f"{prefix}{key}"
        items += _flat(value, f"{name}/") if isinstance(value, Mapping) else [(name, value)]
    return items


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("/", "_").replace(",", "_")
