"""The benchmarks' Ray columns run on Ray Tune as it is: each bench's Ray path gets as many CPUs
as hpctune gets slots (``ray.init(num_cpus=...)``: without it Ray takes every core of the
machine, 2 in CI, against hpctune's 8 slots), and its trainables use Ray Tune's own names
(``ray.tune.report``, ``ray.tune.get_checkpoint``, ``ray.tune.Checkpoint``), not ``ray.train``'s,
which Ray refuses inside a Tune trainable.

Ray is not installed here (nor in the test extra): a fake ``ray`` with only Ray Tune's public
names runs each bench's Ray path, records what it was asked for and runs its trainables; any
other name fails as it would on an import of a name Ray does not have."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import shutil
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT

BENCH = REPO_ROOT / "bench"


class FakeCheckpoint:
    def __init__(self, path: str):
        self.path = path

    @classmethod
    def from_directory(cls, path: str) -> FakeCheckpoint:
        return cls(path)

    @contextlib.contextmanager
    def as_directory(self):
        yield self.path


class FakeRay:
    """``ray``, ``ray.tune``, ``ray.tune.schedulers`` and ``ray.train`` as modules, recording."""

    def __init__(self):
        self.inits: list[dict[str, Any]] = []
        self.tuners: list[dict[str, Any]] = []
        self.reports: list[dict[str, Any]] = []
        self.checkpoint: FakeCheckpoint | None = None
        self.kept = Path(tempfile.mkdtemp(prefix="fake-ray-"))
        ray = types.ModuleType("ray")
        ray.init = lambda **kwargs: self.inits.append(kwargs)
        ray.shutdown = lambda: None
        tune = types.ModuleType("ray.tune")
        tune.Tuner = self._tuner
        tune.TuneConfig = lambda **kwargs: dict(kwargs)
        tune.RunConfig = lambda **kwargs: dict(kwargs)
        tune.with_resources = lambda trainable, resources: trainable
        tune.grid_search = lambda values: {"grid_search": list(values)}
        tune.loguniform = tune.uniform = lambda low, high: ("domain", low, high)
        tune.report = self._report
        tune.get_checkpoint = lambda: self.checkpoint
        tune.Checkpoint = FakeCheckpoint
        schedulers = types.ModuleType("ray.tune.schedulers")
        schedulers.PopulationBasedTraining = lambda **kwargs: ("PBT", kwargs)
        schedulers.ASHAScheduler = lambda **kwargs: ("ASHA", kwargs)
        tune.schedulers = schedulers
        train = types.ModuleType("ray.train")
        train.get_checkpoint = train.report = self._train_inside_tune
        train.Checkpoint = FakeCheckpoint
        ray.tune, ray.train = tune, train
        self.modules = {"ray": ray, "ray.tune": tune, "ray.tune.schedulers": schedulers, "ray.train": train}

    def _tuner(self, trainable, param_space=None, tune_config=None, run_config=None):
        self.tuners.append({"trainable": trainable, "tune_config": tune_config or {}, "run_config": run_config})
        best = types.SimpleNamespace(metrics={"score": 0.5})
        grid = types.SimpleNamespace(get_best_result=lambda: best, num_errors=0)
        return types.SimpleNamespace(fit=lambda: grid)

    def _report(self, metrics: dict, *, checkpoint: FakeCheckpoint | None = None) -> None:
        self.reports.append(dict(metrics))
        if checkpoint is not None:  # Ray persists it: the trainable removes its own directory
            kept = self.kept / f"checkpoint_{len(self.reports):06d}"
            shutil.copytree(checkpoint.path, kept)
            self.checkpoint = FakeCheckpoint(str(kept))

    @staticmethod
    def _train_inside_tune(*args, **kwargs):
        raise RuntimeError("ray.train.get_checkpoint/report inside a Tune trainable: use ray.tune's")


@pytest.fixture
def fake_ray(monkeypatch):
    fake = FakeRay()
    for name, module in fake.modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.syspath_prepend(str(BENCH))  # the benches import their _common
    yield fake
    shutil.rmtree(fake.kept, ignore_errors=True)


def load_bench(name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pbt_gives_ray_the_eight_slots_hpctune_gets(fake_ray, monkeypatch):
    pbt = load_bench("pbt")
    args = argparse.Namespace(population=8, steps=2, sleep=0.0, interval=1)
    asked: list[int] = []

    class Stop(Exception):
        pass

    def hpctune_tuner(*_, tune_config, **__):
        asked.append(tune_config.max_concurrent_trials)
        raise Stop

    monkeypatch.setattr(pbt.tune, "Tuner", hpctune_tuner)
    with pytest.raises(Stop):
        pbt.run_hpctune(args)
    result = pbt.run_ray(args)
    assert (sorted(result), result["best_score"], result["errors"]) == (["best_score", "errors", "wall_s"], 0.5, 0)
    assert asked == [8]
    assert [i["num_cpus"] for i in fake_ray.inits] == [8]
    assert fake_ray.tuners[0]["tune_config"]["max_concurrent_trials"] == 8


def test_pbts_ray_trainable_reports_and_restores_with_ray_tunes_names(fake_ray):
    pbt = load_bench("pbt")
    pbt._ray_trainable({"lr": 0.5, "steps": 2, "sleep": 0.0})
    assert [r["score"] for r in fake_ray.reports] == [0.25, 0.5]  # v = 0.5, 0.75 minus 0.5 * lr
    pbt._ray_trainable({"lr": 0.5, "steps": 3, "sleep": 0.0})  # resumes after step 2
    assert [r["score"] for r in fake_ray.reports] == [0.25, 0.5, 0.625]


@pytest.mark.parametrize(("workload", "slots"), [("overhead", 8), ("asha", 8), ("throughput", 4)])
def test_compare_ray_gives_ray_the_slots_hpctune_gets(fake_ray, workload, slots):
    """Quick sizes: overhead and ASHA on 8 slots; throughput runs every trial at once (4)."""
    compare = load_bench("compare_ray")
    size = compare.sizes(True)[workload]
    from hpctune import tune

    _, hpctune_kwargs, _ = compare.workload(workload, size, tune)
    compare.run_ray(workload, size)
    assert hpctune_kwargs["max_concurrent_trials"] == slots
    assert [i["num_cpus"] for i in fake_ray.inits] == [slots]
    assert fake_ray.tuners[0]["tune_config"]["max_concurrent_trials"] == slots


def test_compare_rays_trainables_use_ray_tunes_names(fake_ray):
    compare = load_bench("compare_ray")
    compare.ray_sleep_once({"sleep": 0.0})
    compare.ray_reporter({"rate": 100, "seconds": 0.03})
    compare.ray_curve({"a": 1.0, "b": 0.0, "c": 0.0, "iter_s": 0.0})
    assert fake_ray.reports[0] == {"slept": 0.0}
    assert [r for r in fake_ray.reports[1:4]] == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert fake_ray.reports[4:] == [{"loss": 1.0}] * 27
