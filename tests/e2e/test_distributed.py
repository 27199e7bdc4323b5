"""Trials of several tasks on the lab's two nodes: one record per step from rank 0, stops that
leave no rank behind, preemption with every rank restoring rank 0's checkpoint, one error for a
crashing rank, and the examples (mpi4py, torch.distributed with gloo)."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hpctune import tune
from hpctune.display.table import infer_columns, trial_row
from hpctune.storage.result_log import read_events
from tests.conftest import REPO_ROOT, run, sbatch, unique_name, wait_for
from tests.e2e import rank_trainables

pytestmark = pytest.mark.slurm


@pytest.fixture(autouse=True)
def on_slurm(monkeypatch):
    monkeypatch.setenv("HPCTUNE_BACKEND", "slurm")


def slurm(**kwargs):
    return tune.SlurmConfig(poll_interval_s=0.5, **kwargs)


def events(result, kind=None):
    found = read_events(Path(result.path) / "result.jsonl")
    return [e for e in found if kind is None or e["event"] == kind]


def rank_records(result) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((Path(result.path) / "ranks").glob("*.json"))]


class NodeColumn(tune.Callback):
    """The status table's row of each trial, as shown while its results arrive."""

    def __init__(self):
        self.nodes: list[str] = []

    def on_trial_result(self, iteration, trials, trial, result, **info):
        headers_node = 4  # "Trial name", "status", "Slurm job", "Slurm state", "node"
        self.nodes.append(trial_row(trial, infer_columns(trials, None, None, None))[headers_node])


def test_a_two_node_trial_reports_exactly_once_per_step(tmp_path):
    table = NodeColumn()
    trainable = tune.with_resources(rank_trainables.rank_steps, {"nodes": 2, "tasks_per_node": 2})
    grid = tune.Tuner(
        trainable, param_space={"steps": 3, "sleep": 1.0},
        run_config=tune.RunConfig(name=unique_name("mn"), storage_path=str(tmp_path), verbose=0,
                                  slurm=slurm(), callbacks=[table]),
    ).fit()
    assert grid.num_terminated == 1 and grid.num_errors == 0, [str(e) for e in grid.errors]
    (result,) = grid
    kinds = [e["event"] for e in events(result) if e["event"] not in ("heartbeat", "meta")]
    assert kinds == ["start", "result", "result", "result", "complete"], kinds
    assert {e["result"]["rank"] for e in events(result, "result")} == {0}  # rank 0's reports
    (start,) = events(result, "start")
    assert start["world_size"] == 4 and start["nodelist"] == "n[1-2]"
    assert len(result.metrics_dataframe) == 3 and len(grid.get_dataframe()) == 1
    seen = {r["rank"]: r for r in rank_records(result)}
    assert sorted(seen) == [0, 1, 2, 3]
    for rank, record in seen.items():
        assert (record["world_size"], record["local_world_size"]) == (4, 2)
        assert (record["node_rank"], record["local_rank"]) == (rank // 2, rank % 2)
        assert record["node"] == ("n1", "n2")[rank // 2]
    assert "n[1-2]" in table.nodes, table.nodes  # the status table's node column


def test_the_multinode_profile_runs_one_rank_per_node(tmp_path):
    from hpctune.config.profiles import load_profile

    profile = load_profile("multinode")
    grid = tune.Tuner(
        tune.with_resources(rank_trainables.rank_steps, profile.resources), param_space={"steps": 2},
        run_config=tune.RunConfig(name=unique_name("mnprof"), storage_path=str(tmp_path), verbose=0,
                                  slurm=profile.slurm_config({"poll_interval_s": 0.5})),
    ).fit()
    assert grid.num_terminated == 1, [str(e) for e in grid.errors]
    (result,) = grid
    assert len(events(result, "result")) == 2
    # rank 0 may complete the trial before rank 1 has written its record
    def both_records():
        found = rank_records(result)
        return found if len(found) == 2 else None

    records = wait_for(both_records, timeout=30, interval=0.2, what="both ranks' records")
    assert sorted((r["rank"], r["node"]) for r in records) == [(0, "n1"), (1, "n2")]
    (job,) = {e["slurm_job_id"] for e in events(result, "start")}
    port = str(20000 + int(job.split("_")[0]) % 20000)  # task 0's SLURM_JOB_ID is the array's id
    assert {tuple(r["master"]) for r in records} == {("n1", port)}  # the profile's setup lines


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "hpctune.worker" in Path(f"/proc/{pid}/cmdline").read_text()


def test_asha_stops_a_multi_node_trial_and_no_rank_survives(tmp_path):
    """Two 2-node trials one after the other: the worse one is stopped at ASHA's first rung."""
    trainable = tune.with_resources(rank_trainables.rank_steps, {"nodes": 2, "tasks_per_node": 1})
    grid = tune.Tuner(
        trainable, param_space={"c": tune.grid_search([0.0, 1.0]), "steps": 9, "sleep": 1.0},
        tune_config=tune.TuneConfig(
            metric="loss", mode="min", max_concurrent_trials=1,
            scheduler=tune.schedulers.ASHAScheduler(max_t=9, grace_period=1, reduction_factor=3)),
        run_config=tune.RunConfig(name=unique_name("mnasha"), storage_path=str(tmp_path), verbose=0,
                                  slurm=slurm(stop_grace_s=1.0)),
    ).fit()
    assert grid.num_errors == 0, [str(e) for e in grid.errors]
    by_c = {r.config["c"]: r for r in grid}
    assert by_c[0.0].metrics["training_iteration"] == 9
    stopped = by_c[1.0]
    assert stopped.metrics["training_iteration"] == 1
    pids = [r["pid"] for r in rank_records(stopped)]
    assert len(pids) == 2
    wait_for(lambda: not any(alive(pid) for pid in pids), timeout=30, interval=0.5,
             what="every rank of the stopped trial to exit")
    assert not events(stopped, "error")


def test_a_preempted_two_node_trial_resumes_from_rank_zeros_checkpoint_on_every_rank(tmp_path):
    trainable = tune.with_resources(rank_trainables.rank_steps,
                                    {"nodes": 2, "tasks_per_node": 1, "cpu": 4})  # whole nodes
    name = unique_name("mnpre")
    tuner = tune.Tuner(
        trainable, param_space={"steps": 24, "sleep": 0.5, "checkpoint": True},
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0,
                                  slurm=slurm(partition="preempt")),
    )
    urgent = []

    def preempt_when_running():
        def running():
            logs = list((tmp_path / name / "trials").glob("*/result.jsonl"))
            return logs and len([e for e in read_events(logs[0]) if e["event"] == "result"]) >= 3

        wait_for(running, timeout=240)  # whole nodes: it may queue behind other jobs
        for _ in range(2):  # one urgent job per node
            urgent.append(sbatch("-p", "urgent", "-c", "4", "-o", "/dev/null", wrap="sleep 2"))

    thread = threading.Thread(target=preempt_when_running, daemon=True)
    thread.start()
    grid = tuner.fit()
    thread.join(timeout=5)
    assert len(urgent) == 2, "the urgent jobs were never submitted"
    assert grid.num_terminated == 1 and grid.num_errors == 0, [str(e) for e in grid.errors]
    (result,) = grid
    steps = [e["result"]["step"] for e in events(result, "result")]
    assert steps == list(range(1, 25)), "a step was lost or recorded twice"
    assert len(events(result, "requeued")) == 1 and not events(result, "error")
    assert [e["restart_count"] for e in events(result, "start")] == [0, 1]
    last_before = [e["checkpoint"] for e in events(result, "result")
                   if e["restart_count"] == 0 and e.get("checkpoint")][-1]
    resumed = [r for r in rank_records(result) if r["restart_count"] == 1]
    assert sorted(r["rank"] for r in resumed) == [0, 1]
    assert {r["checkpoint"] for r in resumed} == {last_before}, resumed
    assert {r["restored"] for r in resumed} == {int(last_before.rsplit("_", 1)[1])}


def test_the_time_limit_warning_reaches_every_rank_and_the_trial_requeues(tmp_path):
    """A 1-minute limit, the warning 55 s before it (Slurm's 30 s tick: 5-35 s after the start),
    sent to every srun task: rank 0 checkpoints and requeues, every rank comes back."""
    trainable = tune.with_resources(rank_trainables.rank_steps, {"nodes": 2, "tasks_per_node": 1})
    grid = tune.Tuner(
        trainable, param_space={"steps": 40, "sleep": 1.0, "checkpoint": True},
        run_config=tune.RunConfig(name=unique_name("mntime"), storage_path=str(tmp_path), verbose=0,
                                  slurm=slurm(time_min=1, signal_lead_s=55)),
    ).fit()
    (result,) = grid
    assert result.error is None, str(result.error)
    assert [e["result"]["step"] for e in events(result, "result")] == list(range(1, 41))
    warnings = events(result, "preempted")
    assert warnings and {w["signal"] for w in warnings} == {"SIGUSR1"}, warnings
    assert len(events(result, "requeued")) == len(warnings)
    assert len(events(result, "start")) == len(warnings) + 1
    runs = {}
    for record in rank_records(result):
        runs.setdefault(record["restart_count"], []).append(record)
    assert sorted(runs) == list(range(len(warnings) + 1))
    for restart, records in runs.items():  # both ranks of every run, on one checkpoint
        assert sorted(r["rank"] for r in records) == [0, 1], records
        assert len({r["checkpoint"] for r in records}) == 1, records
        assert (records[0]["checkpoint"] is None) == (restart == 0)


def test_a_crashing_rank_fails_the_trial_once_and_it_is_retried_once(tmp_path):
    trainable = tune.with_resources(rank_trainables.rank_steps, {"nodes": 2, "tasks_per_node": 1})
    grid = tune.Tuner(
        trainable, param_space={"steps": 3, "sleep": 0.5, "crash_rank": 1},
        run_config=tune.RunConfig(name=unique_name("mncrash"), storage_path=str(tmp_path), verbose=0,
                                  slurm=slurm(), failure_config=tune.FailureConfig(max_failures=1)),
    ).fit()
    assert grid.num_terminated == 1 and grid.num_errors == 0, [str(e) for e in grid.errors]
    (result,) = grid
    (error,) = events(result, "error")
    assert error["rank"] == 1 and "rank 1 crashed at step 2" in error["error"]
    assert len(events(result, "start")) == 2 and len(events(result, "complete")) == 1
    # rank 0, ended by srun for rank 1's failure, added nothing: no warning, no second record
    assert not events(result, "preempted") and not events(result, "terminated")
    assert [e["result"]["step"] for e in events(result, "result")][-3:] == [1, 2, 3]
    assert result.metrics["step"] == 3


def test_a_rank_killed_without_an_exception_fails_the_trial_once(tmp_path):
    """A SIGKILLed rank writes nothing: the job's end is the failure, counted once, and retried."""
    trainable = tune.with_resources(rank_trainables.rank_steps, {"nodes": 2, "tasks_per_node": 1})
    grid = tune.Tuner(
        # rank 0 is still busy when srun ends the step (in DDP it would wait for its peer)
        trainable, param_space={"steps": 8, "sleep": 1.0, "crash_rank": 1, "crash_how": "kill"},
        run_config=tune.RunConfig(name=unique_name("mnkill"), storage_path=str(tmp_path), verbose=0,
                                  slurm=slurm(), failure_config=tune.FailureConfig(max_failures=1)),
    ).fit()
    assert grid.num_terminated == 1 and grid.num_errors == 0, [str(e) for e in grid.errors]
    (result,) = grid
    assert len(events(result, "start")) == 2 and len(events(result, "complete")) == 1
    assert [e["result"]["step"] for e in events(result, "result")][-8:] == list(range(1, 9))


# -- the examples, as written ---------------------------------------------------------------------
def need(module: str) -> None:
    """Skip without ``module`` on a developer's machine; in CI (which installs it) fail instead."""
    if os.environ.get("CI", "").lower() == "true":
        __import__(module)
    else:
        pytest.importorskip(module)


def run_example(name: str, tmp_path: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "examples" / name), "--storage",
                           str(tmp_path / "results"), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_mpi_allreduce_example(tmp_path):
    need("mpi4py")
    out = run_example("mpi_allreduce.py", tmp_path)
    assert "Best config:" in out and "ranks: 4" in out, out


def test_torch_ddp_example(tmp_path):
    need("torch")
    out = run_example("torch_ddp.py", tmp_path, "--samples", "2", "--epochs", "3")
    assert "Best lr:" in out and "world size 2 (gloo)" in out, out


def test_lab_runs_mpi_across_its_nodes(tmp_path):
    """The lab's own MPI check (Open MPI over srun --mpi=pmix, 2 nodes x 2 ranks)."""
    need("mpi4py")
    script = tmp_path / "allreduce.py"
    script.write_text("from mpi4py import MPI\nc = MPI.COMM_WORLD\n"
                      "print(c.Get_rank(), c.Get_size(), c.allreduce(c.Get_rank()), flush=True)\n")
    proc = run(["srun", "--mpi=pmix", "-N2", "--ntasks-per-node=2", sys.executable, str(script)],
               timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.split("\n")[:-1]) == [f"{r} 4 6" for r in range(4)], proc.stdout
