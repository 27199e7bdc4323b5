"""Random and grid search (Ray Tune's BasicVariantGenerator), the default searcher.

Trials come in *units*: first one per entry of ``points_to_evaluate``, then one per
remaining ``num_samples`` repetition; each unit expands into every grid_search
combination, and the random values are drawn per config. Config (unit, grid index) is
drawn from its own stream of a seeded SeedSequence, so the whole sequence is a pure
function of the seed, and ``get_state`` is just the seed and a cursor. Without ``seed=`` the
seed is drawn from numpy's global random state, so Ray's recipe (``np.random.seed(1234)``
before the Tuner) gives the same configs on every run.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hpctune.core.objective import check_state_version
from hpctune.errors import ConfigError, SearchSpaceError
from hpctune.space import (
    count_grid_variants,
    grid_variables,
    grid_variant,
    is_grid_search,
    resolve_config,
    validate_space,
)
from hpctune.tune.search.searcher import Searcher

STATE_VERSION = 1
_CONFIG_STREAM = 0  # spawn_key (0, unit, grid index): the random values of one config
_HELD_STREAM = 1  # spawn_key (1, unit): values held constant over a unit's grid


class BasicVariantGenerator(Searcher):
    """Random search plus grid search over a param_space; suggestions never depend on results.

    ``num_samples`` repeats the whole grid (-1: forever); ``points_to_evaluate`` are
    (partial) configs tried first, each counting as one of ``num_samples``. With
    ``constant_grid_search`` the random values are drawn once per repetition and kept
    for every grid combination. ``max_concurrent`` > 0 caps the trials in flight.
    """

    adaptive = False

    def __init__(
        self,
        param_space: Mapping | None = None,
        num_samples: int = 1,
        seed: int | None = None,
        max_concurrent: int = 0,
        constant_grid_search: bool = False,
        points_to_evaluate: Sequence[Mapping] | None = None,
        random_state: int | np.random.Generator | np.random.RandomState | None = None,
    ):
        super().__init__()
        if seed is not None and random_state is not None:
            raise ConfigError(
                "Pass either `seed` or `random_state` to BasicVariantGenerator, not both."
            )
        self._space = _checked_space(param_space)
        self._num_samples = _checked_num_samples(num_samples)
        self._max_concurrent = _checked_max_concurrent(max_concurrent)
        self._constant_grid_search = bool(constant_grid_search)
        self._points = _checked_points(points_to_evaluate)
        self._entropy = _entropy(random_state if seed is None else seed)
        self._unit = 0
        self._grid_index = 0
        self._suggested = 0
        self._live: set[str] = set()
        self._plans: dict[int, tuple[dict, list]] = {}
        self._held: tuple[int, dict] | None = None

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec: Any
    ) -> bool:
        """Take param_space, num_samples and seed from the Tuner; False if a different space is set."""
        if config and self._space and config != self._space:
            return False
        if not super().set_search_properties(metric, mode, config):
            return False
        if config:
            self._space = _checked_space(config)
            self._reset_caches()
        _check_point_keys(self._points, self._space)
        if spec.get("num_samples") is not None:
            self._num_samples = _checked_num_samples(spec["num_samples"])
        if spec.get("seed") is not None and self._entropy is None:
            self._entropy = _entropy(spec["seed"])
        return True

    @property
    def total_trials(self) -> int | None:
        """How many configs ``suggest`` will return in all; None when num_samples is -1."""
        if self._num_samples == -1:
            return None
        points = sum(count_grid_variants(self._plan(u)[0]) for u in range(len(self._points)))
        repetitions = max(0, self._num_samples - len(self._points))
        return points + repetitions * count_grid_variants(self._space)

    def suggest(self, trial_id: str) -> dict | None | str:
        """The next config; None while ``max_concurrent`` trials run; FINISHED when done."""
        units = self._num_units()
        if units is not None and self._unit >= units:
            return Searcher.FINISHED
        if self._max_concurrent and len(self._live) >= self._max_concurrent:
            return None
        config = self._config_at(self._unit, self._grid_index)
        self._grid_index += 1
        if self._grid_index >= math.prod(len(values) for _, values in self._plan(self._unit)[1]):
            self._unit, self._grid_index = self._unit + 1, 0
        self._suggested += 1
        self._live.add(trial_id)
        return config

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        self._live.discard(trial_id)

    def get_state(self) -> dict:
        return {
            "version": STATE_VERSION,
            "entropy": self._ensure_entropy(),
            "unit": self._unit,
            "grid_index": self._grid_index,
            "suggested": self._suggested,
            "live": sorted(self._live),
            "num_samples": self._num_samples,
            "max_concurrent": self._max_concurrent,
            "constant_grid_search": self._constant_grid_search,
            "points": self._points,
        }

    def set_state(self, state: dict) -> None:
        """Continue exactly where ``get_state`` left off (param_space comes from the Tuner again)."""
        check_state_version(state, STATE_VERSION, self)
        self._entropy = state["entropy"]
        self._unit, self._grid_index = state["unit"], state["grid_index"]
        self._suggested = state["suggested"]
        self._live = set(state["live"])
        self._num_samples = state["num_samples"]
        self._max_concurrent = state["max_concurrent"]
        self._constant_grid_search = state["constant_grid_search"]
        self._points = list(state["points"])
        self._reset_caches()

    # --- internals ---

    def _num_units(self) -> int | None:
        if self._num_samples == -1:
            return None
        return len(self._points) + max(0, self._num_samples - len(self._points))

    def _plan(self, unit: int) -> tuple[dict, list]:
        """The param_space of a unit (a point merged in, for the first ones) and its grid."""
        key = unit if unit < len(self._points) else -1
        if key not in self._plans:
            space = self._space if key == -1 else _apply_point(self._space, self._points[key])
            self._plans[key] = (space, grid_variables(space))
        return self._plans[key]

    def _config_at(self, unit: int, grid_index: int) -> dict:
        space, grid = self._plan(unit)
        if self._constant_grid_search:
            space = self._held_space(unit, space)
        tree = grid_variant(space, grid_index, grid)
        return resolve_config(tree, self._rng(_CONFIG_STREAM, unit, grid_index))

    def _held_space(self, unit: int, space: dict) -> dict:
        """The unit's space with everything that does not depend on the grid already drawn."""
        if self._held is None or self._held[0] != unit:
            held = resolve_config(space, self._rng(_HELD_STREAM, unit), partial=True)
            self._held = (unit, held)
        return self._held[1]

    def _rng(self, *key: int) -> np.random.Generator:
        sequence = np.random.SeedSequence(self._ensure_entropy(), spawn_key=key)
        return np.random.Generator(np.random.PCG64(sequence))

    def _ensure_entropy(self) -> int:
        """The root seed; if none was given, drawn once from numpy's global random state (as Ray
        samples from it: ``np.random.seed(...)`` before the Tuner makes the configs repeat), then
        kept (and saved)."""
        if self._entropy is None:
            self._entropy = int(np.random.randint(0, 2**63 - 1, dtype=np.int64))
        return self._entropy

    def _reset_caches(self) -> None:
        self._plans = {}
        self._held = None


def _checked_space(param_space: Mapping | None) -> dict:
    validate_space(param_space, dry_run=False)
    return dict(param_space or {})


def _checked_num_samples(num_samples: Any) -> int:
    if (
        isinstance(num_samples, bool)
        or not isinstance(num_samples, numbers.Integral)
        or not (num_samples >= 1 or num_samples == -1)
    ):
        raise ConfigError(
            f"The value of `num_samples` is {num_samples!r}, but must be an integer >= 1 "
            "(or -1 to sample until a stopper ends the experiment)."
        )
    return int(num_samples)


def _checked_max_concurrent(max_concurrent: Any) -> int:
    if (
        isinstance(max_concurrent, bool)
        or not isinstance(max_concurrent, numbers.Integral)
        or max_concurrent < 0
    ):
        raise ConfigError(
            f"The value of `max_concurrent` is {max_concurrent!r}, but must be an integer >= 0 "
            "(0: no limit)."
        )
    return int(max_concurrent)


def _checked_points(points: Sequence[Mapping] | None) -> list[dict]:
    points = list(points or [])
    for i, point in enumerate(points):
        if not isinstance(point, Mapping):
            raise ConfigError(
                f"points_to_evaluate[{i}] is {point!r}, but must be a dict of parameter values, "
                "e.g. points_to_evaluate=[{'lr': 0.01}]."
            )
    return [dict(point) for point in points]


def _check_point_keys(points: list[dict], space: Mapping) -> None:
    """A SearchSpaceError (before the experiment is written) for a point that names a parameter
    the search space lacks: it would be ignored in silence. A point may set a nested key of
    a constant dict, and give a whole value for any parameter."""
    if not space:
        return
    leaves: set[str] = set()

    def walk(mapping: Mapping, prefix: str) -> None:
        for key, value in mapping.items():
            if isinstance(value, Mapping) and value and not is_grid_search(value):
                walk(value, f"{prefix}{key}/")
            else:
                leaves.add(f"{prefix}{key}")

    walk(space, "")
    for i, point in enumerate(points):
        for name in _point_names(point, ""):
            parts = name.split("/")
            if not any("/".join(parts[:n]) in leaves for n in range(1, len(parts) + 1)):
                raise SearchSpaceError(
                    f"points_to_evaluate[{i}] names {name!r}, which is not in the search space "
                    f"(parameters: {sorted(leaves)}); it would be ignored. Fix: name a parameter of "
                    "param_space, or add it there.")


def _point_names(point: Mapping, prefix: str) -> list[str]:
    names = []
    for key, value in point.items():
        if isinstance(value, Mapping) and value:
            names += _point_names(value, f"{prefix}{key}/")
        else:
            names.append(f"{prefix}{key}")
    return names


def _entropy(source: Any) -> int | None:
    """A root seed from an int, a numpy Generator or RandomState (drawn from it), or None."""
    if source is None:
        return None
    if isinstance(source, np.random.Generator):
        return int(source.integers(2**63))
    if isinstance(source, np.random.RandomState):
        return int(source.randint(2**31 - 1))
    if isinstance(source, numbers.Integral) and not isinstance(source, bool) and source >= 0:
        return int(source)
    raise ConfigError(
        f"The value of `seed` is {source!r}, but must be an integer >= 0 or a numpy.random.Generator."
    )


def _apply_point(space: Mapping, point: Mapping) -> dict:
    """``space`` with a point's values deep-merged in (a point may set only some keys)."""
    merged = dict(space)
    for key, value in point.items():
        current = merged.get(key)
        if isinstance(value, Mapping) and isinstance(current, dict) and not is_grid_search(current):
            merged[key] = _apply_point(current, value)
        else:
            merged[key] = value
    return merged
