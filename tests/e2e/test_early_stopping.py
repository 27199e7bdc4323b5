"""Early stopping enacted through Slurm: ASHA cancels tasks, stoppers and budgets end trials."""

from pathlib import Path

import pytest

from hpctune import tune
from hpctune.storage.result_log import read_events
from tests.conftest import run
from tests.e2e import replay, trainables

BACKENDS = ["local", pytest.param("slurm", marks=pytest.mark.slurm)]


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch):
    monkeypatch.setenv("HPCTUNE_BACKEND", request.param)
    return request.param


def curve_space(n: int, sleep: float) -> dict:
    """n trials whose final loss is c = trial index / n: trial 0 is the best."""
    return {"c": tune.grid_search([i / n for i in range(n)]), "a": 1.0, "b": 0.5,
            "sleep": sleep, "max_t": 9}


@pytest.mark.slurm
def test_asha_cancels_stopped_tasks_in_slurm(tmp_path, monkeypatch, slurm_lab):
    """27 trials, ASHA(max_t=9, grace_period=1, rf=3): stopped tasks end CANCELLED in Slurm."""
    monkeypatch.setenv("HPCTUNE_BACKEND", "slurm")
    scheduler = tune.schedulers.ASHAScheduler(max_t=9, grace_period=1, reduction_factor=3)
    grid = tune.Tuner(
        trainables.learning_curve,
        param_space=curve_space(27, sleep=2.0),  # slower than the 1 s grace: scancel wins
        tune_config=tune.TuneConfig(metric="loss", mode="min", scheduler=scheduler,
                                    max_concurrent_trials=8),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0,
                                  slurm=tune.SlurmConfig(poll_interval_s=0.5, stop_grace_s=1.0)),
    ).fit()
    assert grid.num_terminated == 27 and grid.num_errors == 0
    iterations = {r.config["c"]: r.metrics["training_iteration"] for r in grid}
    assert iterations[0.0] == 9, "the best trial must reach max_t"
    stopped = [r for r in grid if r.metrics["training_iteration"] < 9]
    assert len(stopped) >= 18, iterations
    jobs = {e["slurm_job_id"] for r in stopped
            for e in read_events(Path(r.path) / "result.jsonl") if e["event"] == "start"}
    if slurm_lab.accounting_enabled():
        array = next(iter(jobs)).split("_")[0]
        out = run(["sacct", "-n", "-P", "-X", "-j", array, "-o", "JobID,State"]).stdout
        states = dict(line.split("|", 1) for line in out.splitlines() if "|" in line)
        cancelled = [j for j in jobs if states.get(j, "").startswith("CANCELLED")]
        assert len(cancelled) >= len(jobs) // 2, states
    for result in stopped:  # at most the iteration in flight runs after the decision
        assert result.metrics["training_iteration"] in (1, 2, 3, 4)
    assert_replay_reproduces(grid)


def assert_replay_reproduces(grid, max_t: int = 9):
    """The logs replayed in report order into a fresh ASHA give the run's stop points."""
    fresh = tune.schedulers.ASHAScheduler(max_t=max_t, grace_period=1, reduction_factor=3)
    fresh.set_search_properties("loss", "min")
    replayed = {t: i for t, i in replay.stop_points(grid.experiment_path, fresh).items() if i < max_t}
    assert replayed == replay.run_stop_points(grid, max_t)
    assert len(replayed) >= 4


def test_asha_cooperative_stop_is_fast(backend, tmp_path):
    """With fast iterations the worker sees its STOP at the next report and exits itself."""
    scheduler = tune.schedulers.ASHAScheduler(max_t=9, grace_period=1, reduction_factor=3)
    grid = tune.Tuner(
        trainables.learning_curve,
        param_space=curve_space(9, sleep=0.1),
        tune_config=tune.TuneConfig(metric="loss", mode="min", scheduler=scheduler,
                                    max_concurrent_trials=3),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0,
                                  slurm=tune.SlurmConfig(poll_interval_s=0.5, stop_grace_s=5.0)),
    ).fit()
    assert grid.num_terminated == 9
    assert grid.get_best_result().config["c"] == 0.0
    assert grid.get_best_result().metrics["training_iteration"] == 9
    stopped = [r for r in grid if r.metrics["training_iteration"] < 9]
    assert stopped
    for result in stopped:
        kinds = [e["event"] for e in read_events(Path(result.path) / "result.jsonl")]
        assert kinds[-1] == "stopped", kinds
    assert_replay_reproduces(grid)


def test_dict_stopper_and_max_iterations(backend, tmp_path):
    grid = tune.Tuner(
        trainables.learning_curve,
        param_space={"c": tune.grid_search([0.0, 0.5]), "a": 1.0, "b": 0.5, "sleep": 0.05,
                     "max_t": 50},
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0,
                                  stop={"training_iteration": 4}),
    ).fit()
    assert grid.num_terminated == 2
    assert sorted(r.metrics["training_iteration"] for r in grid) == [4, 4]


def test_time_budget_ends_an_endless_search(backend, tmp_path):
    grid = tune.Tuner(
        trainables.learning_curve,
        param_space={"c": tune.uniform(0, 1), "a": 1.0, "b": 0.5, "sleep": 0.2, "max_t": 1000},
        tune_config=tune.TuneConfig(num_samples=-1, time_budget_s=4, max_concurrent_trials=2),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0,
                                  slurm=tune.SlurmConfig(poll_interval_s=0.5)),
    ).fit()
    assert len(grid) >= 1 and grid.num_errors == 0
    assert all(r.metrics.get("training_iteration", 0) < 1000 for r in grid)
    assert any(r.metrics.get("training_iteration", 0) >= 2 for r in grid)
    assert grid.num_terminated == len(grid)


def test_fail_fast_stops_the_experiment(backend, tmp_path):
    grid = tune.Tuner(
        trainables.fails_for_negative,
        param_space={"x": tune.grid_search([-1, 1, 2, 3])},
        tune_config=tune.TuneConfig(max_concurrent_trials=1),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0,
                                  failure_config=tune.FailureConfig(fail_fast=True)),
    ).fit()
    assert grid.num_errors == 1
    assert grid.num_terminated + grid.num_errors == len(grid)
    with pytest.raises(tune.TuneError, match="fail_fast"):
        tune.Tuner(
            trainables.fails_for_negative, param_space={"x": -1},
            run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0,
                                      failure_config=tune.FailureConfig(fail_fast="raise")),
        ).fit()
