"""Checkpoints, retries, preemption, time limits, node failure and driver crashes on the lab."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hpctune import tune
from hpctune.storage.result_log import read_events
from tests.conftest import REPO_ROOT, run, sbatch, unique_name, wait_for
from tests.e2e import trainables
from tests.e2e.state import state_of, trials_of


@pytest.fixture
def on_slurm(monkeypatch):
    monkeypatch.setenv("HPCTUNE_BACKEND", "slurm")


def events(result, kind):
    return [e for e in read_events(Path(result.path) / "result.jsonl") if e["event"] == kind]


def counts_of(result):
    return [e["result"]["n"] for e in events(result, "result")]


def slurm(**kwargs):
    return tune.SlurmConfig(poll_interval_s=0.5, **kwargs)


@pytest.mark.parametrize("backend", ["local", pytest.param("slurm", marks=pytest.mark.slurm)])
def test_trial_that_fails_once_succeeds_on_retry(backend, tmp_path, monkeypatch):
    monkeypatch.setenv("HPCTUNE_BACKEND", backend)
    grid = tune.Tuner(
        trainables.fails_first_time,
        param_space={"x": tune.grid_search([1, 2])},
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0, slurm=slurm(),
                                  failure_config=tune.FailureConfig(max_failures=1)),
    ).fit()
    assert grid.num_terminated == 2 and grid.num_errors == 0
    for result in grid:
        assert len(events(result, "error")) == 1 and len(events(result, "complete")) == 1


def test_without_retries_the_failure_is_final(tmp_path, monkeypatch):
    monkeypatch.setenv("HPCTUNE_BACKEND", "local")
    grid = tune.Tuner(
        trainables.fails_first_time, param_space={"x": 1},
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0),
    ).fit()
    assert grid.num_errors == 1
    assert "transient failure" in str(grid.errors[0])


def test_checkpoints_beyond_num_to_keep_are_deleted(tmp_path, monkeypatch):
    monkeypatch.setenv("HPCTUNE_BACKEND", "local")
    grid = tune.Tuner(
        trainables.checkpointed_counter, param_space={"iterations": 5, "sleep": 0.01},
        run_config=tune.RunConfig(
            storage_path=str(tmp_path), verbose=0,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2)),
    ).fit()
    (result,) = grid
    kept = sorted(p.name for p in Path(result.path).glob("checkpoint_*"))
    assert kept == ["checkpoint_000004", "checkpoint_000005"]
    assert result.checkpoint.path.endswith("checkpoint_000005")


@pytest.mark.parametrize(("order", "best"), [("min", {"checkpoint_000001", "checkpoint_000002"}),
                                             ("max", {"checkpoint_000005", "checkpoint_000004"})])
def test_checkpoints_kept_by_score(tmp_path, monkeypatch, order, best):
    """num_to_keep=2 by the reported `n`: the two best-scored checkpoints stay, and the latest
    too (Ray keeps the best num_to_keep plus the latest)."""
    monkeypatch.setenv("HPCTUNE_BACKEND", "local")
    grid = tune.Tuner(
        trainables.checkpointed_counter, param_space={"iterations": 5, "sleep": 0.01},
        run_config=tune.RunConfig(
            storage_path=str(tmp_path), verbose=0,
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=2, checkpoint_score_attribute="n", checkpoint_score_order=order)),
    ).fit()
    (result,) = grid
    assert sorted(p.name for p in Path(result.path).glob("checkpoint_*")) == sorted(
        best | {"checkpoint_000005"})
    assert result.checkpoint.path.endswith("checkpoint_000005")


@pytest.mark.slurm
def test_preempted_trials_resume_from_their_checkpoints(tmp_path, on_slurm):
    """Two whole-node trials on `preempt`; urgent jobs preempt them, they finish anyway."""
    trainable = tune.with_resources(trainables.checkpointed_counter, {"cpu": 4})
    name = unique_name("pre")
    tuner = tune.Tuner(
        trainable, param_space={"x": tune.grid_search([0, 1]), "iterations": 20, "sleep": 0.5},
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0,
                                  slurm=slurm(partition="preempt")),
    )
    import threading

    urgent_jobs = []

    def both_running():
        logs = list((tmp_path / name / "trials").glob("*/result.jsonl"))
        return len(logs) == 2 and all(len(read_events(p)) >= 3 for p in logs)

    def preempt_when_running():
        wait_for(both_running, timeout=60)
        for _ in range(2):  # one urgent job per node
            urgent_jobs.append(sbatch("-p", "urgent", "-c", "4", "-o", "/dev/null", wrap="sleep 2"))

    thread = threading.Thread(target=preempt_when_running, daemon=True)
    thread.start()
    grid = tuner.fit()
    thread.join(timeout=5)
    assert len(urgent_jobs) == 2, "the urgent jobs were never submitted"
    assert grid.num_terminated == 2, [str(e) for e in grid.errors]
    for result in grid:  # one urgent job per node: each trial is preempted exactly once
        assert result.metrics["n"] == 20 and result.metrics["training_iteration"] == 20
        assert counts_of(result) == list(range(1, 21)), "an iteration was lost or run twice"
        assert len(events(result, "preempted")) == 1 and len(events(result, "requeued")) == 1
        assert [e["restart_count"] for e in events(result, "start")] == [0, 1]
        # SLURM_RESTART_COUNT as the trainable saw it: 0 before the requeue, 1 after it
        restarts = [e["result"]["restarts"] for e in events(result, "result")]
        assert restarts == sorted(restarts) and restarts[0] == 0 and restarts[-1] == 1, restarts


@pytest.mark.slurm
def test_node_failure_retries_trials_on_the_other_node(tmp_path, on_slurm, slurm_lab):
    trainable = tune.with_resources(trainables.checkpointed_counter, {"cpu": 4})
    name = unique_name("nf")
    tuner = tune.Tuner(
        trainable, param_space={"x": tune.grid_search([0, 1]), "iterations": 12, "sleep": 0.5},
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0, slurm=slurm(),
                                  failure_config=tune.FailureConfig(max_failures=2)),
    )
    import threading

    def fail_n2():
        def on_n2():
            for path in (tmp_path / name / "trials").glob("*/result.jsonl"):
                if any(e.get("result", {}).get("node") == "n2" for e in read_events(path)):
                    return True
            return False
        wait_for(on_n2, timeout=60)
        run(["scontrol", "update", "nodename=n2", "state=down", "reason=hpctune-test"], check=True)
        # and keep it out: with ReturnToService=2 a DOWN node whose slurmd answers comes back by
        # itself, possibly before the requeued job's 6 s hold ends (the finally resumes it)
        run(["scontrol", "update", "nodename=n2", "state=drain", "reason=hpctune-test"], check=True)

    thread = threading.Thread(target=fail_n2, daemon=True)
    thread.start()
    try:
        grid = tuner.fit()
    finally:
        thread.join(timeout=5)
        # ReturnToService=2: n2 may be back by itself already (then resume is refused);
        # either way it must be idle again before the next test
        run(["scontrol", "update", "nodename=n2", "state=resume"])
        wait_for(lambda: "idle" in run(["sinfo", "-h", "-n", "n2", "-o", "%t"]).stdout, timeout=60)
    assert grid.num_terminated == 2, [str(e) for e in grid.errors]
    for result in grid:
        assert result.metrics["n"] == 12
    # whole-node trials: one ran on n1, one on n2; exactly the one on n2 is run again, on n1
    first_node = {r.trial_id: events(r, "result")[0]["result"]["node"] for r in grid}
    assert sorted(first_node.values()) == ["n1", "n2"], first_node
    restarted = {r.trial_id for r in grid if len(events(r, "start")) > 1}
    assert restarted == {t for t, node in first_node.items() if node == "n2"}, first_node
    for result in grid:
        assert counts_of(result)[-1] == 12
        assert events(result, "result")[-1]["result"]["node"] == "n1"


@pytest.mark.slurm
def test_time_limit_warning_checkpoints_and_requeues(tmp_path, on_slurm):
    """A 1-minute limit with the warning 55 s before: Slurm's 30 s tick sends it 5-35 s after the
    start, so the 40-iteration trial outlives its first run by requeueing (a second run may be
    warned too); every iteration is reported exactly once, each warning costs one restart."""
    grid = tune.Tuner(
        trainables.checkpointed_counter, param_space={"iterations": 40, "sleep": 1.0},
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0,
                                  slurm=slurm(time_min=1, signal_lead_s=55)),
    ).fit()
    (result,) = grid
    assert result.error is None, str(result.error)
    assert counts_of(result) == list(range(1, 41))
    warnings = events(result, "preempted")
    assert warnings and {w["signal"] for w in warnings} == {"SIGUSR1"}, warnings
    assert len(events(result, "start")) == len(warnings) + 1
    assert result.metrics["restarts"] == len(warnings)


DRIVER = """
import sys
sys.path.insert(0, {repo!r})
from hpctune import tune
from tests.e2e import trainables
tune.Tuner(
    trainables.checkpointed_counter,
    param_space={{"x": tune.grid_search(list(range(12))), "iterations": 6, "sleep": 0.4}},
    tune_config=tune.TuneConfig(max_concurrent_trials=4, reuse_actors={reuse!r}),
    run_config=tune.RunConfig(name={name!r}, storage_path={storage!r}, verbose=0,
                              slurm=tune.SlurmConfig(poll_interval_s=0.5)),
).fit()
"""


@pytest.mark.parametrize("accounting", [True, pytest.param(False, id="no-accounting")])
@pytest.mark.parametrize("reuse_actors", [False, True], ids=["job-per-trial", "pool"])
@pytest.mark.slurm
def test_killed_driver_is_restored_without_losing_or_rerunning_anything(
        tmp_path, on_slurm, lab_accounting, accounting, reuse_actors):
    """SIGKILL the driver mid-run, let the jobs (or pool tasks) report without it, restore:
    every trial ends once, nothing is resubmitted, with and without accounting."""
    with lab_accounting(accounting):
        name = unique_name("crash")
        script = tmp_path / "driver.py"
        script.write_text(textwrap.dedent(DRIVER.format(repo=str(REPO_ROOT), storage=str(tmp_path),
                                                        name=name, reuse=reuse_actors)))
        driver = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path,
                                  env={**os.environ, "HPCTUNE_BACKEND": "slurm"})
        exp = tmp_path / name

        def some_done_some_running():
            trials = trials_of(exp)
            done = sum(1 for t in trials if t["status"] == "TERMINATED")
            return len(trials) == 12 and 2 <= done <= 6

        wait_for(some_done_some_running, timeout=90, interval=0.2)
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        still_queued = run(["squeue", "-h", "-n", f"hpctune-{name}", "-o", "%i"]).stdout.split()
        assert still_queued, "nothing left in Slurm to re-attach to"
        at_kill = results_written(exp)
        wait_for(lambda: results_written(exp) >= at_kill + 2, timeout=30,
                 what="trials to report while no driver runs")

        assert tune.Tuner.can_restore(exp)
        grid = tune.Tuner.restore(str(exp), trainables.checkpointed_counter).fit()

    assert len(grid) == 12 and grid.num_terminated == 12, [str(e) for e in grid.errors]
    for result in grid:
        assert counts_of(result) == [1, 2, 3, 4, 5, 6]
        assert len(events(result, "start")) == 1, "a trial was resubmitted"
    commands = state_of(exp)["backend_commands"]
    assert commands.get("sbatch", 0) == 0, commands


def results_written(exp: Path) -> int:
    """Result events in all the experiment's logs."""
    return sum(e["event"] == "result" for p in (exp / "trials").glob("*/result.jsonl")
               for e in read_events(p))


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


LOCAL_DRIVER = """
import sys
sys.path.insert(0, {repo!r})
from hpctune import tune
from tests.e2e import trainables
tune.Tuner(
    trainables.checkpointed_counter,
    param_space={{"x": tune.grid_search([0, 1]), "iterations": 20, "sleep": 0.2}},
    run_config=tune.RunConfig(name="local", storage_path={storage!r}, verbose=0),
).fit()
"""


def test_local_trials_die_with_the_driver_and_resume_from_checkpoints(tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(LOCAL_DRIVER.format(repo=str(REPO_ROOT), storage=str(tmp_path))))
    driver = subprocess.Popen([sys.executable, str(script)],
                              env={**os.environ, "HPCTUNE_BACKEND": "local"})
    exp = tmp_path / "local"
    logs = lambda: list((exp / "trials").glob("*/result.jsonl"))  # noqa: E731
    wait_for(lambda: len(logs()) == 2 and all(
        sum(e["event"] == "result" for e in read_events(p)) >= 3 for p in logs()), timeout=60)
    workers = {e["pid"] for p in logs() for e in read_events(p) if e["event"] == "start"}
    assert len(workers) == 2
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    wait_for(lambda: not any(alive(pid) for pid in workers), timeout=15,
             what="the local trials to die with their driver")
    for path in logs():
        assert read_events(path)[-1]["event"] == "result", "a trial ended while its driver died"
    grid = tune.Tuner.restore(str(exp), trainables.checkpointed_counter, backend="local").fit()
    assert grid.num_terminated == 2, [str(e) for e in grid.errors]
    for result in grid:  # the second run resumed from the first run's last checkpoint
        log = read_events(Path(result.path) / "result.jsonl")
        first, second = [i for i, e in enumerate(log) if e["event"] == "start"]
        before = [e["result"]["n"] for e in log[first:second] if e["event"] == "result"]
        after = [e["result"]["n"] for e in log[second:] if e["event"] == "result"]
        restored = log[second]["restored_iteration"]
        assert len(before) >= 3 and before == list(range(1, len(before) + 1))
        # killed between persisting a checkpoint and reporting it: one more than reported
        assert restored in (len(before), len(before) + 1), (restored, before)
        assert after == list(range(restored + 1, 21))


def test_restore_refuses_a_second_driver(tmp_path):
    from hpctune.errors import ExperimentLockedError
    from hpctune.storage.experiment import ExperimentDir
    from hpctune.tune.tuner import experiment_lock

    exp = ExperimentDir(tmp_path / "exp")
    exp.create()
    first = experiment_lock(exp).__enter__()
    with pytest.raises(ExperimentLockedError, match="Another driver"):
        experiment_lock(exp).__enter__()
    first.__exit__(None, None, None)
    experiment_lock(exp).__enter__().__exit__(None, None, None)  # free again once released


class PauseOnceAt2(tune.schedulers.TrialScheduler):
    """Pauses every trial once, at its second result."""

    def __init__(self):
        super().__init__()
        self.paused = set()

    def on_trial_result(self, trial, result):
        if result["training_iteration"] == 2 and trial.trial_id not in self.paused:
            self.paused.add(trial.trial_id)
            return self.PAUSE
        return self.CONTINUE


@pytest.mark.parametrize("backend", ["local", pytest.param("slurm", marks=pytest.mark.slurm)])
def test_paused_trials_checkpoint_exit_and_resume(backend, tmp_path, monkeypatch):
    monkeypatch.setenv("HPCTUNE_BACKEND", backend)
    grid = tune.Tuner(
        trainables.checkpointed_counter,
        param_space={"x": tune.grid_search([0, 1]), "iterations": 5, "sleep": 0.3},
        tune_config=tune.TuneConfig(scheduler=PauseOnceAt2()),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0, slurm=slurm()),
    ).fit()
    assert grid.num_terminated == 2, [str(e) for e in grid.errors]
    for result in grid:
        assert len(events(result, "paused")) == 1
        assert len(events(result, "start")) == 2
        assert counts_of(result)[-1] == 5
        assert set(counts_of(result)) == {1, 2, 3, 4, 5}


def runs_of(result):
    """(start, end) wall times of each run of a trial, from its log."""
    spans, start = [], None
    for event in read_events(Path(result.path) / "result.jsonl"):
        if event["event"] == "start":
            start = event["time"]
        elif event["event"] in ("error", "complete") and start is not None:
            spans.append((start, event["time"]))
            start = None
    return spans


@pytest.mark.parametrize("backend", ["local", pytest.param("slurm", marks=pytest.mark.slurm)])
def test_retries_respect_max_concurrent_trials(backend, tmp_path, monkeypatch):
    monkeypatch.setenv("HPCTUNE_BACKEND", backend)
    grid = tune.Tuner(
        trainables.slow_fails_first_time,
        param_space={"x": tune.grid_search(list(range(6)))},
        tune_config=tune.TuneConfig(max_concurrent_trials=2),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0, slurm=slurm(),
                                  failure_config=tune.FailureConfig(max_failures=1)),
    ).fit()
    assert grid.num_terminated == 6, [str(e) for e in grid.errors]
    spans = [span for r in grid for span in runs_of(r)]
    assert len(spans) == 12
    for t, _ in spans:  # at every run's start, at most 2 runs are going on
        assert sum(1 for a, b in spans if a <= t < b) <= 2
