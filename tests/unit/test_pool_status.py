"""``hpctune status`` on a worker-pool experiment: a run still in the pool's queue is PENDING
(PoolQueue); a claimed run has its pool task's Slurm state and the node column names the pool
task; a run whose pool task left the queue is not reported. Without Slurm: squeue's answer is
scripted at the CLI's one Slurm seam (``shared_commands``)."""

from __future__ import annotations

from hpctune.backends.base import JobReport
from hpctune.backends.pool_runs import run_states
from hpctune.cli import inspect
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.pool_queue import PoolQueue, QueueView, shape_key
from hpctune.tune.experiment.trial import Trial, TrialStatus

SHAPE = shape_key({"cpu": 1, "gpu": 0})


def test_queued_claimed_and_orphaned_runs():
    view = QueueView(queued={3: SHAPE}, claimed={1: "500_2", 2: "500_3", 4: "501_0"})
    tasks = {"500_2": JobReport("RUNNING", "None", "n1"), "501_0": JobReport("PENDING", "Priority", "")}
    assert run_states(view, tasks) == {
        "pool-3": JobReport("PENDING", "PoolQueue"),
        "pool-1": JobReport("RUNNING", "None", "n1 (pool task 500_2)"),
        "pool-4": JobReport("PENDING", "Priority", "pool task 501_0"),
    }


class Squeue:
    """``job_states`` answering for the pool tasks; records what it was asked."""

    def __init__(self, states: dict[str, JobReport]):
        self.states, self.asked = states, []

    def job_states(self, jobs: list[str], check: bool = True) -> dict[str, JobReport]:
        self.asked.append(list(jobs))
        return dict(self.states)


def test_status_names_the_pool_task_of_a_running_trial(tmp_path, monkeypatch):
    queue = PoolQueue(tmp_path)
    queue.ensure()
    queue.write_shape(SHAPE, {"cpu": 1, "gpu": 0})
    queue.enqueue(0, "t_0", SHAPE)
    queue.enqueue(1, "t_1", SHAPE)
    assert queue.claim_next("812_4", SHAPE) == 0
    squeue = Squeue({"812_4": JobReport("RUNNING", "None", "n2")})
    monkeypatch.setattr(inspect, "shared_commands", lambda: squeue)
    monkeypatch.setattr(inspect.shutil, "which", lambda name: f"/usr/bin/{name}")
    trials = [Trial(f"t_{i}", {}, "", str(tmp_path / f"t_{i}"), status=TrialStatus.PENDING, job_id=f"pool-{i}")
              for i in (0, 1)]
    inspect.refresh_pool_runs(ExperimentDir(tmp_path), trials)
    assert squeue.asked == [["812"]]
    assert [(t.job_state, t.job_reason, t.node) for t in trials] == [
        ("RUNNING", "None", "n2 (pool task 812_4)"), ("PENDING", "PoolQueue", "")]
