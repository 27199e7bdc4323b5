"""Ray Tune scripts run unchanged and right (issue 17, the Tuner and results side), as local
processes: trial names, log_to_file, time budgets, SIGUSR1, ``tune.run``, nested metrics,
Ray-style schedulers, callbacks' checkpoint hooks and state, searcher state after a limiter.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from hpctune import tune
from hpctune.errors import TuneError
from hpctune.storage.driver_state import load_driver_state
from hpctune.storage.experiment import ExperimentDir
from hpctune.tune.schedulers.trial_scheduler import TrialScheduler
from hpctune.tune.search.concurrency_limiter import ConcurrencyLimiter
from hpctune.tune.search.searcher import Searcher
from tests.conftest import REPO_ROOT, wait_for
from tests.e2e import trainables
from tests.e2e.state import trials_of


@pytest.fixture(autouse=True)
def local_backend(monkeypatch):
    monkeypatch.setenv("HPCTUNE_BACKEND", "local")


def nested(config):
    for step in range(1, config.get("steps", 3) + 1):
        tune.report({"val": {"acc": config["x"] * step / 10}, "loss": -config["x"]})


def named(config):
    context = tune.get_context()
    tune.report({"name": context.get_trial_name(), "acc": config["x"]})


def fails_for_negative(config):
    if config["x"] < 0:
        raise ValueError(f"negative x={config['x']}")
    tune.report({"acc": config["x"]})


def slow(config):
    import time

    for step in range(100):
        time.sleep(0.2)
        tune.report({"acc": step})


def run_config(tmp_path, name="exp", **kwargs):
    kwargs.setdefault("verbose", 0)
    return tune.RunConfig(name=name, storage_path=str(tmp_path), **kwargs)


# -- names ------------------------------------------------------------------------------------------
def test_trial_names_in_the_table_the_context_and_the_directories(tmp_path):
    out = io.StringIO()
    reporter = tune.CLIReporter(["acc"], live=False, out=out, max_report_frequency=0)
    grid = tune.Tuner(
        named, param_space={"x": tune.grid_search([1, 1, 2])},
        tune_config=tune.TuneConfig(trial_name_creator=lambda t: f"x={t.config['x']}",
                                    trial_dirname_creator=lambda t: f"{t.trainable_name}/{t.config['x']}"),
        run_config=run_config(tmp_path, verbose=1, progress_reporter=reporter),
    ).fit()
    names = sorted(r.metrics["name"] for r in grid)
    assert names == ["x=1", "x=1_2", "x=2"]  # unique, as get_context() tells the trainable
    table = out.getvalue()
    assert all(name in table for name in names)
    root = Path(grid.experiment_path)
    assert sorted(p.name for p in root.iterdir() if p.is_symlink()) == ["named_1", "named_1_2", "named_2"]
    for result in grid:
        link = root / ExperimentDir(root).read_trial_meta(result.trial_id)["trial_dirname"]
        assert link.resolve() == Path(result.path).resolve() and (link / "result.jsonl").exists()


# -- log_to_file, the driver's side ----------------------------------------------------------------------
def test_log_to_file_is_written_into_the_experiment_spec(tmp_path):
    grid = tune.Tuner(named, param_space={"x": 1},
                      run_config=run_config(tmp_path, log_to_file=True)).fit()
    assert ExperimentDir(grid.experiment_path).read_experiment()["log_to_file"] == ["stdout", "stderr"]
    for option, expected in [("both.log", ["both.log", "both.log"]), (("o", "e"), ["o", "e"]),
                             (False, None)]:
        tuner = tune.Tuner(named, run_config=run_config(tmp_path, name="x", log_to_file=option))
        assert tuner._spec()["log_to_file"] == expected


# -- time budgets ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("budget", [3, datetime.timedelta(seconds=3)], ids=["seconds", "timedelta"])
def test_a_time_budget_leaves_unstarted_trials_pending(tmp_path, budget):
    out = io.StringIO()
    reporter = tune.CLIReporter(live=False, out=out, max_report_frequency=60)
    grid = tune.Tuner(
        slow, param_space={"x": tune.uniform(0, 1)},
        tune_config=tune.TuneConfig(num_samples=-1, time_budget_s=budget, max_concurrent_trials=2),
        run_config=run_config(tmp_path, verbose=1, progress_reporter=reporter),
    ).fit()
    statuses = Counter(r.status for r in grid)
    assert statuses["TERMINATED"] >= 1 and statuses["PENDING"] >= 1, statuses
    assert set(statuses) <= {"TERMINATED", "PENDING"}
    assert grid.num_terminated == statuses["TERMINATED"] < len(grid)
    assert all(set(r.metrics) == {"config"} for r in grid if r.status == "PENDING")
    summary = ExperimentDir(grid.experiment_path).read_summary()
    assert summary["status"] == "finished" and summary["by_status"]["PENDING"] == statuses["PENDING"]
    assert f"{statuses['PENDING']} trials never started" in out.getvalue()
    again = tune.ResultGrid.from_path(grid.experiment_path)
    assert again.num_terminated == grid.num_terminated
    assert Counter(r.status for r in again) == statuses


# -- SIGUSR1 ------------------------------------------------------------------------------------------------
DRIVER = """
import sys
sys.path.insert(0, {repo!r})
from hpctune import tune
from tests.e2e import trainables
grid = tune.Tuner(
    trainables.checkpointed_counter,
    param_space={{"x": tune.grid_search(list(range(3))), "iterations": 20, "sleep": 0.3}},
    tune_config=tune.TuneConfig(max_concurrent_trials=2),
    run_config=tune.RunConfig(name="usr1", storage_path={storage!r}, verbose=0),
).fit()
print("RESULTS", len(grid))
"""


def test_sigusr1_stops_the_driver_gracefully(tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(DRIVER.format(repo=str(REPO_ROOT), storage=str(tmp_path))))
    driver = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env={**os.environ, "HPCTUNE_BACKEND": "local"})
    def running():
        trials = trials_of(tmp_path / "usr1")
        return any(t["num_results"] >= 1 for t in trials)

    try:
        wait_for(running, timeout=60, what="a trial's first result")
        driver.send_signal(signal.SIGUSR1)
        out, err = driver.communicate(timeout=60)
    finally:
        driver.kill()
    assert driver.returncode in (0, 130), err
    assert "RESULTS 3" in out and "interrupted" in err
    summary = json.loads((tmp_path / "usr1" / "summary.json").read_text())
    assert summary["status"] == "interrupted"


# -- tune.run ----------------------------------------------------------------------------------------------------
def test_tune_run_returns_an_experiment_analysis(tmp_path, capsys):
    tune.register_trainable("nested_by_name", nested)
    analysis = tune.run(
        "nested_by_name", config={"x": tune.grid_search([1, 2, 3])}, metric="val/acc", mode="max",
        stop={"training_iteration": 2}, resources_per_trial={"cpu": 1}, storage_path=str(tmp_path),
        name="run", verbose=2, sync_config=tune.SyncConfig(), keep_checkpoints_num=2)
    assert isinstance(analysis, tune.ExperimentAnalysis)
    assert analysis.best_config == {"x": 3} and analysis.best_result["val"] == {"acc": pytest.approx(0.6)}
    assert analysis.best_result["training_iteration"] == 2
    assert analysis.best_logdir == analysis.best_trial.path
    assert sorted(analysis.dataframe()["val/acc"]) == pytest.approx([0.2, 0.4, 0.6])
    assert sorted(analysis.results_df["config/x"] if "config/x" in analysis.results_df else
                  analysis.dataframe()["config/x"]) == [1, 2, 3]
    assert analysis.experiment_path == str(tmp_path / "run")
    assert capsys.readouterr().out.count("completed after 2 iterations") == 3  # verbose=2


def test_tune_run_raises_on_failed_trials_unless_told_not_to(tmp_path):
    kwargs = {"config": {"x": tune.grid_search([-1, 1])}, "storage_path": str(tmp_path), "verbose": 0}
    with pytest.raises(TuneError, match="(?s)Trials did not complete.*negative x=-1"):
        tune.run(fails_for_negative, name="raises", **kwargs)
    analysis = tune.run(fails_for_negative, name="quiet", raise_on_failed_trial=False, **kwargs)
    assert Counter(t.status for t in analysis.trials) == {"ERROR": 1, "TERMINATED": 1}


# -- nested metrics ----------------------------------------------------------------------------------------------
def test_a_nested_metric_is_named_the_same_everywhere(tmp_path):
    tuner = tune.Tuner(
        nested, param_space={"x": tune.grid_search([1, 2, 3, 4]), "steps": 4},
        tune_config=tune.TuneConfig(metric="val/acc", mode="max", max_concurrent_trials=4,
                                    scheduler=tune.schedulers.ASHAScheduler(max_t=4, grace_period=4)),
        run_config=run_config(tmp_path, stop={"val/acc": 0.6}),
    )
    grid = tuner.fit()
    assert grid.num_errors == 0, [str(e) for e in grid.errors]
    best = grid.get_best_result()
    assert best.config["x"] == 4 and best.metrics["val"]["acc"] == pytest.approx(0.8)  # stopped at 0.6+
    assert grid.get_best_result(metric="val/acc", mode="min").config["x"] == 1
    assert sorted(grid.get_dataframe()["val/acc"]) == pytest.approx([0.4, 0.6, 0.6, 0.8])
    assert tuner.get_results() is grid
    restored = tune.Tuner.restore(grid.experiment_path, nested).get_results()
    assert restored.get_best_result().config["x"] == 4


# -- a scheduler written to Ray's signatures ------------------------------------------------------------------------
class StopAfterFirst(TrialScheduler):
    def on_trial_result(self, tune_controller, trial, result):
        assert trial.trial_id in {t.trial_id for t in tune_controller.get_trials()}
        return "STOP" if result["val/acc"] > 0 else "CONTINUE"


def test_a_ray_style_scheduler_decides(tmp_path):
    grid = tune.Tuner(nested, param_space={"x": tune.grid_search([1, 2]), "steps": 20},
                      tune_config=tune.TuneConfig(scheduler=StopAfterFirst()),
                      run_config=run_config(tmp_path)).fit()
    assert grid.num_terminated == 2
    assert all(r.metrics["training_iteration"] < 20 for r in grid)


# -- callbacks: checkpoints and state ----------------------------------------------------------------------------------
class CheckpointCounter(tune.Callback):
    def __init__(self):
        self.saved, self.checkpoints, self.state = 0, [], None

    def on_trial_save(self, iteration, trials, trial, **info):
        self.saved += 1

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        self.checkpoints.append(Path(checkpoint.path).name)

    def get_state(self):
        return {"checkpoints": len(self.checkpoints)}

    def set_state(self, state):
        self.state = state


def test_callbacks_hear_of_checkpoints_and_their_state_is_restored(tmp_path):
    callback = CheckpointCounter()
    grid = tune.Tuner(trainables.checkpointed_counter, param_space={"iterations": 3, "sleep": 0.05},
                      run_config=run_config(tmp_path, callbacks=[callback])).fit()
    assert grid.num_terminated == 1
    assert callback.saved == 3
    assert callback.checkpoints == ["checkpoint_000001", "checkpoint_000002", "checkpoint_000003"]
    assert load_driver_state(ExperimentDir(grid.experiment_path))["callbacks"] == [{"checkpoints": 3}]
    tuner = tune.Tuner.restore(grid.experiment_path, trainables.checkpointed_counter)
    tuner.fit()
    assert tuner.run_config.callbacks[0].state == {"checkpoints": 3}


# -- searcher state after a ConcurrencyLimiter ----------------------------------------------------------------------------
class Counting(Searcher):
    def __init__(self):
        super().__init__()
        self.n = 0

    def suggest(self, trial_id):
        self.n += 1
        return {"x": self.n, "steps": 1}

    def get_state(self):
        return {"n": self.n}

    def set_state(self, state):
        self.n = state["n"]


def test_restore_from_dir_after_a_concurrency_limiter(tmp_path):
    grid = tune.Tuner(nested, tune_config=tune.TuneConfig(
        search_alg=ConcurrencyLimiter(Counting(), max_concurrent=1), num_samples=2),
        run_config=run_config(tmp_path)).fit()
    assert sorted(r.config["x"] for r in grid) == [1, 2]
    searcher = Counting()
    searcher.restore_from_dir(grid.experiment_path)
    assert searcher.n == 2


def test_fail_fast_leaves_the_trials_it_never_started_pending(tmp_path):
    grid = tune.Tuner(fails_for_negative, param_space={"x": tune.grid_search([-1, 1, 2, 3])},
                      tune_config=tune.TuneConfig(max_concurrent_trials=1),
                      run_config=run_config(tmp_path, failure_config=tune.FailureConfig(fail_fast=True))).fit()
    assert Counter(r.status for r in grid) == {"ERROR": 1, "PENDING": 3}
    assert grid.num_terminated == 0 and grid.num_errors == 1
