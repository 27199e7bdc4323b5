"""LibrarySearcher: the bookkeeping every searcher over a library's ask/tell interface shares.

An adapter (HyperOpt, BayesOpt, Nevergrad, ZOOpt, BOHB) says how to convert each primitive
(``converters``, through ``space_conversion``), how to build its optimizer (``_setup``), ask
for a point (``_ask``, ``_ask_point``) and tell a loss (``_tell``). This class does the
rest the same way for all: metric and mode, the space from the constructor or from the
Tuner's ``param_space``, points_to_evaluate first, one ask per free slot (no batch
barrier), results told as they arrive, failed trials told as failures, and the state that
the driver snapshots, so that a restored driver continues the same search.
"""

from __future__ import annotations

import copy
import logging
import pickle
from typing import Any

import cloudpickle

from hpctune.core.metrics import flatten
from hpctune.core.objective import check_state_version, finite_or_none
from hpctune.errors import ConfigError, SearchSpaceError
from hpctune.tune.search.searcher import Searcher
from hpctune.tune.search.space_conversion import (
    Converter,
    contains_searchable,
    convert_space,
    fill,
    merge,
    searchable_leaves,
    snap,
)

logger = logging.getLogger(__name__)

_STATE_VERSION = 1


def install_hint(searcher: str, package: str, extra: str) -> str:
    """The ImportError message for a searcher whose library is missing."""
    return (f"{searcher} needs the {package} package, which is not installed. "
            f"Fix: pip install 'hpctune[{extra}]'")


class LibrarySearcher(Searcher):
    """A searcher that asks a library for points and tells it losses (to minimise)."""

    #: the library's name in messages ("HyperOpt")
    library = ""
    #: primitive name -> (key, domain) -> the library's form; see space_conversion
    converters: dict[str, Converter] = {}
    #: primitive name -> what to do instead, for primitives the library lacks
    fixes: dict[str, str] = {}

    def __init__(self, space: dict | None, metric: str | None, mode: str | None,
                 points_to_evaluate: list[dict] | None = None):
        super().__init__(metric, mode)
        if points_to_evaluate is not None and not isinstance(points_to_evaluate, (list, tuple)):
            raise ConfigError(f"`points_to_evaluate` must be a list of config dicts, got "
                              f"{points_to_evaluate!r}.")
        self._points = [copy.deepcopy(dict(p)) for p in points_to_evaluate or []]
        self._leaves: dict[str, Any] = {}  # "a/b" -> the domain (or library object) in the space
        self._space: dict[str, Any] = {}  # "a/b" -> the library's form
        self._template: dict = {}
        self._extra: dict = {}  # constants of a param_space without search spaces
        self._opt: Any = None  # the library's optimizer, built at the first suggestion
        self._live: dict[str, Any] = {}  # trial_id -> the library's handle of its point
        self._finished: set[str] = set()
        if space:
            self._set_space(space)

    # -- the adapter's part ----------------------------------------------------------------------
    def _native(self, value: Any) -> bool:
        """Whether a leaf is already in the library's own format."""
        return False

    def _setup(self) -> Any:
        """The library's optimizer over ``self._space`` (a metric and mode are known)."""
        raise NotImplementedError

    def _ask(self) -> tuple[Any, dict[str, Any]] | None | str:
        """(handle, {"a/b": value}) for a new point; None to wait; FINISHED when done."""
        raise NotImplementedError

    def _ask_point(self, values: dict[str, Any]) -> Any:
        """The handle of a point given by the user (points_to_evaluate); None to wait."""
        raise NotImplementedError

    def _tell(self, handle: Any, loss: float | None) -> None:
        """Tell the loss (smaller is better) of an asked point; None: the trial failed."""
        raise NotImplementedError

    def _tell_stopped(self, handle: Any, loss: float | None) -> None:
        """A scheduler stopped the trial early: by default its last result counts (Ray's way)."""
        self._tell(handle, loss)

    # -- the space ----------------------------------------------------------------------------------
    @property
    def _name(self) -> str:
        return type(self).__name__

    def _set_space(self, space: Any) -> None:
        if not isinstance(space, dict):
            raise ConfigError(f"{self._name}: `space` must be a dict, got {type(space).__name__}.")
        if contains_searchable(space, self._native):
            self._space = self._convert(space)
            self._leaves, self._template = searchable_leaves(space, self._name, self._native), space
        else:
            self._extra = space

    def _convert(self, space: dict) -> dict[str, Any]:
        return convert_space(space, self._name, self.library, self.converters,
                             native=self._native, fixes=self.fixes)

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict,
                              **spec: Any) -> bool:
        """Adopt the Tuner's metric, mode and param_space; False if they clash with ours."""
        if config and contains_searchable(config, self._native):
            if self._leaves and _describe(self._leaves) != _describe(
                    searchable_leaves(config, self._name, self._native)):
                return False
            if not super().set_search_properties(metric, mode, config, **spec):
                return False
            if not self._leaves:
                self._set_space(config)
            return True
        if not super().set_search_properties(metric, mode, config, **spec):
            return False
        if config:
            self._extra = merge(self._extra, config)
        return True

    def _ready(self) -> None:
        if not self._space:
            raise ConfigError(
                f"{self._name} has no search space: pass {self._name}(space=...) or "
                "Tuner(param_space={...}) with search spaces such as tune.uniform(0, 1).")
        self._check_ready()
        if self._opt is None:
            self._opt = self._setup()

    # -- ask ------------------------------------------------------------------------------------------
    def suggest(self, trial_id: str) -> dict | None | str:
        """The next points_to_evaluate, else a new point from the library, at once."""
        self._ready()
        if self._points:
            values = self._point_values(self._points[0])
            handle = self._ask_point(values)
            if handle is None:
                return None  # the library waits: the point is asked again
            self._points.pop(0)
        else:
            asked = self._ask()
            if asked is None or asked == Searcher.FINISHED:
                return asked
            handle, values = asked
        self._live[trial_id] = handle
        return self._config(values)

    def _point_values(self, point: dict) -> dict[str, Any]:
        """{"a/b": value} of a points_to_evaluate entry: every parameter, nothing unknown."""
        flat = flatten(point)
        known = set(flatten(self._template)) | set(self._leaves)
        unknown = sorted(k for k in flat if k not in known)
        missing = sorted(k for k in self._leaves if k not in flat)
        if unknown or missing:
            raise SearchSpaceError(
                f"{self._name}: points_to_evaluate entry {point!r} "
                + (f"names {unknown}, not in the search space" if unknown else
                   f"lacks {missing}") + f"; give each of {sorted(self._leaves)}.")
        return {k: flat[k] for k in self._leaves}

    def _config(self, values: dict[str, Any]) -> dict:
        values = {k: snap(self._leaves[k], v) for k, v in values.items()}
        config = fill(self._template, values)
        return merge(self._extra, config) if self._extra else config

    # -- tell -----------------------------------------------------------------------------------------
    def _loss(self, trial_id: str, result: dict | None) -> float | None:
        value = finite_or_none((result or {}).get(self._metric))
        if value is None:
            logger.warning("%s: trial %s ended without a finite value for metric %r (result "
                           "keys: %s); told to %s as failed.", self._name, trial_id,
                           self._metric, sorted(result or {}), self.library)
            return None
        return value if self._mode == "min" else -value

    def _pop_live(self, trial_id: str) -> Any:
        if trial_id not in self._live:
            if trial_id not in self._finished:
                logger.warning("%s: trial %s was not suggested here; ignored.", self._name, trial_id)
            return None
        self._finished.add(trial_id)
        return self._live.pop(trial_id)

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        """Tell the library the trial's loss, or that it failed."""
        if trial_id in self._live:
            loss = None if error else self._loss(trial_id, result)
            self._tell(self._pop_live(trial_id), loss)
        else:
            self._pop_live(trial_id)

    def on_trial_stopped_early(self, trial_id: str, result: dict | None) -> None:
        if trial_id in self._live:
            loss = self._loss(trial_id, result)
            self._tell_stopped(self._pop_live(trial_id), loss)
        else:
            self._pop_live(trial_id)

    # -- state ----------------------------------------------------------------------------------------
    def _library_state(self) -> Any:
        """What of the library to save (pickled together with the running trials' handles)."""
        return self._opt

    def _set_library_state(self, saved: Any) -> None:
        self._opt = saved

    def get_state(self) -> dict:
        """The search so far: the library's state, the running trials, the points left."""
        return {
            "version": _STATE_VERSION,
            "metric": self._metric, "mode": self._mode,
            "extra": self._extra, "points": copy.deepcopy(self._points),
            "finished": set(self._finished),
            # one pickle, so that handles keep pointing into the library's objects (cloudpickle:
            # some libraries hold lambdas)
            "library": cloudpickle.dumps((self._template, self._leaves, self._space,
                                     self._library_state(), self._live)),
        }

    def set_state(self, state: dict) -> None:
        check_state_version(state, _STATE_VERSION, self._name)
        template, leaves, space, library, live = pickle.loads(state["library"])
        if self._leaves and _describe(self._leaves) != _describe(leaves):
            raise ConfigError(f"The saved {self._name} searched another space: create it with "
                              "the same space as before, or without one, to restore.")
        self._metric, self._mode = state["metric"], state["mode"]
        self._extra, self._points = state["extra"], copy.deepcopy(state["points"])
        self._finished = set(state["finished"])
        self._template, self._leaves, self._space, self._live = template, leaves, space, live
        self._set_library_state(library)


def _describe(leaves: dict[str, Any]) -> dict[str, str]:
    """A comparable form of a space's leaves (domains have no equality of their own)."""
    return {key: repr(leaf) for key, leaf in leaves.items()}
