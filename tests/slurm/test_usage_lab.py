"""The allocation used, on the Slurm lab (issue 27): our figures against ``sacct``'s own numbers,
the pool's per-trial shares, and a GPU-hour budget that stops an experiment and a larger one
that resumes it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hpctune import tune
from hpctune.accounting.meter import measure
from hpctune.accounting.usage import EVENTS, POOL, SACCT, event_spans, tres_gpus
from hpctune.accounting.usage_record import read_usage
from hpctune.backends.slurm_commands import SlurmCommands
from hpctune.cli.common import load_trials
from hpctune.core.ids import array_of, is_slurm_job
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.pool_queue import PoolQueue
from hpctune.storage.result_log import read_events
from tests.conftest import run, unique_name, wait_for

pytestmark = pytest.mark.slurm


@pytest.fixture
def accounting_on(slurm_lab):
    """The lab with accounting (slurmdbd) on for the test, whatever state it was in: never a skip."""
    with slurm_lab.accounting(True):
        yield


@pytest.fixture(autouse=True)
def on_slurm(monkeypatch):
    monkeypatch.setenv("HPCTUNE_BACKEND", "slurm")


def sleeper(config):
    time.sleep(config["s"])
    tune.report({"slept": config["s"]})


def job_arrays(exp: Path) -> list[str]:
    """The Slurm arrays of the experiment: the trials' jobs and the pool's arrays."""
    found = set()
    for trial_dir in (exp / "trials").iterdir():
        for event in read_events(trial_dir / "result.jsonl"):
            if is_slurm_job(event.get("slurm_job_id")):
                found.add(array_of(event["slurm_job_id"]))
    queue = PoolQueue(exp)
    for uid in queue.array_uids():
        found.add(queue.array_paths(uid)[2].read_text().strip())
    return sorted(found)


def sacct_own(arrays: list[str], gpus_per_job: float = 0) -> dict[str, float]:
    """Slurm's own figures, once slurmdbd has every job's end: CPU-hours (``CPUTimeRAW``) and
    GPU-hours (``ElapsedRaw`` x the allocated ``gres/gpu``; the lab's AccountingStorageTRES
    records no GPUs, as Slurm's default, so x ``gpus_per_job`` then), over every incarnation."""

    def final():
        out = run(
            [
                "sacct",
                "-n",
                "-P",
                "-X",
                "-D",
                "-j",
                ",".join(arrays),
                "-o",
                "State,CPUTimeRAW,ElapsedRaw,AllocTRES",
            ],
            check=True,
        ).stdout
        rows = [line.split("|") for line in out.splitlines() if line.count("|") == 3]
        out_last = run(
            ["sacct", "-n", "-P", "-X", "-j", ",".join(arrays), "-o", "State"], check=True
        ).stdout
        last = [
            line.split()[0] for line in out_last.splitlines() if line.strip()
        ]  # each job's newest
        if (
            not rows
            or not last
            or any(state in ("RUNNING", "PENDING", "REQUEUED") for state in last)
        ):
            return None
        return {
            "cpu": sum(int(r[1]) for r in rows) / 3600,
            "gpu": sum(int(r[2]) * _or(tres_gpus(r[3]), gpus_per_job) for r in rows) / 3600,
        }

    return wait_for(final, timeout=90, interval=1, what=f"final sacct records of {arrays}")


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def test_used_hours_match_sacct_and_events_come_close(tmp_path, slurm_lab, accounting_on):
    """Job per trial, accounting on: the driver's figures (usage.json, from one sacct per poll)
    within 5% of sacct's own CPUTimeRAW; each trial's queue time known; the same experiment
    measured from its events alone (accounting off) is reported beside them."""
    name = unique_name("usage")
    grid = tune.Tuner(
        tune.with_resources(sleeper, {"cpu": 2, "gpu": 1}),
        param_space={"s": tune.grid_search([8, 12, 16])},
        tune_config=tune.TuneConfig(max_concurrent_trials=3, reuse_actors=False),
        run_config=tune.RunConfig(
            name=name,
            storage_path=str(tmp_path),
            verbose=0,
            slurm=tune.SlurmConfig(poll_interval_s=0.5, time_min=2),
        ),
    ).fit()
    assert grid.num_terminated == 3, [str(e) for e in grid.errors]
    exp = tmp_path / name
    own = sacct_own(job_arrays(exp), gpus_per_job=1)
    driver = read_usage(exp).usage
    assert {u.source for u in driver.trials.values()} == {SACCT}
    assert driver.used.cpu == pytest.approx(own["cpu"], rel=0.05), (driver.used, own)
    assert driver.used.gpu == pytest.approx(own["gpu"], rel=0.05), (driver.used, own)
    assert all(u.queued_s is not None for u in driver.trials.values())
    commands, ended = SlurmCommands(), {}
    final, accounting = measure(exp, load_trials(ExperimentDir(exp)), commands, final=ended)
    assert accounting and final.used.cpu == pytest.approx(own["cpu"], rel=0.01)
    # the arrays ended for good: measured again, sacct is not asked, and the figures hold
    again, _ = measure(exp, load_trials(ExperimentDir(exp)), commands, final=ended)
    assert commands.counts["sacct"] == 1 and again == final
    from_events, accounting = measure(exp, load_trials(ExperimentDir(exp)), None)
    assert not accounting and from_events.idle is not None and not from_events.idle.cpu
    print(
        f"\nestimate: 3 trials x 2 min x (2 CPUs, 1 GPU) = 0.2 CPU-h, 0.1 GPU-h; used: sacct "
        f"{own['cpu']:.5f} CPU-h {own['gpu']:.5f} GPU-h, ours (sacct) {driver.used.cpu:.5f} / "
        f"{driver.used.gpu:.5f}, ours (events) {from_events.used.cpu:.5f} / {from_events.used.gpu:.5f}, "
        f"queued {driver.queued_s:.1f} s"
    )
    # events see each trial from its worker's first event to its last: the job's start-up (the
    # batch script, Python's imports) is not seen, so they under-count, by a few seconds a trial
    assert own["cpu"] * 0.7 < from_events.used.cpu <= own["cpu"] * 1.01


def test_the_pool_accounts_each_trial_and_its_idle_slots(tmp_path, slurm_lab, accounting_on):
    """Two slots per pool task: each trial's share is its process's wall time (measured by the
    pool task) x 1 CPU; the pool task's allocation beyond the shares is idle; trials + idle is
    what sacct charged the pool tasks, within 5%."""
    name = unique_name("usagepool")
    grid = tune.Tuner(
        tune.with_resources(sleeper, {"cpu": 1}),
        param_space={"s": tune.grid_search([4, 6, 8, 10])},
        tune_config=tune.TuneConfig(max_concurrent_trials=4, reuse_actors=True),
        run_config=tune.RunConfig(
            name=name,
            storage_path=str(tmp_path),
            verbose=0,
            slurm=tune.SlurmConfig(
                poll_interval_s=0.5, pool_idle_s=3, pool_slots_per_task=2, time_min=2
            ),
        ),
    ).fit()
    assert grid.num_terminated == 4, [str(e) for e in grid.errors]
    exp = tmp_path / name
    own = sacct_own(job_arrays(exp))
    usage, accounting = measure(exp, load_trials(ExperimentDir(exp)), SlurmCommands())
    assert accounting
    for result in grid:
        trial = usage.trials[result.trial_id]
        assert trial.source == POOL
        span = sum(event_spans(read_events(Path(result.path) / "result.jsonl")).values())
        slept = result.config["s"]
        # the child's wall time covers its events and its own start and exit, a second or two
        assert slept <= span + 0.5 and span <= trial.used.wall * 3600 <= span + 5, (span, trial)
    assert usage.idle is not None and usage.idle.cpu > 0  # each task idles pool_idle_s at its end
    assert usage.used.cpu == pytest.approx(own["cpu"], rel=0.05), (usage, own)
    print(
        f"\npool: trials {usage.trial_total.cpu:.5f} CPU-h, idle {usage.idle.cpu:.5f} CPU-h "
        f"({usage.idle_share('cpu'):.0%}), sacct {own['cpu']:.5f} CPU-h"
    )


def test_a_gpu_hour_budget_stops_the_experiment_and_a_larger_one_resumes_it(tmp_path, slurm_lab):
    """Each trial's worst case: 1 GPU x 1 min = 1/60 GPU-h. A budget of 1/60 + 0.002 admits one
    trial at a time; once it used more than 0.002 GPU-h (~7 s) the next cannot fit: the
    experiment stops with the other trials PENDING. A restore with 1 GPU-hour runs them."""
    name = unique_name("budget")
    budget = 1 / 60 + 0.002
    tuner = tune.Tuner(
        tune.with_resources(sleeper, {"cpu": 1, "gpu": 1}),
        param_space={"s": tune.grid_search([10, 11, 12])},
        tune_config=tune.TuneConfig(gpu_hours_budget=budget),
        run_config=tune.RunConfig(
            name=name,
            storage_path=str(tmp_path),
            verbose=0,
            slurm=tune.SlurmConfig(poll_interval_s=0.5, time_min=1),
        ),
    )
    grid = tuner.fit()
    ran = [r for r in grid if "slept" in (r.metrics or {})]
    assert len(ran) == 1, [(r.trial_id, r.metrics) for r in grid]
    exp = tmp_path / name
    record = read_usage(exp)
    assert record.budget["stopped"].startswith(f"allocation budget of {budget:g} GPU-hours")
    assert 0.002 < record.usage.used.gpu <= budget
    assert {t.status.value for t in load_trials(ExperimentDir(exp))} == {"TERMINATED", "PENDING"}
    resumed = tune.Tuner.restore(
        str(exp), tune.with_resources(sleeper, {"cpu": 1, "gpu": 1}), gpu_hours_budget=1.0
    ).fit()
    assert sorted(r.metrics.get("slept") for r in resumed) == [10, 11, 12]
    after = read_usage(exp)
    assert after.budget["stopped"] is None and after.usage.used.gpu > record.usage.used.gpu


@pytest.mark.parametrize("pool", [False, True], ids=["job-per-trial", "pool"])
def test_without_accounting_trials_are_accounted_from_their_events_and_the_pool(
    tmp_path, slurm_lab, lab_accounting, pool
):
    """Accounting off (sacct fails): one job per trial, each trial's figure is its events'
    span x its resources; in the pool, its process's wall time x one slot. Queue time and idle
    pool slots are unknown, and said to be (None), never shown as zero."""
    name = unique_name("noacct")
    with lab_accounting(False):
        grid = tune.Tuner(
            tune.with_resources(sleeper, {"cpu": 2}),
            param_space={"s": tune.grid_search([5, 7])},
            tune_config=tune.TuneConfig(max_concurrent_trials=2, reuse_actors=pool),
            run_config=tune.RunConfig(
                name=name,
                storage_path=str(tmp_path),
                verbose=0,
                slurm=tune.SlurmConfig(poll_interval_s=0.5, pool_idle_s=2, time_min=2),
            ),
        ).fit()
    assert grid.num_terminated == 2, [str(e) for e in grid.errors]
    usage = read_usage(tmp_path / name).usage
    for result in grid:
        trial = usage.trials[result.trial_id]
        assert trial.source == (POOL if pool else EVENTS) and trial.queued_s is None
        slept = result.config["s"]
        # each run (a start event: a trial preempted on the shared lab runs again) sleeps anew
        runs = sum(
            1 for e in read_events(Path(result.path) / "result.jsonl") if e["event"] == "start"
        )
        assert 2 * slept / 3600 <= trial.used.cpu <= 2 * runs * (slept + 5) / 3600, (runs, trial)
    assert usage.queued_s is None
    assert (usage.idle is None) if pool else (usage.idle.cpu == 0)
