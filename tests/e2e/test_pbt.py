"""Population Based Training and HyperBand, end to end: real workers, real checkpoints.

``lr_schedule_problem`` needs a learning-rate schedule (a high rate first, a low one last):
PBT must beat the best constant rate. Every exploit is checked from the logs: the
recipient's first result after it restored the donor's checkpoint (the value stored in the
checkpoint, its writer), runs with the new config, and continues the donor's
``training_iteration``. A replay of a recorded policy runs the same schedule; HyperBand
pauses trials (checkpoint, exit, resubmit); a driver SIGKILLed in the middle of a
synchronous barrier is restored and every trial finishes once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hpctune import tune
from hpctune.results.grid import ResultGrid
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.replay import trial_results
from hpctune.storage.result_log import read_events
from hpctune.tune.schedulers import (
    HyperBandScheduler,
    PopulationBasedTraining,
    PopulationBasedTrainingReplay,
)
from tests.conftest import unique_name, wait_for
from tests.e2e import trainables

REPO_ROOT = Path(__file__).resolve().parents[2]
STEPS = 20


def fast_slurm() -> tune.SlurmConfig:
    """One squeue a second: resubmissions and cancels need room in the driver's 120 Slurm
    calls a minute, or decisions wait behind the rate limit while trials run on."""
    return tune.SlurmConfig(poll_interval_s=1.0, time_min=10)


#: initial learning rates: a spread from too high (fast, then a high penalty) to too low
POPULATIONS = {4: [0.9, 0.5, 0.1, 0.01], 8: [0.9, 0.7, 0.5, 0.3, 0.1, 0.05, 0.02, 0.01]}


def run_pbt(storage: Path, population: int, quantile: float, sleep: float) -> ResultGrid:
    scheduler = PopulationBasedTraining(
        time_attr="training_iteration", perturbation_interval=2, quantile_fraction=quantile,
        hyperparam_mutations={"lr": tune.loguniform(1e-3, 1)}, seed=1)
    return tune.Tuner(
        trainables.lr_schedule_problem,
        param_space={"lr": tune.grid_search(POPULATIONS[population]), "steps": STEPS, "sleep": sleep},
        tune_config=tune.TuneConfig(metric="score", mode="max", scheduler=scheduler,
                                    max_concurrent_trials=population),
        run_config=tune.RunConfig(name=unique_name("pbt"), storage_path=str(storage), verbose=0,
                                  slurm=fast_slurm()),
    ).fit()


def exploits(exp: ExperimentDir, trial_id: str) -> list[tuple[dict, dict | None]]:
    """(exploited event, the first result after it, or None) for each exploit of the trial."""
    found, current = [], None
    for event in read_events(exp.result_log_path(trial_id)):
        if event["event"] == "exploited":
            if current is not None:
                found.append((current, None))
            current = event
        elif event["event"] == "result" and current is not None:
            found.append((current, event["result"]))
            current = None
    return found + ([(current, None)] if current is not None else [])


def check_pbt_run(grid: ResultGrid) -> list[tuple[dict, dict | None]]:
    """Every exploit enacted right; returns them all."""
    exp = ExperimentDir(grid.experiment_path)
    assert grid.num_errors == 0 and grid.num_terminated == len(grid)
    everything = []
    for result in grid:
        iterations = [r["training_iteration"] for r in trial_results(exp.result_log_path(result.trial_id))]
        assert iterations == sorted(set(iterations)) and iterations[-1] == STEPS  # each once
        found = exploits(exp, result.trial_id)
        if not found or found[-1][1] is not None:  # else: exploited at its last step (as in Ray)
            assert result.metrics["lr"] == pytest.approx(result.config["lr"])  # the final config ran
        for event, first in found:
            everything.append((event, first))
            if first is None:
                continue  # restored at the last step: nothing left to run
            writer, donor_v = _written_by(exp, event["donor"], event["checkpoint"], event["decided_at"])
            assert first["restored_from"] == writer, (result.trial_id, event, first)
            assert first["restored_v"] == donor_v == event["result"]["v"]
            assert first["lr"] == pytest.approx(event["new_config"]["lr"])
            assert first["training_iteration"] == event["donor_iteration"] + 1
            if not _reported_before(exp, result.trial_id, event):  # totals go on from the donor's
                assert first["time_total_s"] > event["result"]["time_total_s"]
        assert all(isinstance(found, dict) for _, found in result.best_checkpoints)
    rows = exp.pbt_global_path.read_text().splitlines()
    assert len(rows) == len(everything) >= 2
    for event, _ in everything:
        assert exp.pbt_policy_path(event["trial_id"]).is_file()
    checked = [first for _, first in everything if first is not None]
    assert len(checked) >= 2
    return everything


def _reported_before(exp: ExperimentDir, trial_id: str, exploit: dict) -> bool:
    """Did the recipient itself report the donor's iteration before this exploit?"""
    for event in read_events(exp.result_log_path(trial_id)):
        if event.get("exploit_id") == exploit["exploit_id"]:
            return False
        if event["event"] == "result" and event["result"]["training_iteration"] == exploit["donor_iteration"]:
            return True
    return False


def _written_by(exp: ExperimentDir, trial_id: str, checkpoint: str, before: float) -> tuple[str, float]:
    """(writer, v) of a trial's checkpoint as it was at time ``before`` (a rerun may write it
    again later): the trial itself, or, for a copy it got from a donor, that one's writer."""
    last = [e for e in read_events(exp.result_log_path(trial_id))
            if e.get("checkpoint") == checkpoint and e["time"] <= before][-1]
    if last["event"] == "exploited":
        return _written_by(exp, last["donor"], last["checkpoint"], last["decided_at"])
    return trial_id, last["result"]["v"]


def check_beats_constant(grid: ResultGrid) -> None:
    best = grid.get_best_result().metrics["score"]
    assert best > trainables.best_constant_lr_score(STEPS), best


def check_replay(grid: ResultGrid, storage: Path) -> None:
    """A replay of the policy of an exploited trial runs the recorded schedule, step by step."""
    from hpctune.storage.pbt_files import read_policy_rows
    from hpctune.tune.schedulers.pbt_replay import policy_schedule

    exp = ExperimentDir(grid.experiment_path)
    best = max((r for r in grid if exp.pbt_policy_path(r.trial_id).is_file()),
               key=lambda r: r.metrics["score"])
    policy = exp.pbt_policy_path(best.trial_id)
    initial, schedule = policy_schedule(read_policy_rows(policy))
    replayed = tune.Tuner(
        trainables.lr_schedule_problem, param_space={"lr": 0.5, "steps": STEPS, "sleep": 0.05},
        tune_config=tune.TuneConfig(scheduler=PopulationBasedTrainingReplay(str(policy))),
        run_config=tune.RunConfig(name=unique_name("replay"), storage_path=str(storage), verbose=0,
                                  slurm=fast_slurm()),
    ).fit()
    (trial,) = list(replayed)
    lineage = trial_results(Path(trial.path) / "result.jsonl")
    expected = []
    for step in range(1, STEPS + 1):
        config = initial
        for change_at, new in schedule:
            config = new if change_at < step else config
        expected.append(config["lr"])
    assert [r["lr"] for r in lineage] == pytest.approx(expected)
    assert [r["training_iteration"] for r in lineage] == list(range(1, STEPS + 1))
    assert trial.metrics["score"] == pytest.approx(lineage[-1]["score"])


def test_pbt_on_local_processes(tmp_path, monkeypatch):
    """4 trials (2 CPUs here): exploits happen, each continues from its donor's checkpoint with
    its new config, the best beats every constant rate, and a replay runs its schedule."""
    monkeypatch.setenv("HPCTUNE_BACKEND", "local")
    grid = run_pbt(tmp_path, population=4, quantile=0.5, sleep=0.15)
    check_pbt_run(grid)
    check_beats_constant(grid)
    check_replay(grid, tmp_path)


@pytest.mark.slurm
def test_pbt_population_of_eight_on_the_lab(tmp_path, monkeypatch, slurm_lab):
    monkeypatch.setenv("HPCTUNE_BACKEND", "slurm")
    grid = run_pbt(tmp_path, population=8, quantile=0.25, sleep=0.4)
    check_pbt_run(grid)
    check_beats_constant(grid)


# -- HyperBand ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["local", pytest.param("slurm", marks=pytest.mark.slurm)])
def test_hyperband_pauses_and_resumes_trials(tmp_path, monkeypatch, backend):
    """max_t=9, eta=3: trials 0-2 run to 9 and stop; 3-7 pause at 3 (checkpoint, exit), the best
    two are resubmitted and continue from their checkpoints, the other three stop."""
    monkeypatch.setenv("HPCTUNE_BACKEND", backend)
    grid = tune.Tuner(
        trainables.lr_schedule_problem,
        param_space={"lr": tune.grid_search([0.4, 0.3, 0.2, 0.02, 0.5, 0.01, 0.3, 0.05]),
                     "steps": 30, "sleep": 0.1},
        tune_config=tune.TuneConfig(metric="score", mode="max", max_concurrent_trials=8,
                                    scheduler=HyperBandScheduler(max_t=9, reduction_factor=3)),
        run_config=tune.RunConfig(name=unique_name("hb"), storage_path=str(tmp_path), verbose=0,
                                  slurm=fast_slurm()),
    ).fit()
    exp = ExperimentDir(grid.experiment_path)
    assert grid.num_errors == 0 and grid.num_terminated == 8
    by_lr = {}
    for result in grid:
        events = read_events(exp.result_log_path(result.trial_id))
        kinds = [e["event"] for e in events if e["event"] != "heartbeat"]
        iterations = [r["training_iteration"] for r in trial_results(exp.result_log_path(result.trial_id))]
        assert iterations == list(range(1, iterations[-1] + 1))  # resumed where it paused
        by_lr.setdefault(result.trial_id, (result.config["lr"], kinds, iterations[-1]))
    second = {by_lr[t][0]: by_lr[t] for t in sorted(by_lr)[3:]}  # the bracket with a halving
    assert sum("paused" in s[1] for s in second.values()) >= 4, second
    winners, losers = [second[0.3], second[0.5]], [second[lr] for lr in (0.01, 0.02, 0.05)]
    # the top 2 of 5 by their score at 3 go on to the next milestone (6), at least one of them
    # resubmitted after its pause; the others end without running again (how far each got
    # before its pause took effect depends on how fast the driver read its results)
    assert all(s[2] >= 6 for s in winners) and any(s[1].count("start") >= 2 for s in winners), second
    assert all(s[1].count("start") == 1 and "stopped" in s[1] for s in losers), second


# -- a driver killed in the middle of a synchronous barrier -------------------------------------------
DRIVER = """
import sys
sys.path.insert(0, {repo!r})
from hpctune import tune
from hpctune.tune.schedulers import PopulationBasedTraining
from tests.e2e.trainables import lr_schedule_problem
if {restore!r}:
    tune.Tuner.restore({exp!r}, lr_schedule_problem).fit()
else:
    pbt = PopulationBasedTraining(time_attr="training_iteration", perturbation_interval=4,
                                  metric="score", mode="max", quantile_fraction=0.5, synch=True, seed=0,
                                  hyperparam_mutations={{"lr": [0.01, 0.03, 0.1, 0.3, 1.0]}})
    tune.Tuner(lr_schedule_problem,
               param_space={{"lr": tune.grid_search([0.01, 0.3, 1.0, 0.03]), "steps": 12,
                             "sleep": tune.sample_from(lambda spec: 0.1 if spec.config.lr < 0.1 else 0.3)}},
               tune_config=tune.TuneConfig(scheduler=pbt),
               run_config=tune.RunConfig(name={name!r}, storage_path={storage!r}, verbose=0,
                                         slurm=tune.SlurmConfig(poll_interval_s=0.3))).fit()
"""


def _driver(exp: Path, restore: bool) -> subprocess.Popen:
    script = exp.parent / f"driver_{int(restore)}.py"
    script.write_text(textwrap.dedent(DRIVER.format(repo=str(REPO_ROOT), restore=restore, exp=str(exp),
                                                    name=exp.name, storage=str(exp.parent))))
    return subprocess.Popen([sys.executable, str(script)], cwd=exp.parent, env=dict(os.environ),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.parametrize("backend", ["local", pytest.param("slurm", marks=pytest.mark.slurm)])
def test_a_driver_killed_at_a_synch_barrier_finishes_every_trial_once(tmp_path, monkeypatch, backend):
    monkeypatch.setenv("HPCTUNE_BACKEND", backend)
    exp = ExperimentDir(tmp_path / unique_name("synch"))
    driver = _driver(exp.root, restore=False)

    def one_paused_one_running():
        """The fast trial 0 waits at the barrier while the slow trial 1 still runs."""
        kinds = [[e["event"] for e in read_events(exp.result_log_path(t))] for t in exp.trial_ids()]
        return len(kinds) == 4 and "paused" in kinds[0] and "result" in kinds[1] and "paused" not in kinds[1]

    try:
        wait_for(one_paused_one_running, timeout=60, interval=0.05)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    time.sleep(0.5)
    restored = _driver(exp.root, restore=True)
    assert restored.wait(timeout=120) == 0, restored.stderr.read().decode()[-3000:]
    grid = ResultGrid.from_path(exp.root)
    assert len(grid) == 4 and grid.num_terminated == 4 and grid.num_errors == 0
    everything = [e["event"] for t in exp.trial_ids() for e in read_events(exp.result_log_path(t))]
    assert everything.count("exploited") >= 1 and everything.count("paused") >= 3
    for result in grid:
        events = [e for e in read_events(exp.result_log_path(result.trial_id)) if e["event"] != "heartbeat"]
        after_last_exploit = [e["event"] for e in events][
            max((i for i, e in enumerate(events) if e["event"] == "exploited"), default=-1) + 1:]
        assert after_last_exploit.count("complete") == 1 and after_last_exploit[-1] == "complete"
        iterations = [r["training_iteration"] for r in trial_results(exp.result_log_path(result.trial_id))]
        assert iterations == sorted(set(iterations)) and iterations[-1] == 12
        assert _no_overlap(events), result.trial_id


def _no_overlap(events: list[dict]) -> bool:
    """No two workers of the trial ran at once: each run's events end before the next starts."""
    runs: dict[tuple, list[float]] = {}
    for event in events:
        if event.get("pid") is not None and event["event"] != "exploited":
            runs.setdefault((event.get("slurm_job_id"), event["pid"]), []).append(event["time"])
    spans = sorted((min(t), max(t)) for t in runs.values())
    return all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))
