"""End to end: the files a finished trial keeps (issue 23: at most 4 by default, loggers
included, at most 2 with TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1), locally and on the Slurm lab.

A trial directory holds result.jsonl and params.json (the trial's metadata is in the log, its
config in params.json when JSON gives it back exactly), plus progress.csv and a TensorBoard
file from the default loggers; control.json goes when the trial ends. A job has one log, its
stderr merged into its stdout; a Slurm array task that ended cleanly with an empty log leaves
none (a scancelled one gets Slurm's own line back).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from hpctune import tune
from hpctune.cli.main import main as cli
from hpctune.storage.experiment import ExperimentDir
from tests.conftest import unique_name

STOPPED_X = 1


def reports(config):
    for step in range(4):
        if config["talk"]:
            print(f"stdout of x={config['x']} step {step}", flush=True)
            print(f"stderr of x={config['x']} step {step}", file=sys.stderr, flush=True)
        tune.report({"loss": config["x"] / (step + 1), "x": config["x"]})
        time.sleep(0.3)


def stop_one(trial_id, result):
    return result["x"] == STOPPED_X and result["training_iteration"] >= 2


def fit(tmp_path, talk, slurm=None, pool=False):
    grid = tune.Tuner(reports, param_space={"x": tune.grid_search([0, STOPPED_X, 2]), "talk": talk},
                      tune_config=tune.TuneConfig(metric="loss", mode="min", reuse_actors=pool),
                      run_config=tune.RunConfig(name=unique_name("files"), storage_path=str(tmp_path),
                                                verbose=0, stop=stop_one, slurm=slurm)).fit()
    assert grid.num_terminated == 3 and grid.num_errors == 0, [str(e) for e in grid.errors]
    stopped = next(r for r in grid if r.config["x"] == STOPPED_X)
    assert stopped.metrics["training_iteration"] == 2  # a stop went through control.json...
    return grid


def trial_files(grid) -> dict[str, list[str]]:
    """Each trial's files (checkpoint directories aside), by trial id."""
    return {r.trial_id: sorted(p.name for p in Path(r.path).iterdir() if p.is_file()) for r in grid}


def job_logs(grid) -> list[Path]:
    return sorted((Path(grid.experiment_path) / "jobs").glob("*.out")) + \
        sorted((Path(grid.experiment_path) / "jobs").glob("*.err"))


@pytest.fixture
def local(monkeypatch):
    monkeypatch.setenv("HPCTUNE_BACKEND", "local")
    monkeypatch.delenv("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", raising=False)


def test_a_default_local_trial_keeps_four_files_and_its_job_log_only_when_it_printed(local, tmp_path):
    grid = fit(tmp_path / "quiet", talk=False)
    for files in trial_files(grid).values():  # ...and went with the trial's end
        assert [f for f in files if not f.startswith("events.out.tfevents.")] == \
            ["params.json", "progress.csv", "result.jsonl"], files
        assert len(files) <= 4
    assert len(job_logs(grid)) <= 1  # the completed trials printed nothing: no log (the stopped one's may stay)
    talking = fit(tmp_path / "talk", talk=True)
    logs = job_logs(talking)
    assert len(logs) == 3 and all(p.suffix == ".out" for p in logs)  # one per job, no .err


def test_the_setting_for_very_large_experiments_keeps_two(local, tmp_path, monkeypatch):
    monkeypatch.setenv("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    grid = fit(tmp_path, talk=False)
    assert set(map(tuple, trial_files(grid).values())) == {("params.json", "result.jsonl")}


@pytest.mark.slurm
def test_a_slurm_array_trial_keeps_four_files_and_its_log_only_when_it_printed(tmp_path, monkeypatch,
                                                                               capsys, slurm_lab):
    monkeypatch.setenv("HPCTUNE_BACKEND", "slurm")
    monkeypatch.delenv("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", raising=False)
    quiet = fit(tmp_path / "quiet", talk=False, slurm=tune.SlurmConfig(poll_interval_s=0.5, time_min=5))
    for files in trial_files(quiet).values():
        assert len(files) <= 4 and "trial.json" not in files and "control.json" not in files, files
    # the completed trials printed nothing: no log left; the stopped one's job was scancelled,
    # and Slurm's own "CANCELLED" line makes its log again
    logs = job_logs(quiet)
    assert len(logs) <= 1 and all(line.startswith("slurmstepd") for p in logs for line in p.read_text().splitlines())
    talking = fit(tmp_path / "talk", talk=True, slurm=tune.SlurmConfig(poll_interval_s=0.5, time_min=5))
    logs = job_logs(talking)
    assert len(logs) == 3 and all(p.name.endswith("_0_log.out") for p in logs)  # stderr in the .out
    result = next(r for r in talking if r.config["x"] == 2)
    capsys.readouterr()
    assert cli(["logs", str(talking.experiment_path), result.trial_id]) == 0
    out = capsys.readouterr().out
    assert "stdout of x=2 step 3" in out and "stderr of x=2 step 3" in out and out.count("==> ") == 1
    assert ExperimentDir(talking.experiment_path).read_trial_meta(result.trial_id)["resources"]["cpu"] == 1


@pytest.mark.slurm
def test_a_pool_trial_keeps_four_files_and_no_log_of_its_own_when_quiet(tmp_path, monkeypatch, slurm_lab):
    monkeypatch.setenv("HPCTUNE_BACKEND", "slurm")
    monkeypatch.delenv("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", raising=False)
    grid = fit(tmp_path, talk=False, pool=True,
               slurm=tune.SlurmConfig(poll_interval_s=0.5, time_min=5, pool_idle_s=2))
    for files in trial_files(grid).values():
        assert len(files) <= 4 and "trial.json" not in files and "control.json" not in files, files
    runs = [p.name for p in job_logs(grid) if p.name.startswith("pool-")]
    assert runs == []  # a quiet run's log goes; the pool tasks' own logs are per task
