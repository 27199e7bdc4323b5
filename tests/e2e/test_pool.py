"""The worker pool (``TuneConfig(reuse_actors=True)``) on the Slurm lab: several trials per
array task, each in a clean process; stops, crashes and dead pool tasks as with one job per
trial."""

import collections
import threading
from pathlib import Path

import pytest

from hpctune import tune
from hpctune.storage.pool_queue import PoolQueue
from hpctune.storage.result_log import read_events
from tests.conftest import run, unique_name, wait_for
from tests.e2e import trainables
from tests.e2e.state import trials_of

pytestmark = pytest.mark.slurm


@pytest.fixture(autouse=True)
def on_slurm(monkeypatch):
    monkeypatch.setenv("HPCTUNE_BACKEND", "slurm")


def events(result, kind=None):
    return [e for e in read_events(Path(result.path) / "result.jsonl") if kind is None or e["event"] == kind]


def pool_arrays(exp: Path) -> dict[str, int]:
    """{pool array job id: number of tasks} of every pool array the experiment submitted."""
    queue = PoolQueue(exp)
    found = {}
    for uid in queue.array_uids():
        manifest, _, job_id = queue.array_paths(uid)
        found[job_id.read_text().strip()] = len(manifest.read_text().split("\n")) - 1
    return found


def sacct_tasks(array: str, tasks: int | None = None) -> dict[str, str]:
    """{task id: state} of a pool array once slurmdbd recorded every task's end (and, given
    ``tasks``, a record of each of that many tasks: slurmdbd may lag behind slurmctld)."""
    def recorded():
        out = run(["sacct", "-n", "-P", "-X", "-j", array, "-o", "JobID,State"], check=True).stdout
        states = {job: state.split()[0] for job, state in
                  (line.split("|", 1) for line in out.splitlines() if "|" in line)}
        over = states and all(s not in ("RUNNING", "PENDING", "REQUEUED") for s in states.values())
        every = tasks is None or {f"{array}_{i}" for i in range(tasks)} <= set(states)
        return states if over and every else None
    return wait_for(recorded, timeout=60, interval=1, what=f"sacct records of pool array {array}")


def pool(**kwargs):
    return tune.SlurmConfig(poll_interval_s=0.5, pool_idle_s=kwargs.pop("pool_idle_s", 3), **kwargs)


def probe(config):
    """Reports the process and the pool task it ran in."""
    import os
    import time

    time.sleep(config.get("sleep", 0.1))
    tune.report({"pid": os.getpid(), "task": os.environ.get("HPCTUNE_POOL_TASK", ""),
                 "array_task": os.environ.get("SLURM_ARRAY_TASK_ID", "")})


def test_sixty_trials_run_through_four_pool_tasks(tmp_path, slurm_lab):
    """60 short trials, 4 slots: one array of 4 pool tasks runs them all (sacct shows 4 tasks,
    not 60), each trial in a process of its own, every task several trials."""
    name = unique_name("pool60")
    grid = tune.Tuner(
        probe, param_space={"i": tune.grid_search(list(range(60))), "sleep": 0.1},
        tune_config=tune.TuneConfig(max_concurrent_trials=4, reuse_actors=True),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0, slurm=pool()),
    ).fit()
    assert len(grid) == 60 and grid.num_terminated == 60, [str(e) for e in grid.errors]
    arrays = pool_arrays(tmp_path / name)
    assert list(arrays.values()) == [4], arrays
    (array,) = arrays
    per_task = collections.Counter(r.metrics["task"] for r in grid)
    # every trial ran in a task of that array; on a busy lab some tasks start late or never
    # get work, so the split is not asserted, only that tasks ran many trials each
    assert set(per_task) <= {f"{array}_{i}" for i in range(4)}, per_task
    assert max(per_task.values()) >= 15, per_task
    assert len({(r.metrics["task"], r.metrics["pid"]) for r in grid}) == 60, "a process ran two trials"
    for result in grid:  # a run's job id is its pool run, and its events say so
        (start,) = events(result, "start")
        assert start["slurm_job_id"].startswith("pool-")
    if slurm_lab.accounting_enabled():
        states = sacct_tasks(array, tasks=4)
        assert sorted(states) == sorted(f"{array}_{i}" for i in range(4)), states
    assert (tmp_path / name / "pool" / "queue").is_dir() and not PoolQueue(tmp_path / name).view().queued


def test_asha_stops_trials_inside_the_pool(tmp_path, slurm_lab):
    """ASHA's stops end only the trial's process: the pool task goes on with the next trial."""
    name = unique_name("poolasha")
    scheduler = tune.schedulers.ASHAScheduler(max_t=9, grace_period=1, reduction_factor=3)
    grid = tune.Tuner(
        trainables.learning_curve,
        param_space={"c": tune.grid_search([i / 9 for i in range(9)]), "a": 1.0, "b": 0.5,
                     "sleep": 1.0, "max_t": 9},  # slower than the 1 s grace: the SIGTERM path
        tune_config=tune.TuneConfig(metric="loss", mode="min", scheduler=scheduler,
                                    max_concurrent_trials=3, reuse_actors=True),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0,
                                  slurm=pool(stop_grace_s=1.0)),
    ).fit()
    assert grid.num_terminated == 9 and grid.num_errors == 0
    iterations = {r.config["c"]: r.metrics["training_iteration"] for r in grid}
    assert iterations[0.0] == 9, iterations
    stopped = [r for r in grid if r.metrics["training_iteration"] < 9]
    assert len(stopped) >= 4, iterations
    for result in stopped:
        kinds = [e["event"] for e in events(result) if e["event"] not in ("result", "heartbeat")]
        assert kinds[-1] in ("stopped", "terminated"), kinds
    (array,) = pool_arrays(tmp_path / name)
    # each pool task's log names the runs it started (a run's queue records go when it ends)
    per_task = collections.Counter({p.name: p.read_text().count("hpctune pool: run pool-")
                                    for p in (tmp_path / name / "jobs").glob(f"{array}_*_log.out")})
    assert sum(per_task.values()) == 9, per_task
    # 3 tasks ran the 9 trials: those that ran stopped trials went on with the next ones
    assert len(per_task) == 3 and max(per_task.values()) >= 3, per_task
    if slurm_lab.accounting_enabled():  # no pool task was cancelled for a trial's stop
        assert len(sacct_tasks(array)) == 3


def test_killed_pool_task_hands_its_trials_back(tmp_path, slurm_lab):
    """``scancel --signal=KILL`` of a pool task: its trial is handed back and retried (per
    max_failures) from its checkpoint by another pool task; nothing runs twice at once."""
    name = unique_name("poolkill")
    exp = tmp_path / name
    tuner = tune.Tuner(
        trainables.checkpointed_counter,
        param_space={"x": tune.grid_search([0, 1, 2, 3]), "iterations": 8, "sleep": 0.5},
        tune_config=tune.TuneConfig(max_concurrent_trials=2, reuse_actors=True),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0, slurm=pool(),
                                  failure_config=tune.FailureConfig(max_failures=2)),
    )
    killed = []

    def kill_a_busy_task():
        def busy_claim():
            queue = PoolQueue(exp)
            view = queue.view()
            for seq, task in view.claimed.items():
                trial = view.trials[seq]  # a claim's name carries its trial
                log = exp / "trials" / trial / "result.jsonl"
                if log.exists() and sum(e["event"] == "result" for e in read_events(log)) >= 2:
                    return task, trial
            return None
        task, trial = wait_for(busy_claim, timeout=90, what="a pool task with a trial under way")
        run(["scancel", "--signal=KILL", task], check=True)
        killed.append((task, trial))

    thread = threading.Thread(target=kill_a_busy_task, daemon=True)
    thread.start()
    grid = tuner.fit()
    thread.join(timeout=5)
    assert killed, "no pool task was killed"
    task, trial = killed[0]
    assert grid.num_terminated == 4, [str(e) for e in grid.errors]
    (result,) = [r for r in grid if r.trial_id == trial]
    counts = [e["result"]["n"] for e in events(result, "result")]
    assert counts[-1] == 8 and sorted(set(counts)) == list(range(1, 9)), counts
    starts = events(result, "start")
    assert len(starts) == 2 and starts[0]["slurm_job_id"] != starts[1]["slurm_job_id"], starts
    assert starts[1]["restored_iteration"] >= 1, "the retry did not resume from the checkpoint"
    assert not any(t == task for t in PoolQueue(exp).view().claimed.values())
    for other in grid:
        if other.trial_id != trial:
            assert len(events(other, "start")) == 1


def test_preempted_pool_task_resumes_its_trials_from_checkpoints(tmp_path, slurm_lab):
    """Two whole-node pool tasks on `preempt`; urgent jobs preempt them: each running trial
    checkpoints, the pool task is requeued and resumes the same run first."""
    trainable = tune.with_resources(trainables.checkpointed_counter, {"cpu": 4})
    name = unique_name("poolpre")
    tuner = tune.Tuner(
        trainable, param_space={"x": tune.grid_search([0, 1]), "iterations": 20, "sleep": 0.5},
        tune_config=tune.TuneConfig(reuse_actors=True),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0,
                                  slurm=pool(partition="preempt")),
    )
    urgent_jobs = []

    def both_running():
        logs = list((tmp_path / name / "trials").glob("*/result.jsonl"))
        return len(logs) == 2 and all(sum(e["event"] == "result" for e in read_events(p)) >= 2 for p in logs)

    def preempt_when_running():
        wait_for(both_running, timeout=90)
        for _ in range(2):  # one urgent job per node
            urgent_jobs.append(run(["sbatch", "--parsable", "-p", "urgent", "-c", "4", "-o", "/dev/null",
                                    "--wrap", "sleep 2"], check=True).stdout.strip())

    thread = threading.Thread(target=preempt_when_running, daemon=True)
    thread.start()
    grid = tuner.fit()
    thread.join(timeout=5)
    assert len(urgent_jobs) == 2, "the urgent jobs were never submitted"
    assert grid.num_terminated == 2, [str(e) for e in grid.errors]
    for result in grid:
        counts = [e["result"]["n"] for e in events(result, "result")]
        assert counts == list(range(1, 21)), "an iteration was lost or run twice"
        assert len(events(result, "preempted")) == 1
        starts = events(result, "start")
        assert len(starts) == 2 and starts[0]["slurm_job_id"] == starts[1]["slurm_job_id"], starts
        assert starts[1]["restored_iteration"] >= 1
    assert len(pool_arrays(tmp_path / name)) == 1  # the same pool tasks, requeued


def test_pool_task_starts_no_trial_it_cannot_checkpoint_before_its_time_limit(tmp_path, slurm_lab):
    """time_min=1 with a 45 s warning lead: a pool task starts trials for its first ~10 s only
    (60 - 45 - a 5 s margin), then leaves; the driver submits fresh pool tasks for the rest.
    (Slurm may send the warning itself up to a minute early, so it is not asserted on.)"""
    name = unique_name("poolwall")
    grid = tune.Tuner(
        probe, param_space={"i": tune.grid_search(list(range(8))), "sleep": 4.0},
        tune_config=tune.TuneConfig(max_concurrent_trials=1, reuse_actors=True),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0,
                                  slurm=pool(time_min=1, signal_lead_s=45)),
    ).fit()
    assert grid.num_terminated == 8, [str(e) for e in grid.errors]
    starts = collections.defaultdict(list)  # (pool task, its restart) -> when it started each run
    for result in grid:
        for start in events(result, "start"):  # a task requeued by an early warning starts anew
            starts[result.metrics["task"], start["restart_count"]].append(start["time"])
    assert len({task for task, _ in starts}) >= 2, starts
    for task, times in starts.items():
        assert max(times) - min(times) <= 11, (task, sorted(times))
    assert len(pool_arrays(tmp_path / name)) >= 2


POOL_DRIVER = """
import sys
sys.path.insert(0, {repo!r})
from hpctune import tune
from tests.e2e import trainables
tune.Tuner(
    trainables.checkpointed_counter,
    param_space={{"x": tune.grid_search(list(range(12))), "iterations": 6, "sleep": 0.4}},
    tune_config=tune.TuneConfig(max_concurrent_trials=4, reuse_actors=True),
    run_config=tune.RunConfig(name={name!r}, storage_path={storage!r}, verbose=0,
                              slurm=tune.SlurmConfig(poll_interval_s=0.5, pool_idle_s=5)),
).fit()
"""


def test_killed_driver_is_restored_with_pool_tasks_running(tmp_path, slurm_lab):
    """SIGKILL the driver while pool tasks run: they go on with the queue; the restored driver
    re-attaches to the runs and claims, and no trial is lost or run twice."""
    import os
    import subprocess
    import sys
    import textwrap

    from tests.conftest import REPO_ROOT

    name = unique_name("poolcrash")
    exp = tmp_path / name
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(POOL_DRIVER.format(repo=str(REPO_ROOT), storage=str(tmp_path),
                                                         name=name)))
    driver = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path,
                              env={**os.environ, "HPCTUNE_BACKEND": "slurm"})

    def some_done_some_running():
        trials = trials_of(exp)
        done = sum(1 for t in trials if t["status"] == "TERMINATED")
        return len(trials) == 12 and 2 <= done <= 6

    try:
        wait_for(some_done_some_running, timeout=90, interval=0.2)
    finally:
        driver.kill()
        driver.wait()
    assert PoolQueue(exp).view().claimed or PoolQueue(exp).view().queued, "nothing left to re-attach to"
    grid = tune.Tuner.restore(str(exp), trainables.checkpointed_counter).fit()
    assert len(grid) == 12 and grid.num_terminated == 12, [str(e) for e in grid.errors]
    for result in grid:
        assert [e["result"]["n"] for e in events(result, "result")] == [1, 2, 3, 4, 5, 6]
        assert len(events(result, "start")) == 1, "a trial was run twice"
    # runs numbered from 0 (next-run.json keeps the numbers used): 12 runs ever enqueued
    assert PoolQueue(exp).next_seq() == 12, "the restored driver queued a trial again"


INTERRUPTED_DRIVER = """
import sys
sys.path.insert(0, {repo!r})
from hpctune import tune
from tests.e2e import trainables
grid = tune.Tuner(
    trainables.checkpointed_counter,
    param_space={{"x": tune.grid_search(list(range(4))), "iterations": 30, "sleep": 0.5}},
    tune_config=tune.TuneConfig(max_concurrent_trials=2, reuse_actors=True),
    run_config=tune.RunConfig(name={name!r}, storage_path={storage!r}, verbose=0,
                              slurm=tune.SlurmConfig(poll_interval_s=0.5, pool_idle_s=30)),
).fit()
print("RESULTS", len(grid))
"""


def test_status_cancel_and_ctrl_c_with_pool_tasks(tmp_path, capsys):
    """`hpctune status` names the pool task of each running trial; `hpctune cancel EXP TRIAL`
    ends that trial's process only; Ctrl+C cancels the rest and the idle pool tasks, and
    the experiment resumes."""
    import signal
    import subprocess
    import sys
    import textwrap

    from hpctune.cli.main import main
    from tests.conftest import REPO_ROOT

    name = unique_name("poolint")
    exp = tmp_path / name
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(INTERRUPTED_DRIVER.format(repo=str(REPO_ROOT), storage=str(tmp_path),
                                                                name=name)))
    driver = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def two_running():
            claimed = PoolQueue(exp).view().claimed if (exp / "pool").exists() else {}
            trials = trials_of(exp)
            return len(claimed) == 2 and sum(t["num_results"] >= 2 for t in trials) == 2 and claimed
        claimed = wait_for(two_running, timeout=90)
        capsys.readouterr()
        assert main(["status", str(exp)]) == 0
        shown = capsys.readouterr().out
        for task in claimed.values():
            assert f"pool task {task}" in shown, shown
        queue = PoolQueue(exp)
        victim_seq, victim_task = sorted(claimed.items())[0]
        victim = queue.view().trials[victim_seq]  # a claim's name carries its trial
        assert main(["cancel", str(exp), victim]) == 0
        wait_for(lambda: victim_seq not in queue.view().claimed, timeout=30,  # its end is in its log:
                 what="the cancelled trial's process to end")  # no ended/ record (files per trial)
        assert victim_task in squeue_tasks(name), "the pool task ended with the trial"
        wait_for(lambda: victim_task in queue.view().claimed.values(), timeout=30,
                 what="the pool task to take the next trial")

        def victim_ended():
            trials = trials_of(exp)
            return any(t["trial_id"] == victim and t["status"] == "TERMINATED" for t in trials)
        wait_for(victim_ended, timeout=30, what="the driver to end the cancelled trial")
        driver.send_signal(signal.SIGINT)
        out, err = driver.communicate(timeout=60)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, err
    assert "RESULTS 4" in out and "interrupted" in err
    wait_for(lambda: not squeue_tasks(name), timeout=30, what="the pool tasks to leave the queue")
    grid = tune.Tuner.restore(str(exp), trainables.checkpointed_counter).fit()
    results = {r.trial_id: r for r in grid}
    assert results[victim].metrics["n"] < 30  # cancelled: not run again
    assert sorted(r.metrics["n"] for t, r in results.items() if t != victim) == [30, 30, 30]


def squeue_tasks(name: str) -> list[str]:
    return run(["squeue", "-h", "-n", f"hpctune-{name}", "-o", "%i"]).stdout.split()


def overlapping(results) -> list[tuple]:
    """Pairs of trials that ran at the same time on the same node."""
    from itertools import combinations

    metrics = [r.metrics for r in results]
    return [(a, b) for a, b in combinations(metrics, 2)
            if a["node"] == b["node"] and a["start"] < b["end"] and b["start"] < a["end"]]


def test_gpu_packing_one_trial_per_gpu_on_the_fake_gpus(tmp_path, slurm_lab):
    """Pool tasks of 2 GPUs run 2 trials at once, each with its own CUDA_VISIBLE_DEVICES: no
    two trials ever share a GPU."""
    name = unique_name("poolgpu")
    grid = tune.Tuner(
        tune.with_resources(trainables.gpu_probe, {"cpu": 1, "gpu": 1}),
        param_space={"x": tune.grid_search(list(range(8))), "sleep": 2.0},
        tune_config=tune.TuneConfig(max_concurrent_trials=4, reuse_actors=True),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0,
                                  slurm=pool(pool_slots_per_task=2)),
    ).fit()
    assert grid.num_terminated == 8, [str(e) for e in grid.errors]
    assert all(r.metrics["gpu"] in ("0", "1", "2", "3") for r in grid), [r.metrics["gpu"] for r in grid]
    pairs = overlapping(grid)
    assert pairs, "no two trials ran at the same time on one node"
    assert not [(a["x"], b["x"]) for a, b in pairs if a["gpu"] == b["gpu"]], "two trials shared a GPU"
    assert list(pool_arrays(tmp_path / name).values()) == [2]  # 4 slots = 2 tasks x 2 GPUs
    script = next((tmp_path / name / "pool" / "arrays").glob("*.sbatch")).read_text()
    assert "--gres=gpu:2" in script and "--cpus-per-task=2" in script, script


def test_fractional_gpus_pack_trials_onto_one_gpu(tmp_path, slurm_lab):
    """{"gpu": 0.5}: a pool task holds one GPU and runs two trials on it at once."""
    name = unique_name("poolfrac")
    grid = tune.Tuner(
        tune.with_resources(trainables.gpu_probe, {"cpu": 1, "gpu": 0.5}),
        param_space={"x": tune.grid_search(list(range(4))), "sleep": 2.0},
        tune_config=tune.TuneConfig(max_concurrent_trials=2, reuse_actors=True),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0, slurm=pool()),
    ).fit()
    assert grid.num_terminated == 4, [str(e) for e in grid.errors]
    pairs = overlapping(grid)
    assert pairs and all(a["gpu"] == b["gpu"] and len(a["gpu"]) == 1 for a, b in pairs), pairs
    assert list(pool_arrays(tmp_path / name).values()) == [1]
    script = next((tmp_path / name / "pool" / "arrays").glob("*.sbatch")).read_text()
    assert "--gres=gpu:1" in script, script


def test_a_crashed_trial_is_retried_and_the_pool_goes_on(tmp_path, slurm_lab):
    """Each trial raises on its first run: retried per max_failures inside the same pool."""
    name = unique_name("poolretry")
    grid = tune.Tuner(
        trainables.fails_first_time, param_space={"x": tune.grid_search([0, 1, 2, 3])},
        tune_config=tune.TuneConfig(max_concurrent_trials=2, reuse_actors=True),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0, slurm=pool(),
                                  failure_config=tune.FailureConfig(max_failures=1)),
    ).fit()
    assert grid.num_terminated == 4 and grid.num_errors == 0, [str(e) for e in grid.errors]
    for result in grid:
        assert [e["event"] for e in events(result) if e["event"] in ("start", "error", "complete")] == [
            "start", "error", "start", "complete"]
    assert len(pool_arrays(tmp_path / name)) == 1  # the retries ran in the pool already running


def test_pbt_exploits_and_hyperband_resumes_run_in_the_running_pool(tmp_path, slurm_lab):
    """PBT's exploits and HyperBand's resumed trials are new runs of the same queue: the pool
    tasks already running take them (one pool array for the whole experiment)."""
    name = unique_name("poolpbt")
    scheduler = tune.schedulers.PopulationBasedTraining(
        time_attr="training_iteration", perturbation_interval=2, quantile_fraction=0.25,
        hyperparam_mutations={"lr": tune.loguniform(1e-3, 1)}, seed=1)
    grid = tune.Tuner(
        trainables.lr_schedule_problem,
        param_space={"lr": tune.grid_search([0.9, 0.5, 0.1, 0.01]), "steps": 12, "sleep": 0.3},
        tune_config=tune.TuneConfig(metric="score", mode="max", scheduler=scheduler,
                                    max_concurrent_trials=4, reuse_actors=True),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0,
                                  slurm=pool(pool_idle_s=10)),
    ).fit()
    assert grid.num_terminated == 4 and grid.num_errors == 0, [str(e) for e in grid.errors]
    exploited = [e for r in grid for e in events(r, "exploited")]
    assert exploited, "PBT exploited nothing"
    for result in grid:  # every run resumed where the last one (or the donor's checkpoint) left off
        steps = [e["result"]["step"] for e in events(result, "result")]
        assert steps[-1] == 12, steps
    assert len(pool_arrays(tmp_path / name)) == 1, pool_arrays(tmp_path / name)
    runs = PoolQueue(tmp_path / name).next_seq()  # runs ever enqueued (next-run.json)
    started = {e["slurm_job_id"] for r in grid for e in events(r, "start")}
    assert all(job.startswith("pool-") for job in started), started  # none submitted to Slurm
    # a run per trial, then at most one per exploit or pause (PBT pauses a trial to let another
    # take its slot; an exploit enacted while the recipient's run still waited in the queue
    # rewrites its config, and that run takes it)
    paused = [e for r in grid for e in events(r, "paused")]
    assert len(started) <= runs <= 4 + len(exploited) + len(paused), [
        [(e["event"], e.get("slurm_job_id")) for e in events(r) if e["event"] != "result"] for r in grid]

    hb = unique_name("poolhb")
    grid = tune.Tuner(
        trainables.lr_schedule_problem,
        param_space={"lr": tune.grid_search([0.4, 0.3, 0.2, 0.02, 0.5, 0.01, 0.3, 0.05]),
                     "steps": 30, "sleep": 0.1},
        tune_config=tune.TuneConfig(metric="score", mode="max", max_concurrent_trials=8, reuse_actors=True,
                                    scheduler=tune.schedulers.HyperBandScheduler(max_t=9, reduction_factor=3)),
        run_config=tune.RunConfig(name=hb, storage_path=str(tmp_path), verbose=0, slurm=pool(pool_idle_s=10)),
    ).fit()
    assert grid.num_errors == 0 and grid.num_terminated == 8
    resumed = [r for r in grid if "paused" in [e["event"] for e in events(r)]
               and len(events(r, "start")) >= 2]
    assert resumed, "no paused trial was resumed"
    assert len(pool_arrays(tmp_path / hb)) == 1, pool_arrays(tmp_path / hb)


class ResettableCounter(trainables.Counter):
    """A class trainable that implements reset_config: it may use the pool (Ray's rule)."""

    def reset_config(self, new_config):
        self.limit = new_config["limit"]
        return True


def test_a_class_trainable_with_reset_config_runs_in_the_pool(tmp_path, slurm_lab):
    name = unique_name("poolclass")
    grid = tune.Tuner(
        ResettableCounter, param_space={"limit": tune.grid_search([2, 3, 4, 5])},
        tune_config=tune.TuneConfig(max_concurrent_trials=2, reuse_actors=True),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0, slurm=pool()),
    ).fit()
    assert grid.num_terminated == 4, [str(e) for e in grid.errors]
    assert sorted(r.metrics["count"] for r in grid) == [2, 3, 4, 5]
    assert list(pool_arrays(tmp_path / name).values()) == [2]
    assert all(events(r, "start")[0]["slurm_job_id"].startswith("pool-") for r in grid)
