"""Early stopping enacted through Slurm: ASHA cancels tasks, stoppers and budgets end trials."""

import time
from pathlib import Path

import pytest

from hpctune import tune
from hpctune.storage.result_log import read_events
from tests.conftest import run, wait_for
from tests.e2e import replay, trainables
from tests.e2e.state import state_of

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
    """27 trials, ASHA(max_t=9, grace_period=1, rf=3), one job per trial: stopped tasks end
    CANCELLED in Slurm (tests/e2e/test_pool.py has ASHA in a pool)."""
    monkeypatch.setenv("HPCTUNE_BACKEND", "slurm")
    scheduler = tune.schedulers.ASHAScheduler(max_t=9, grace_period=1, reduction_factor=3)
    grid = tune.Tuner(
        trainables.learning_curve,
        param_space=curve_space(27, sleep=2.0),  # slower than the 1 s grace: scancel wins
        tune_config=tune.TuneConfig(metric="loss", mode="min", scheduler=scheduler,
                                    max_concurrent_trials=8, reuse_actors=False),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0,
                                  slurm=tune.SlurmConfig(poll_interval_s=0.5, stop_grace_s=1.0)),
    ).fit()
    assert grid.num_terminated == 27 and grid.num_errors == 0
    iterations = {r.config["c"]: r.metrics["training_iteration"] for r in grid}
    assert iterations[0.0] == 9, "the best trial must reach max_t"
    stopped = [r for r in grid if r.metrics["training_iteration"] < 9]
    assert len(stopped) >= 18, iterations
    # a trial's result is the one the decision was made on: a rung (results in flight when the
    # scancel came stay in the log but do not count)
    assert {r.metrics["training_iteration"] for r in stopped} <= {1, 3}, iterations
    if slurm_lab.accounting_enabled():
        job_of = {r.trial_id: start_job(r) for r in grid}
        array = next(iter(job_of.values())).split("_")[0]
        expected = {job_of[r.trial_id]: "CANCELLED" if r in stopped else "COMPLETED" for r in grid}

        def recorded() -> dict[str, str] | None:  # slurmdbd records the last ends a moment later
            out = run(["sacct", "-n", "-P", "-X", "-j", array, "-o", "JobID,State"], check=True).stdout
            states = {job: state.split()[0] for job, state in
                      (line.split("|", 1) for line in out.splitlines() if "|" in line)}
            ended = all(states.get(job) in ("CANCELLED", "COMPLETED", "FAILED") for job in expected)
            return states if ended else None

        states = wait_for(recorded, timeout=30, interval=1, what="sacct records of every task")
        # every stop is a scancel at once; a trial at max_t is also told STOP (ASHA's
        # stop_last_trials), so its job may be cancelled as it finishes or complete first
        for r in grid:
            job = job_of[r.trial_id]
            assert states[job] in ((expected[job],) if r in stopped else ("COMPLETED", "CANCELLED")), (job, states)
    assert_replay_reproduces(grid)


def start_job(result) -> str:
    """The Slurm job id of the trial's (only) run."""
    (job,) = {e["slurm_job_id"] for e in read_events(Path(result.path) / "result.jsonl")
              if e["event"] == "start"}
    return job


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
    assert 0.0 not in {r.config["c"] for r in stopped}
    assert len(stopped) >= 1, "ASHA stopped nothing"
    for result in stopped:  # each ended by the worker itself, at the rung it was judged at
        log = read_events(Path(result.path) / "result.jsonl")
        # the worker's last word (the driver's stop_decided may come after a fast trial's end)
        end = [e["event"] for e in log if e["event"] not in ("result", "stop_decided")][-1:]
        if end == ["complete"]:  # the 0.8 s left ran out before the STOP landed
            assert max(e["result"]["training_iteration"] for e in log if e["event"] == "result") == 9
        else:
            assert end == ["stopped"] and log[-1]["reason"] == "stopped by scheduler", log
        assert result.metrics["training_iteration"] in (1, 3)
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
    """time_budget_s=4 on an endless search of 200-s trials: the run ends after 4 s (not
    before); the trials that ran are stopped for the budget, those still queued in the first
    array (4 x max_concurrent_trials = 8 trials) never ran and stay PENDING."""
    started = time.monotonic()
    grid = tune.Tuner(
        trainables.learning_curve,
        param_space={"c": tune.uniform(0, 1), "a": 1.0, "b": 0.5, "sleep": 0.2, "max_t": 1000},
        tune_config=tune.TuneConfig(num_samples=-1, time_budget_s=4, max_concurrent_trials=2),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0,
                                  slurm=tune.SlurmConfig(poll_interval_s=0.5)),
    ).fit()
    elapsed = time.monotonic() - started
    assert 4 <= elapsed < 120, elapsed
    assert len(grid) == 8 and grid.num_errors == 0
    state = {t["trial_id"]: t for t in snapshot(grid)}
    ran = [r for r in grid if r.metrics.get("training_iteration")]
    assert 1 <= len(ran) <= 2, [r.metrics for r in grid]
    assert any(r.metrics["training_iteration"] >= 2 for r in ran)
    for result in grid:
        trial = state[result.trial_id]
        if result in ran:
            assert result.status == "TERMINATED" and result.metrics["training_iteration"] < 1000
            assert trial["stop_reason"] == "time budget of 4.0 s spent"
        else:
            assert result.status == "PENDING" and trial["num_results"] == 0 and not trial["job_id"]


def snapshot(grid) -> list[dict]:
    """The trials as the driver's final snapshot (state.json) has them."""
    return state_of(grid.experiment_path)["trials"]


def fails_or_runs_long(config):
    """x < 0 raises at once; the others report every 0.1 s for a minute."""
    tune.report({"value": config["x"]})
    if config["x"] < 0:
        raise ValueError(f"negative x={config['x']} is not allowed")
    for _ in range(600):
        time.sleep(0.1)
        tune.report({"value": config["x"]})


def test_fail_fast_stops_the_experiment(backend, tmp_path):
    """fail_fast: x=-1 fails at once; every other trial is stopped (the ones running, for
    fail_fast) or never runs (PENDING): none runs its minute to the end."""
    grid = tune.Tuner(
        fails_or_runs_long,
        param_space={"x": tune.grid_search([-1, 1, 2, 3])},
        tune_config=tune.TuneConfig(max_concurrent_trials=4),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0,
                                  slurm=tune.SlurmConfig(poll_interval_s=0.5),
                                  failure_config=tune.FailureConfig(fail_fast=True)),
    ).fit()
    assert len(grid) == 4 and grid.num_errors == 1
    (failed,) = [r for r in grid if r.error is not None]
    assert failed.config["x"] == -1 and "negative x=-1" in str(failed.error)
    state = {t["trial_id"]: t for t in snapshot(grid)}
    for result in grid:
        if result is failed:
            continue
        kinds = [e["event"] for e in read_events(Path(result.path) / "result.jsonl")]
        assert "complete" not in kinds, (result.config, kinds)
        if result.status == "TERMINATED":
            assert "fail_fast" in state[result.trial_id]["stop_reason"]
            assert result.metrics.get("training_iteration", 0) < 601
        else:
            assert result.status == "PENDING" and state[result.trial_id]["num_results"] == 0
    with pytest.raises(tune.TuneError, match="fail_fast"):
        tune.Tuner(
            trainables.fails_for_negative, param_space={"x": -1},
            run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0,
                                      failure_config=tune.FailureConfig(fail_fast="raise")),
        ).fit()
