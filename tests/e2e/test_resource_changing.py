"""ResourceChangingScheduler end to end: a trial's request grows from 1 CPU to 2 between jobs.

The allocation function asks for 2 CPUs from the second result on. The trial checkpoints and
exits (a pause), and is resubmitted with the new request: Slurm's ``SLURM_CPUS_PER_TASK``
inside the new job, the array's sbatch script, ``get_trial_resources()`` and the
``resources_changed`` event all say 2, and the trial resumes from its own checkpoint (the
step stored in it), each iteration reported once.
"""

from __future__ import annotations

import json
import os
import tempfile
import time

import pytest

from hpctune import tune
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.replay import trial_results
from hpctune.storage.result_log import read_events
from hpctune.tune.schedulers import DistributeResources, ResourceChangingScheduler
from tests.conftest import job_info, unique_name

STEPS = 6


def resource_reporter(config):
    """Reports the CPUs it was given (``get_trial_resources()``, Slurm's own variable) and the
    step its checkpoint restored; checkpoints every step."""
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as path, open(os.path.join(path, "state.json")) as f:
            start = json.load(f)["step"]
    for step in range(start + 1, config["steps"] + 1):
        time.sleep(config["sleep"])
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, "state.json"), "w") as f:
                json.dump({"step": step}, f)
            tune.report({"step": step, "restored_step": start,
                         "cpus": tune.get_trial_resources()["cpu"],
                         "slurm_cpus": os.environ.get("SLURM_CPUS_PER_TASK", "")},
                        checkpoint=tune.Checkpoint.from_directory(tmp))


def two_cpus_from_the_second_result(tune_controller, trial, result, scheduler):
    return {"cpu": 2} if result["training_iteration"] >= 2 else None


def run_and_check(tmp_path, backend: str, allocate) -> None:
    """Two trials, each changed once from 1 CPU to 2; every check of the module docstring."""
    scheduler = ResourceChangingScheduler(resources_allocation_function=allocate)
    grid = tune.Tuner(
        resource_reporter,
        param_space={"steps": STEPS, "sleep": 0.3, "x": tune.grid_search([0, 1])},
        tune_config=tune.TuneConfig(metric="step", mode="max", scheduler=scheduler),
        run_config=tune.RunConfig(name=unique_name("rcs"), storage_path=str(tmp_path), verbose=0,
                                  slurm=tune.SlurmConfig(poll_interval_s=1.0, time_min=10)),
    ).fit()
    exp = ExperimentDir(grid.experiment_path)
    assert grid.num_errors == 0 and grid.num_terminated == 2
    for result in grid:
        log = exp.result_log_path(result.trial_id)
        kinds = [e["event"] for e in read_events(log) if e["event"] != "heartbeat"]
        assert kinds.count("resources_changed") == 1 and kinds.count("start") == 2, kinds
        (change,) = [e for e in read_events(log) if e["event"] == "resources_changed"]
        assert (change["old_resources"]["cpu"], change["new_resources"]["cpu"]) == (1, 2)
        results = trial_results(log)
        assert [r["step"] for r in results] == list(range(1, STEPS + 1))  # each step once
        assert [r["training_iteration"] for r in results] == list(range(1, STEPS + 1))
        after = [r for r in results if r["step"] > change["at_iteration"]]
        before = [r for r in results if r["step"] <= change["at_iteration"]]
        assert after and before and {r["cpus"] for r in before} == {1} and {r["cpus"] for r in after} == {2}
        assert {r["restored_step"] for r in after} == {change["at_iteration"]}  # its own checkpoint
        assert exp.read_trial_meta(result.trial_id)["resources"]["cpu"] == 2
        if backend == "slurm":
            assert {r["slurm_cpus"] for r in before} == {"1"} and {r["slurm_cpus"] for r in after} == {"2"}
            jobs = [before[-1]["slurm_job_id"], after[-1]["slurm_job_id"]]  # Slurm's own record
            assert [job_info(job)["NumCPUs"] for job in jobs] == ["1", "2"], jobs
    if backend == "slurm":
        scripts = [exp.array_paths(uid)[1].read_text() for uid in exp.array_uids()]
        assert any("--cpus-per-task=2" in s for s in scripts), scripts


@pytest.mark.parametrize("backend", ["local", pytest.param("slurm", marks=pytest.mark.slurm)])
def test_a_trial_resumes_from_its_checkpoint_with_more_cpus(tmp_path, monkeypatch, backend):
    monkeypatch.setenv("HPCTUNE_BACKEND", backend)
    run_and_check(tmp_path, backend, two_cpus_from_the_second_result)


@pytest.mark.slurm
def test_distribute_resources_grows_trials_within_the_partition(tmp_path, monkeypatch):
    """The default function with the lab's size from sinfo (8 CPUs, 4 a node): one more CPU
    each (``increase_by_times=1``), so the test needs 4 of the lab's 8 CPUs."""
    monkeypatch.setenv("HPCTUNE_BACKEND", "slurm")
    run_and_check(tmp_path, "slurm", DistributeResources(increase_by={"CPU": 1}, increase_by_times=1))


class CountingTrainable(tune.Trainable):
    """Ray's class API: ``trial_resources`` in ``setup`` and each step, state in checkpoints."""

    def setup(self, config):
        self.value, self.setup_cpus = 0, self.trial_resources["cpu"]

    def step(self):
        time.sleep(0.2)
        self.value += 1
        return {"value": self.value, "cpus": self.trial_resources["cpu"], "setup_cpus": self.setup_cpus,
                "should_checkpoint": True, "done": self.value >= 5}

    def save_checkpoint(self, checkpoint_dir):
        with open(os.path.join(checkpoint_dir, "state.json"), "w") as f:
            json.dump({"value": self.value}, f)

    def load_checkpoint(self, checkpoint_dir):
        with open(os.path.join(checkpoint_dir, "state.json")) as f:
            self.value = json.load(f)["value"]


def test_a_class_trainable_sees_its_new_resources_from_setup_on(tmp_path, monkeypatch):
    monkeypatch.setenv("HPCTUNE_BACKEND", "local")
    grid = tune.Tuner(
        CountingTrainable,
        tune_config=tune.TuneConfig(metric="value", mode="max", scheduler=ResourceChangingScheduler(
            resources_allocation_function=two_cpus_from_the_second_result)),
        run_config=tune.RunConfig(name=unique_name("rcs-class"), storage_path=str(tmp_path), verbose=0),
    ).fit()
    (result,) = list(grid)
    results = trial_results(ExperimentDir(grid.experiment_path).result_log_path(result.trial_id))
    assert [r["value"] for r in results] == [1, 2, 3, 4, 5]  # the state went on from its checkpoint
    cpus = [(r["cpus"], r["setup_cpus"]) for r in results]
    assert cpus[0] == (1, 1) and cpus[-1] == (2, 2) and sorted(set(cpus)) == [(1, 1), (2, 2)], cpus
