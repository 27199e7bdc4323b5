"""The Tuner's searcher: num_samples reaches the default (grid/random) searcher and caps others."""

from __future__ import annotations

import itertools

import pytest

from hpctune import tune
from hpctune.tune.search.basic_variant import BasicVariantGenerator
from hpctune.tune.search.searcher import Searcher
from hpctune.tune.tuner import Tuner
from tests.unit.fake_backend import FakeBackend


def objective(config):
    tune.report({"loss": config["x"]})


def drain(searcher: Searcher, limit: int = 1000) -> list[dict]:
    configs = []
    for i in itertools.count():
        config = searcher.suggest(f"t{i}")
        if config == Searcher.FINISHED or i >= limit:
            return configs
        configs.append(config)
        searcher.on_trial_complete(f"t{i}", {"loss": 0.0})


class Counting(Searcher):
    """A model-based searcher that would suggest forever."""

    def __init__(self):
        super().__init__()
        self.n = 0

    def suggest(self, trial_id):
        self.n += 1
        return {"x": self.n}


@pytest.mark.parametrize(("num_samples", "expected"), [(1, [1, 2]), (3, [1, 1, 1, 2, 2, 2])])
def test_num_samples_repeats_the_grid_of_the_default_searcher(num_samples, expected):
    tuner = Tuner(objective, param_space={"x": tune.grid_search([1, 2])},
                  tune_config=tune.TuneConfig(num_samples=num_samples))
    assert sorted(c["x"] for c in drain(tuner._searcher())) == expected


def test_num_samples_reaches_a_basic_variant_generator_given_as_search_alg():
    tuner = Tuner(objective, param_space={"x": tune.grid_search([1, 2])},
                  tune_config=tune.TuneConfig(num_samples=2, search_alg=BasicVariantGenerator()))
    assert sorted(c["x"] for c in drain(tuner._searcher())) == [1, 1, 2, 2]


def test_num_samples_caps_a_model_based_searcher():
    tuner = Tuner(objective, param_space={"x": tune.uniform(0, 1)},
                  tune_config=tune.TuneConfig(num_samples=4, search_alg=Counting()))
    assert [c["x"] for c in drain(tuner._searcher())] == [1, 2, 3, 4]


def test_fit_runs_num_samples_times_the_grid(tmp_path, monkeypatch):
    """Through fit() (over the in-process fake backend): 3 samples of a 2-point grid are 6
    trials, launched as one array, each run once."""
    backends = []

    def fake_backend(self, exp):
        backends.append(FakeBackend(exp, autorun=lambda job: job.start().report(loss=1.0).complete()))
        return backends[-1]

    monkeypatch.setattr(Tuner, "_backend", fake_backend)
    grid = Tuner(objective, param_space={"x": tune.grid_search([1, 2])},
                 tune_config=tune.TuneConfig(num_samples=3),
                 run_config=tune.RunConfig(storage_path=str(tmp_path), name="six", verbose=0)).fit()
    assert len(grid) == 6 and grid.num_terminated == 6
    assert sorted(r.config["x"] for r in grid) == [1, 1, 1, 2, 2, 2]
    (backend,) = backends
    assert [len(launch.trial_ids) for launch in backend.launches] == [6]
    assert backend.cancels == [] and backend.closed
