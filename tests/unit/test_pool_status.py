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


def queue_two_runs_one_claimed(root):
    """Runs 0 and 1 of trials t_0 and t_1 queued; run 0 claimed by pool task 812_4."""
    queue = PoolQueue(root)
    queue.ensure()
    queue.write_shape(SHAPE, {"cpu": 1, "gpu": 0})
    queue.enqueue(0, "t_0", SHAPE)
    queue.enqueue(1, "t_1", SHAPE)
    assert queue.claim_next("812_4", SHAPE).seq == 0


def test_status_names_the_pool_task_of_a_running_trial(tmp_path, monkeypatch):
    queue_two_runs_one_claimed(tmp_path)
    squeue = Squeue({"812_4": JobReport("RUNNING", "None", "n2")})
    monkeypatch.setattr(inspect, "shared_commands", lambda: squeue)
    monkeypatch.setattr(inspect.shutil, "which", lambda name: f"/usr/bin/{name}")
    trials = [Trial(f"t_{i}", {}, "", str(tmp_path / f"t_{i}"), status=TrialStatus.PENDING, job_id=f"pool-{i}")
              for i in (0, 1)]
    inspect.refresh_live_states(ExperimentDir(tmp_path), trials)
    assert squeue.asked == [["812"]]
    assert [(t.job_state, t.job_reason, t.node) for t in trials] == [
        ("RUNNING", "None", "n2 (pool task 812_4)"), ("PENDING", "PoolQueue", "")]


def test_the_row_views_refresh_gives_the_columns_the_trials_refresh_gives(tmp_path, monkeypatch):
    """``status`` at scale refreshes the live rows' columns without building their Trials: the
    same states, reasons and nodes as the Trials' refresh, for array tasks and pool runs; a
    finished trial and a trial without a job keep theirs, and a damaged job id is never asked."""
    from hpctune.display.view import TrialColumns

    queue_two_runs_one_claimed(tmp_path)
    squeue = Squeue({"812_4": JobReport("RUNNING", "None", "n2"), "900_1": JobReport("PENDING", "Priority", ""),
                     "900_2": JobReport("RUNNING", "None", "n1")})
    monkeypatch.setattr(inspect, "shared_commands", lambda: squeue)
    monkeypatch.setattr(inspect.shutil, "which", lambda name: f"/usr/bin/{name}")

    def trials():
        made = [Trial(f"t_{i}", {}, "", str(tmp_path / f"t_{i}"), status=TrialStatus.PENDING, job_id=f"pool-{i}")
                for i in (0, 1)]
        made += [Trial("a_1", {}, "", str(tmp_path / "a_1"), status=TrialStatus.PENDING, job_id="900_1"),
                 Trial("a_2", {}, "", str(tmp_path / "a_2"), status=TrialStatus.RUNNING, job_id="900_2"),
                 Trial("a_3", {}, "", str(tmp_path / "a_3"), status=TrialStatus.TERMINATED, job_id="900_3"),
                 Trial("a_4", {}, "", str(tmp_path / "a_4"), status=TrialStatus.PENDING, job_id="--user=x"),
                 Trial("a_5", {}, "", str(tmp_path / "a_5"), status=TrialStatus.PENDING)]
        return made

    whole = trials()
    inspect.refresh_live_states(ExperimentDir(tmp_path), whole)
    columns = TrialColumns.of(trials(), None, None)
    squeue.asked.clear()
    inspect.refresh_row_states(ExperimentDir(tmp_path), columns)
    assert sorted(map(sorted, squeue.asked)) == [["812"], ["900"]]
    expected = TrialColumns.of(whole, None, None)
    assert (columns.job_state, columns.job_reason, columns.node) == (
        expected.job_state, expected.job_reason, expected.node)
    assert columns.job_state[:4] == ["RUNNING", "PENDING", "PENDING", "RUNNING"]
