"""The allocation budget's decisions (``accounting/budget.py``) and the Tuner running with one."""

from __future__ import annotations

import time

import pytest

import hpctune as tune
from hpctune import TuneConfig, Tuner
from hpctune.accounting.budget import Budget, admissible, budget_of, committed, stop_reason
from hpctune.accounting.usage_record import read_usage
from hpctune.config import SlurmConfig
from hpctune.errors import ConfigError


def test_admission_keeps_the_worst_case_within_the_budget():
    b = Budget(10.0, "gpu")
    # 2 used, a running trial may still use 4 - 1 = 3: 5 left, room for 2 trials of 2 GPU-h
    running_left = committed(4.0, [1.0])
    assert running_left == 3.0
    assert admissible(b, 2.0, running_left, 2.0, waiting=5) == 2
    assert admissible(b, 2.0, running_left, 2.0, waiting=1) == 1
    assert admissible(b, 6.0, running_left, 2.0, waiting=5) == 0  # 1 left: less than one trial
    assert admissible(b, 0.0, 0.0, 2.5, waiting=4) == 4  # exactly 10: allowed
    assert admissible(b, 0.0, 0.0, 0.0, waiting=3) == 3  # trials without GPUs under a GPU budget
    assert committed(2.0, [3.0]) == 0.0  # past its worst case (a requeue): never negative


def test_the_experiment_stops_when_used_or_when_nothing_fits():
    b = Budget(10.0, "cpu")
    assert stop_reason(b, 10.0, running=3, waiting=0, admitted=0, worst_per_trial=1.0).startswith(
        "allocation budget of 10 CPU-hours used"
    )
    assert stop_reason(b, 9.5, running=1, waiting=2, admitted=0, worst_per_trial=1.0) is None
    assert "next trial could use up to 1 more" in stop_reason(b, 9.5, 0, 2, 0, 1.0)
    assert stop_reason(b, 9.5, 0, 0, 0, 1.0) is None  # nothing waits: it ends on its own


def test_a_budget_is_checked_before_anything_runs():
    assert budget_of(None, None) is None
    assert budget_of(5, None) == Budget(5.0, "gpu") and budget_of(None, 2.5) == Budget(2.5, "cpu")
    for bad in (0, -1, float("nan"), "5", True):
        with pytest.raises(ConfigError, match="gpu_hours_budget"):
            TuneConfig(gpu_hours_budget=bad)
    with pytest.raises(ConfigError, match="not both"):
        TuneConfig(gpu_hours_budget=1, cpu_hours_budget=1)


def sleepy(config):
    for i in range(3):
        time.sleep(1.0)
        tune.report({"i": i})


def test_a_budget_stops_the_run_and_a_larger_one_resumes_it(tmp_path):
    """Each trial's worst case: 2 CPUs x 1 min = 1/30 CPU-h. A budget of 1/30 + 0.001 admits
    one trial at a time; once it used ~3 s x 2 CPUs = 0.0017 CPU-h the next no longer fits: the
    run stops with three trials never run (PENDING), and a larger budget on restore runs them."""
    worst = 2 / 60
    tuner = Tuner(
        tune.with_resources(sleepy, {"cpu": 2}),
        param_space={"a": tune.grid_search([1, 2, 3, 4])},
        tune_config=TuneConfig(cpu_hours_budget=worst + 0.001),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="b", verbose=0),
        slurm_config=SlurmConfig(time_min=1),
        backend="local",
    )
    grid = tuner.fit()
    ran = [r for r in grid if "i" in (r.metrics or {})]
    assert len(ran) == 1
    record = read_usage(grid.experiment_path)
    assert record.budget["stopped"].startswith(f"allocation budget of {worst + 0.001:g} CPU-hours")
    # one trial of 2 CPUs for ~3 s: events see ~3 s (the time before its first event is not seen)
    assert 2 * 2.5 / 3600 < record.usage.used.cpu < 2 * 8 / 3600
    # `hpctune resume EXP --cpu-hours-budget 1` (Tuner.restore(..., cpu_hours_budget=1) on the lab)
    from hpctune.cli.main import main
    from hpctune.results.grid import ResultGrid

    assert main(["resume", grid.experiment_path, "--cpu-hours-budget", "1"]) == 0
    resumed = ResultGrid.from_path(grid.experiment_path)
    assert len([r for r in resumed if "i" in (r.metrics or {})]) == 4
    after = read_usage(grid.experiment_path)
    assert after.budget == {"limit": 1.0, "unit": "cpu", "stopped": None}
    assert len(after.usage.trials) == 4 and all(u.used.cpu > 0 for u in after.usage.trials.values())
