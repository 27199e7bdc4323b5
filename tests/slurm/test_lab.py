"""The Slurm lab itself (scripts/slurm-lab.sh): GPUs, preemption, requeue, submitit, accounting.

hpctune relies on these behaviours of the lab; if one of these tests fails, look at the lab
(``scripts/slurm-lab.sh status``, logs under $SLURM_LAB_DIR/log) before looking at hpctune.
"""

from __future__ import annotations

import json
import sys
import time
from itertools import combinations
from pathlib import Path
from types import SimpleNamespace

import cloudpickle
import pytest
import submitit

pytestmark = pytest.mark.slurm


def read_lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []


def test_lab_config(slurm_lab):
    status = slurm_lab.run(["bash", str(slurm_lab.script), "status"])
    assert status.returncode == 0, status.stdout + status.stderr
    partitions = slurm_lab.run("sinfo -h -o '%P %G'", check=True).stdout.split("\n")
    assert {p.split()[0] for p in partitions if p} == {"debug*", "preempt", "urgent"}
    assert all("gpu:2" in p for p in partitions if p)
    config = slurm_lab.run("scontrol show config", check=True).stdout
    assert "preempt_send_user_signal" in config
    assert "cred_expire=5" in config


# --------------------------------------------------------------------------- (1) fake GPUs
GPU_TASK = f"""#!{sys.executable}
import json, os, sys, time
t0 = time.time()
time.sleep(2)
record = {{
    "task": int(os.environ["SLURM_ARRAY_TASK_ID"]),
    "node": os.environ["SLURMD_NODENAME"],
    "gpu": os.environ.get("CUDA_VISIBLE_DEVICES"),
    "python": sys.executable,
    "t0": t0,
    "t1": time.time(),
}}
with open(os.path.join(sys.argv[1], f"task{{record['task']}}.json"), "w") as f:
    json.dump(record, f)
"""


def test_gpu_array_tasks_on_one_node_get_distinct_gpus(slurm_lab, tmp_path):
    script = tmp_path / "task.py"
    script.write_text(GPU_TASK)
    script.chmod(0o755)
    jobid = slurm_lab.sbatch(
        "--array=0-5", "--gres=gpu:1", "-c1", "-o", tmp_path / "slurm-%A_%a.out", script, tmp_path
    )
    states = slurm_lab.wait_job(jobid, timeout=90)
    assert set(states.values()) == {"COMPLETED"}, states
    records = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("task*.json"))]
    assert sorted(r["task"] for r in records) == list(range(6))
    assert {r["node"] for r in records} == {"n1", "n2"}
    assert all(r["python"] == sys.executable for r in records)  # the repo's venv runs in jobs
    assert all(r["gpu"] in ("0", "1") for r in records), records  # node-local indices

    overlapping = [
        (a, b)
        for a, b in combinations(records, 2)
        if a["node"] == b["node"] and a["t0"] < b["t1"] and b["t0"] < a["t1"]
    ]
    assert overlapping, f"no two tasks ran at the same time on one node: {records}"
    clashes = [(a["task"], b["task"]) for a, b in overlapping if a["gpu"] == b["gpu"]]
    assert not clashes, f"tasks sharing a GPU at the same time: {clashes} in {records}"


# --------------------------------------------------------------------------- (2) + (5) preemption
# The batch shell gets its --signal (USR1) right at preemption thanks to preempt_send_user_signal,
# keeps running through GraceTime=5, gets SIGTERM when the grace ends and Slurm requeues it.
# (Exiting on USR1 would end the job as COMPLETED: no requeue.)
VICTIM = """#!/bin/bash
log=$1
now() { date +%s.%N; }
echo "start restart=${SLURM_RESTART_COUNT:-0} t=$(now)" >>"$log"
[[ ${SLURM_RESTART_COUNT:-0} -ge 1 ]] && exit 0
trap 'echo "signal USR1 t=$(now)" >>"$log"' USR1
trap 'echo "signal TERM t=$(now)" >>"$log"; exit 0' TERM
for _ in $(seq 900); do sleep 0.2; done
"""


@pytest.fixture(scope="module")
def preempted_job(slurm_lab, tmp_path_factory):
    """A job in `preempt` on n1, preempted by an `urgent` job; runs once for the tests below."""
    folder = tmp_path_factory.mktemp("preempt")
    log = folder / "events.log"
    victim = folder / "victim.sh"
    victim.write_text(VICTIM)
    with slurm_lab.accounting(True):
        jobid = slurm_lab.sbatch(
            "-p", "preempt", "-w", "n1", "--exclusive", "--requeue", "--signal=B:USR1@60",
            "-o", folder / "victim-%j.out", victim, log,
        )  # fmt: skip
        slurm_lab.wait_for(lambda: read_lines(log), 60, what="the victim job to start")
        urgent_submitted = time.time()
        urgent = slurm_lab.sbatch(
            "-p", "urgent", "-w", "n1", "--exclusive", "-o", "/dev/null", wrap="sleep 1"
        )
        slurm_lab.wait_for(
            lambda: any(line.startswith("start restart=1") for line in read_lines(log)),
            120,
            what="the preempted job to restart",
        )
        states = slurm_lab.wait_job(jobid, 60)
        urgent_states = slurm_lab.wait_job(urgent, 60)
    events = [line.split(" t=") for line in read_lines(log)]
    return SimpleNamespace(
        jobid=jobid,
        events=[name for name, _ in events],
        # seconds after the urgent job's submission
        times={name: float(t) - urgent_submitted for name, t in events},
        states=states,
        urgent_states=urgent_states,
        info=slurm_lab.job_info(jobid),
    )


def test_preempted_job_is_signalled_requeued_and_restarted(preempted_job):
    assert set(preempted_job.urgent_states.values()) == {"COMPLETED"}
    assert preempted_job.events[0] == "start restart=0"
    assert preempted_job.events[-1] == "start restart=1"
    # preempt_send_user_signal: the job's --signal comes at preemption, SIGTERM when the grace
    # time (5 s) is over; Slurm then kills and requeues the job
    assert preempted_job.events[1:-1] == ["signal USR1", "signal TERM"], preempted_job.events
    assert preempted_job.times["signal USR1"] < 5, preempted_job.times
    assert preempted_job.states == {preempted_job.jobid: "COMPLETED"}
    assert preempted_job.info["Restarts"] == "1"


def test_sacct_shows_preempted(slurm_lab, preempted_job):
    def both_incarnations():  # sacct lags squeue: wait until the second run is recorded as over
        rows = slurm_lab.sacct_states(preempted_job.jobid)
        done = len(rows) >= 2 and rows[-1][1] not in ("PENDING", "RUNNING", "REQUEUED")
        return rows if done else None

    with slurm_lab.accounting(True):
        rows = slurm_lab.wait_for(both_incarnations, 30, what="both incarnations in sacct")
    assert [state for _, state in rows] == ["PREEMPTED", "COMPLETED"], rows


# --------------------------------------------------------------------------- (3) requeue itself
SELF_REQUEUE = """#!/bin/bash
echo "start restart=${SLURM_RESTART_COUNT:-0}" >>"$1"
if [[ ${SLURM_RESTART_COUNT:-0} -eq 0 ]]; then
    scontrol requeue "$SLURM_JOB_ID"
    sleep 120
fi
"""


def test_scontrol_requeue_from_inside_the_job(slurm_lab, tmp_path):
    log = tmp_path / "events.log"
    script = tmp_path / "job.sh"
    script.write_text(SELF_REQUEUE)
    jobid = slurm_lab.sbatch("--requeue", "-o", tmp_path / "job-%j.out", script, log)
    slurm_lab.wait_for(lambda: len(read_lines(log)) >= 2, 60, what="the requeued job to restart")
    states = slurm_lab.wait_job(jobid, 30)
    assert read_lines(log) == ["start restart=0", "start restart=1"]
    assert states == {jobid: "COMPLETED"}
    assert slurm_lab.job_info(jobid)["Restarts"] == "1"


# --------------------------------------------------------------------------- (4) submitit
def square_where(x):
    import os

    return x * x, os.environ["SLURMD_NODENAME"], sys.executable


def test_submitit_map_array(slurm_lab, tmp_path):
    executor = submitit.AutoExecutor(folder=tmp_path / "%j")
    assert executor.cluster == "slurm"
    # timeout_min > 10: with less, submitit counts a preemption as a timeout
    executor.update_parameters(
        timeout_min=15, slurm_partition="debug", cpus_per_task=1, slurm_array_parallelism=4
    )
    # this test module is not importable inside the job: pickle square_where by value
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        jobs = executor.map_array(square_where, range(6))
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    array_id = jobs[0].job_id.split("_")[0]
    # our own squeue polling: job.result() would block forever on a lost job without sacct
    states = slurm_lab.wait_job(array_id, 90)
    assert set(states.values()) == {"COMPLETED"}, states
    results = [job.result() for job in jobs]
    assert [r[0] for r in results] == [x * x for x in range(6)]
    assert {r[1] for r in results} <= {"n1", "n2"}
    assert {r[2] for r in results} == {sys.executable}


# --------------------------------------------------------------------------- (6) no accounting
def test_without_accounting_sacct_fails_and_jobs_still_run(slurm_lab, tmp_path):
    accounting_before = slurm_lab.accounting_enabled()
    survivor_out = tmp_path / "survivor.txt"
    # a job that is running while the lab is reconfigured (slurmctld + slurmd restart)
    survivor = slurm_lab.sbatch("-o", survivor_out, wrap="sleep 5; echo survived")
    slurm_lab.wait_for(lambda: slurm_lab.squeue_states(survivor).get(survivor) == "RUNNING", 30)

    with slurm_lab.accounting(False):
        assert not slurm_lab.accounting_enabled()
        sacct = slurm_lab.run(["sacct", "-X", "-n"])
        assert sacct.returncode != 0
        assert "accounting storage is disabled" in sacct.stdout + sacct.stderr

        out = tmp_path / "hello.txt"
        jobid = slurm_lab.sbatch("-o", out, wrap="echo hello")
        assert slurm_lab.wait_job(jobid, 60) == {jobid: "COMPLETED"}
        assert out.read_text() == "hello\n"
        assert slurm_lab.wait_job(survivor, 60) == {survivor: "COMPLETED"}
        assert survivor_out.read_text() == "survived\n"

    assert slurm_lab.accounting_enabled() == accounting_before  # restored
    if accounting_before:
        assert slurm_lab.run(["sacct", "-X", "-n", "-j", jobid]).returncode == 0
