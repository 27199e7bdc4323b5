"""HyperOptSearch: HyperOpt's Tree-structured Parzen Estimator as an hpctune Searcher.

Each suggestion asks ``hyperopt.tpe.suggest`` for one new trial document at once, with the
running ones in HyperOpt's ``Trials`` (so a slot that frees gets a point without waiting for a
batch); each result is written into its document as it arrives (``ok`` with the loss, or
``fail``). ``hyperopt`` is imported here only: ``pip install 'hpctune[hyperopt]'``.
"""

from __future__ import annotations

import logging
import math
from functools import partial
from typing import Any

import numpy as np

from hpctune.errors import SearchSpaceError
from hpctune.space import Categorical, Float, Integer
from hpctune.tune.search.library_searcher import LibrarySearcher, install_hint

try:
    logging.getLogger("hyperopt").setLevel(logging.WARNING)
    import hyperopt as hpo
    from hyperopt.pyll import Apply
except ImportError:  # pragma: no cover - the constructor says how to install it
    hpo = Apply = None

INSTALL_HINT = install_hint("HyperOptSearch", "hyperopt", "hyperopt")


def _uniform(key: str, d: Float) -> Any:
    if d.q:
        return hpo.hp.quniform(key, d.lower, d.upper, d.q)
    return hpo.hp.uniform(key, d.lower, d.upper)


def _loguniform(key: str, d: Float | Integer) -> Any:
    low, high = math.log(d.lower), math.log(d.upper)
    q = d.q or (1 if isinstance(d, Integer) else None)
    return hpo.hp.qloguniform(key, low, high, q) if q else hpo.hp.loguniform(key, low, high)


def _normal(key: str, d: Float) -> Any:
    return hpo.hp.qnormal(key, d.mean, d.sd, d.q) if d.q else hpo.hp.normal(key, d.mean, d.sd)


def _randint(key: str, d: Integer) -> Any:
    low, high = d.inclusive_bounds()
    if d.q and d.q > 1:
        return hpo.hp.quniform(key, low, high, d.q)
    return hpo.hp.randint(key, low, high + 1)


def _choice(key: str, d: Categorical) -> Any:
    return hpo.hp.choice(key, list(d.categories))


class HyperOptSearch(LibrarySearcher):
    """HyperOpt's TPE (Ray Tune's ``HyperOptSearch``).

    Args (as Ray's):
        space: a dict of hpctune search spaces, or of HyperOpt expressions
            (``hp.uniform("x", 0, 1)``, conditional ``hp.choice`` allowed). Without it the
            Tuner's ``param_space`` is converted.
        metric, mode: the objective; may come from TuneConfig.
        points_to_evaluate: configs to run first (categories given by value).
        n_initial_points: random points before TPE models the objective (HyperOpt's
            ``n_startup_jobs``).
        random_state_seed: seed of the suggestions.
        gamma: TPE's quantile that splits good from bad points.
    """

    library = "HyperOpt"
    converters = {
        "uniform": _uniform, "quniform": _uniform,
        "loguniform": _loguniform, "qloguniform": _loguniform,
        "randn": _normal, "qrandn": _normal,
        "randint": _randint, "qrandint": _randint,
        "lograndint": _loguniform, "qlograndint": _loguniform,
        "choice": _choice,
    }

    def __init__(self, space: dict | None = None, metric: str | None = None,
                 mode: str | None = None, points_to_evaluate: list[dict] | None = None,
                 n_initial_points: int = 20, random_state_seed: int | None = None,
                 gamma: float = 0.25):
        if hpo is None:
            raise ImportError(INSTALL_HINT)
        super().__init__(space, metric, mode, points_to_evaluate)
        self._n_initial_points, self._gamma = n_initial_points, gamma
        self._seed = random_state_seed
        self._domain: Any = None  # hyperopt.Domain over the space; rebuilt, never pickled

    def _native(self, value: Any) -> bool:
        return Apply is not None and isinstance(value, Apply)

    @property
    def _algo(self) -> Any:
        return partial(hpo.tpe.suggest, n_startup_jobs=self._n_initial_points, gamma=self._gamma)

    def _setup(self) -> Any:
        """HyperOpt's Trials and the generator of the suggestions' seeds (fmin's kind)."""
        return {"trials": hpo.Trials(), "rstate": np.random.default_rng(self._seed)}

    def _hyperopt_domain(self) -> Any:
        if self._domain is None:
            self._domain = hpo.Domain(lambda config: config, self._space)
        return self._domain

    # -- ask
    def _ask(self) -> tuple[int, dict[str, Any]]:
        trials, domain = self._opt["trials"], self._hyperopt_domain()
        tids = trials.new_trial_ids(1)
        trials.refresh()
        # the seed of each ask drawn as hyperopt.fmin draws it: the same seed, the same search
        docs = self._algo(tids, domain, trials, self._opt["rstate"].integers(2**31 - 1))
        trials.insert_trial_docs(docs)
        trials.refresh()
        return docs[0]["tid"], self._evaluate(docs[0])

    def _ask_point(self, values: dict[str, Any]) -> int:
        """A NEW document holding the point, in HyperOpt's index form for choices."""
        trials = self._opt["trials"]
        tid = trials.new_trial_ids(1)[0]
        encoded = {k: self._index_of(k, v) for k, v in values.items()}
        misc = {"tid": tid, "cmd": ("domain_attachment", "FMinIter_Domain"), "workdir": None,
                "idxs": {k: [tid] for k in encoded}, "vals": {k: [v] for k, v in encoded.items()}}
        trials.insert_trial_docs(trials.new_trial_docs([tid], [None], [{"status": "new"}], [misc]))
        trials.refresh()
        return tid

    def _index_of(self, key: str, value: Any) -> Any:
        """HyperOpt stores a choice as the index of the category."""
        leaf = self._leaves[key]
        if isinstance(leaf, Categorical):
            categories = list(leaf.categories)
        elif self._native(leaf) and leaf.name == "switch":
            categories = [arg.obj for arg in leaf.pos_args[1:] if arg.name == "literal"]
        else:
            return value
        for index, category in enumerate(categories):
            if category == value:
                return index
        raise SearchSpaceError(f"HyperOptSearch: points_to_evaluate gives `{key}`={value!r}, "
                               f"which is not one of its categories {categories}.")

    def _evaluate(self, doc: dict) -> dict[str, Any]:
        """The config values of a document (HyperOpt's own evaluation of its space)."""
        domain = self._hyperopt_domain()
        config = hpo.base.spec_from_misc(doc["misc"])
        ctrl = hpo.base.Ctrl(self._opt["trials"], current_trial=doc)
        memo = domain.memo_from_config(config)
        hpo.utils.use_obj_for_literal_in_memo(domain.expr, ctrl, hpo.base.Ctrl, memo)
        return dict(hpo.pyll.rec_eval(domain.expr, memo=memo))

    # -- tell
    def _doc(self, tid: int) -> dict:
        return next(t for t in self._opt["trials"].trials if t["tid"] == tid)

    def _tell(self, handle: int, loss: float | None) -> None:
        doc = self._doc(handle)
        doc["refresh_time"] = hpo.utils.coarse_utcnow()
        if loss is None:
            doc["state"], doc["result"] = hpo.base.JOB_STATE_ERROR, {"status": hpo.STATUS_FAIL}
        else:
            doc["state"], doc["result"] = hpo.base.JOB_STATE_DONE, {
                "loss": loss, "status": hpo.STATUS_OK}
        self._opt["trials"].refresh()

    def _set_library_state(self, saved: Any) -> None:
        self._opt, self._domain = saved, None

    def __getstate__(self) -> dict:
        """Pickled without the hyperopt.Domain (it holds a lambda); rebuilt on use."""
        return {**self.__dict__, "_domain": None}
