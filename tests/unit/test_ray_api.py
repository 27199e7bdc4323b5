"""Ray Tune scripts run unchanged and right: the Tuner and results side (issue 17), pure parts.

ExperimentAnalysis and ResultGrid on a synthetic experiment directory, nested metrics
flattened, the scheduler bridge (Ray's signatures), reporters, callbacks, option validation,
``tune.run``'s keyword mapping, trial names, ``log_to_file``'s redirection, SIGUSR1.
"""

from __future__ import annotations

import datetime
import io
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hpctune import tune
from hpctune.config import RunConfig, SyncConfig, TuneConfig, budget_seconds
from hpctune.controller.bridge import FlatResults, bridge_scheduler
from hpctune.controller.snapshot import interrupt_flag
from hpctune.controller.trial_names import TrialNamer, safe_name, unique
from hpctune.core.metrics import best_trial
from hpctune.display.reporter import CLIReporter
from hpctune.display.table import best_line, infer_columns, trial_row
from hpctune.display.view import StatusView
from hpctune.errors import ConfigError, HpctuneError, TrainableError
from hpctune.results.analysis import ExperimentAnalysis
from hpctune.storage.events import EventKind, new_event
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.result_log import ResultLog
from hpctune.tune.callback import Callback, CallbackList, TrialProgressPrinter
from hpctune.tune.experiment.trial import Trial, TrialStatus
from hpctune.tune.schedulers.trial_scheduler import (
    Decision,
    FIFOScheduler,
    TrialScheduler,
    ray_style_hooks,
)
from hpctune.tune.search.concurrency_limiter import ConcurrencyLimiter
from hpctune.tune.search.searcher import Searcher
from hpctune.tune.tune_run import _checkpoint_config, _restore_target
from hpctune.worker.output import output_files

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "api.md"


# -- a synthetic experiment ------------------------------------------------------------------------
def make_experiment(root: Path, accs=((0.1, 0.5, 0.3), (0.2, 0.4, 0.6))) -> ExperimentDir:
    """Two trials reporting ``{"val": {"acc": a}, "loss": -a}``, a checkpoint at iterations 1 and 2."""
    exp = ExperimentDir(root)
    exp.create()
    exp.write_experiment({"metric": "val/acc", "mode": "max"})
    for n, curve in enumerate(accs):
        trial_id = f"abc_{n:05d}"
        exp.write_params(trial_id, {"x": n, "opt": {"lr": 0.1 * (n + 1)}})
        exp.write_trial_meta(trial_id, {"trial_id": trial_id, "experiment_tag": f"{n}_x={n}"})
        log = ResultLog(exp.result_log_path(trial_id))
        log.append(new_event(EventKind.START, trial_id=trial_id, slurm_job_id=f"local-{n}", time=1.0))
        for i, acc in enumerate(curve, start=1):
            event = new_event(EventKind.RESULT, trial_id=trial_id, time=1.0 + i, result={
                "val": {"acc": acc}, "loss": -acc, "training_iteration": i, "trial_id": trial_id})
            if i < 3:
                ckpt = exp.trial_dir(trial_id) / f"checkpoint_{i:06d}"
                ckpt.mkdir()
                event["checkpoint"] = ckpt.name
            log.append(event)
        log.append(new_event(EventKind.COMPLETE, trial_id=trial_id, time=9.0))
    return exp


@pytest.fixture
def experiment(tmp_path):
    return make_experiment(tmp_path / "exp")


# -- nested metrics -------------------------------------------------------------------------------------
def test_metric_analysis_and_best_trial_use_flattened_names():
    trial = Trial("t1", {"x": 1}, "", "/nowhere")
    trial.record_result({"val": {"acc": 0.5}, "training_iteration": 1})
    trial.record_result({"val": {"acc": 0.7}, "training_iteration": 2})
    assert trial.metric_analysis["val/acc"]["max"] == 0.7
    assert trial.metric_analysis["val/acc"]["avg"] == pytest.approx(0.6)
    other = Trial("t2", {"x": 2}, "", "/nowhere", last_result={"val": {"acc": 0.9}})  # no analysis
    assert best_trial([trial, other], "val/acc", "max") is other
    assert best_trial([trial, other], "val/acc", "max", scope="avg") is trial


def test_result_grid_reads_nested_metrics_by_name(experiment):
    grid = tune.ResultGrid.from_path(experiment.root)
    best = grid.get_best_result(metric="val/acc", mode="max")
    assert best.config["x"] == 1 and best.metrics["val"] == {"acc": 0.6}
    assert grid.get_best_result().config["x"] == 1  # the experiment's own metric/mode
    assert grid.get_best_result(scope="all").config["x"] == 1
    df = grid.get_dataframe()
    assert sorted(df["val/acc"]) == [0.3, 0.6] and sorted(df["config/opt/lr"]) == pytest.approx([0.1, 0.2])
    best_rows = grid.get_dataframe(filter_metric="val/acc", filter_mode="max")
    assert sorted(best_rows["val/acc"]) == [0.5, 0.6]
    assert list(best.metrics_dataframe["val/acc"]) == [0.2, 0.4, 0.6]
    assert best.log_dir == Path(best.path)
    assert [c.path.endswith(n) for c, n in zip(
        [c for c, _ in best.best_checkpoints], ["checkpoint_000001", "checkpoint_000002"], strict=True)]


def test_result_delimiter_from_the_environment(experiment, monkeypatch):
    monkeypatch.setenv("TUNE_RESULT_DELIM", ".")
    df = tune.ResultGrid.from_path(experiment.root).get_dataframe()
    assert "val.acc" in df and "config.opt.lr" in df
    assert "val.acc" in ExperimentAnalysis(experiment.root).results_df


# -- ExperimentAnalysis ---------------------------------------------------------------------------------
def test_experiment_analysis_has_rays_properties(experiment):
    analysis = ExperimentAnalysis(experiment.root)
    assert analysis.experiment_path == str(experiment.root)
    assert len(analysis.trials) == 2 and analysis.best_config["x"] == 1
    assert analysis.best_trial.trial_id == "abc_00001"
    assert analysis.best_result["val"]["acc"] == 0.6
    assert analysis.best_logdir == analysis.best_trial.path
    assert list(analysis.best_result_df.index) == ["abc_00001"]
    assert analysis.best_result_df["val/acc"].iloc[0] == 0.6
    assert analysis.results["abc_00000"]["loss"] == -0.3
    assert list(analysis.results_df.index) == ["abc_00000", "abc_00001"]
    assert set(analysis.trial_dataframes) == {"abc_00000", "abc_00001"}
    assert list(analysis.trial_dataframes["abc_00000"]["val/acc"]) == [0.1, 0.5, 0.3]
    last = analysis.dataframe()
    assert sorted(last["val/acc"]) == [0.3, 0.6] and "config/x" in last and "logdir" in last
    best_rows = analysis.dataframe(metric="val/acc", mode="max")
    assert sorted(best_rows["val/acc"]) == [0.5, 0.6]
    # scope "all": trial 0 reached 0.5, trial 1 0.6; by "min" of loss under "last"
    assert analysis.get_best_trial("val/acc", "max", scope="all").trial_id == "abc_00001"
    assert analysis.get_best_trial("loss", "min").trial_id == "abc_00001"
    assert analysis.get_best_config("loss", "max")["x"] == 0
    configs = analysis.get_all_configs()
    assert configs[analysis.trials[0].path] == {"x": 0, "opt": {"lr": 0.1}}
    assert analysis.get_all_configs(prefix=True)[analysis.trials[0].path]["config/opt/lr"] == 0.1


def test_experiment_analysis_checkpoints(experiment):
    analysis = ExperimentAnalysis(experiment.root)
    trial = analysis.trials[0]  # acc 0.1 at checkpoint 1, 0.5 at checkpoint 2
    paths = analysis.get_trial_checkpoints_paths(trial, "val/acc")
    assert [(Path(p).name, v) for p, v in paths] == [("checkpoint_000001", 0.1), ("checkpoint_000002", 0.5)]
    assert [Path(p).name for p, _ in analysis.get_trial_checkpoints_paths(trial.trial_id)] == [
        "checkpoint_000001", "checkpoint_000002"]
    assert Path(analysis.get_best_checkpoint(trial, "val/acc", "min").path).name == "checkpoint_000001"
    assert Path(analysis.get_best_checkpoint(trial.path).path).name == "checkpoint_000002"  # default metric
    assert Path(analysis.best_checkpoint.path).parent.name == "abc_00001"
    assert Path(analysis.get_last_checkpoint(trial).path).name == "checkpoint_000002"
    with pytest.raises(ConfigError, match="No trial"):
        analysis.get_best_checkpoint("nope")


def test_experiment_analysis_without_defaults_says_how(experiment):
    analysis = ExperimentAnalysis(experiment.root, trials=tune.ResultGrid.from_path(experiment.root)._trials)
    with pytest.raises(ConfigError, match="pass a `metric` and `mode` to tune.run"):
        analysis.best_trial  # noqa: B018
    assert analysis.get_best_trial("val/acc", "max").trial_id == "abc_00001"
    with pytest.raises(ConfigError, match="scope"):
        analysis.get_best_trial("val/acc", "max", scope="best")


# -- Trial, reporters, status table ------------------------------------------------------------------------
def test_trial_has_rays_status_constants_and_name():
    assert Trial.PENDING == "PENDING" and Trial.TERMINATED is TrialStatus.TERMINATED
    trial = Trial("t1", {}, "", "/d", status=TrialStatus.TERMINATED)
    assert trial.status == Trial.TERMINATED and str(trial) == "t1" and trial.logdir == "/d"
    trial.trial_name = "lr=0.1"
    assert str(trial) == "lr=0.1" and trial.name == "lr=0.1"
    assert Trial.from_dict(trial.to_dict()).trial_name == "lr=0.1"


def test_trial_is_finished_is_rays_method_and_default_names_are_rays():
    """Ray: ``Trial.is_finished()`` is a method; ``str(trial)`` is ``<trainable>_<trial_id>``."""
    ended = Trial("abc_00000", {}, "", "/d", status=TrialStatus.ERROR, trainable_name="train_fn")
    running = Trial("abc_00001", {}, "", "/d", status=TrialStatus.RUNNING, trainable_name="train_fn")
    assert ended.is_finished() is True and running.is_finished() is False
    assert ended.is_finished and not running.is_finished  # hpctune's flag reading still works
    assert str(ended) == "train_fn_abc_00000" and ended.name == "train_fn_abc_00000"


def test_experiment_analysis_stats_and_runner_data(experiment):
    experiment.write_experiment({"metric": "val/acc", "mode": "max", "trainable": "train_fn", "created": 100.0})
    analysis = ExperimentAnalysis(str(experiment.root))
    assert analysis.stats() == {"start_time": 100.0, "timestamp": None, "status": None, "num_trials": 2,
                                "by_status": {"TERMINATED": 2}}
    assert analysis.runner_data()["trainable"] == "train_fn" and analysis.runner_data()["mode"] == "max"


def test_experiment_analysis_of_a_path_keeps_trial_name_creator_names(experiment):
    experiment.write_experiment({"metric": "val/acc", "mode": "max", "trainable": "train_fn"})
    experiment.write_trial_meta("abc_00000", {**experiment.read_trial_meta("abc_00000"), "trial_name": "lr=0.1"})
    analysis = ExperimentAnalysis(str(experiment.root))
    assert sorted(str(t) for t in analysis.trials) == ["lr=0.1", "train_fn_abc_00001"]


def test_cli_reporter_takes_metric_columns_positionally():
    reporter = CLIReporter(["acc"], ["lr"], None, 5)
    trial = Trial("t1", {"lr": 0.1, "b": 2}, "", "/d", last_result={"acc": 0.5, "loss": 1})
    columns = reporter.columns(StatusView([trial]))
    assert columns.metrics == {"acc": "acc"} and columns.params == {"lr": "lr"}


def test_status_table_shows_names_and_nested_metrics():
    trial = Trial("t1", {"lr": 0.1}, "", "/d", last_result={"val": {"acc": 0.5}}, trial_name="lr=0.1")
    trial.record_result({"val": {"acc": 0.5}})
    assert "val/acc=0.5" in best_line([trial], "val/acc", "max") and "lr=0.1 with" in best_line(
        [trial], "val/acc", "max")
    columns = infer_columns([trial], "val/acc", None, None)
    row = trial_row(trial, columns)
    assert row[0] == "lr=0.1" and "0.5" in row


# -- the scheduler bridge -----------------------------------------------------------------------------------
class RayStyle(TrialScheduler):
    """Written to Ray's signatures."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_trial_add(self, tune_controller, trial):
        self.seen.append(("add", trial.trial_id, len(tune_controller.get_trials())))

    def on_trial_result(self, tune_controller, trial, result):
        self.seen.append(("result", trial.status, result["val/acc"]))
        return "STOP" if result["val/acc"] > 0.5 else TrialScheduler.CONTINUE

    def on_trial_complete(self, tune_controller, trial, result):
        self.seen.append(("complete", result["val/acc"]))


class FakeController:
    def __init__(self, trials):
        self.trials = {t.trial_id: t for t in trials}
        self.trial_list = list(trials)
        self.live_trials = list(trials)


def test_ray_signature_is_detected_once_and_adapted():
    scheduler = RayStyle()
    assert ray_style_hooks(scheduler) == {"on_trial_add", "on_trial_result", "on_trial_complete"}
    assert ray_style_hooks(FIFOScheduler()) == frozenset()
    trial = Trial("t1", {"x": 1}, "", "/d", status=TrialStatus.RUNNING)
    bridge = bridge_scheduler(scheduler, trainable_name="train")
    assert type(bridge).__name__ == "RayStyle"
    bridge.bind(FakeController([trial]))
    bridge.on_trial_add(trial.info)
    assert bridge.on_trial_result(trial.info, {"val": {"acc": 0.4}}) is Decision.CONTINUE
    assert bridge.on_trial_result(trial.info, {"val": {"acc": 0.6}}) is Decision.STOP
    bridge.on_trial_complete(trial.info, {"val": {"acc": 0.6}})
    assert scheduler.seen == [("add", "t1", 1), ("result", "RUNNING", 0.4), ("result", "RUNNING", 0.6),
                              ("complete", 0.6)]
    assert trial.trainable_name == "train"


def test_our_signature_and_bad_decisions(monkeypatch):
    class Ours(TrialScheduler):
        def __init__(self, answer):
            super().__init__(metric="acc", mode="max")
            self.answer = answer

        def on_trial_result(self, trial, result):
            return self.answer

    trial = Trial("t1", {}, "", "/d")
    assert bridge_scheduler(Ours("PAUSE")).on_trial_result(trial.info, {"acc": 1}) is Decision.PAUSE
    assert bridge_scheduler(Ours(None)).on_trial_result(trial.info, {"acc": 1}) is Decision.CONTINUE
    with pytest.raises(ConfigError, match="CONTINUE, PAUSE or STOP"):
        bridge_scheduler(Ours("KILL")).on_trial_result(trial.info, {"acc": 1})
    monkeypatch.setenv("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
    assert bridge_scheduler(Ours("STOP")).on_trial_result(trial.info, {"other": 1}) is Decision.CONTINUE


def test_searcher_gets_flattened_results_when_trials_end():
    class Recorder(Searcher):
        def __init__(self):
            super().__init__()
            self.ended = []

        def suggest(self, trial_id):
            return {}

        def on_trial_complete(self, trial_id, result=None, error=False):
            self.ended.append(result)

        def get_state(self):
            return {"ended": len(self.ended)}

    inner = Recorder()
    wrapped = FlatResults(inner)
    wrapped.on_trial_complete("t1", {"val": {"acc": 1}})
    wrapped.on_trial_stopped_early("t2", None)
    assert inner.ended == [{"val/acc": 1}, None] and wrapped.get_state() == {"ended": 2}


# -- callbacks ------------------------------------------------------------------------------------------------
class Stateful(Callback):
    def __init__(self):
        self.events, self.restored = [], None

    def on_trial_restore(self, iteration, trials, trial, **info):
        self.events.append("restore")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.events.append(f"result {result['training_iteration']}")

    def on_trial_save(self, iteration, trials, trial, **info):
        self.events.append("save")

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        self.events.append(f"checkpoint {Path(checkpoint.path).name}")

    def get_state(self):
        return {"n": len(self.events)}

    def set_state(self, state):
        self.restored = state


def test_callbacks_hear_of_checkpoints_and_restores_and_keep_state():
    callback = Stateful()
    hooks = CallbackList([callback, object()])  # a callback without hooks is skipped
    trial = Trial("t1", {}, "", "/d")
    base = {"hostname": "n1", "pid": 1, "slurm_job_id": "7_1"}
    trial.checkpoint = "checkpoint_000001"
    hooks.result_hooks(0, [trial], trial, {**base, "training_iteration": 1, "iterations_since_restore": 1})
    hooks.result_hooks(0, [trial], trial, {**base, "training_iteration": 2, "iterations_since_restore": 2})
    rerun = {**base, "pid": 2, "training_iteration": 3, "iterations_since_restore": 2}  # resumed from 1
    hooks.result_hooks(0, [trial], trial, rerun)
    assert callback.events == ["result 1", "save", "checkpoint checkpoint_000001", "result 2",
                               "restore", "result 3"]
    states = hooks.get_state()
    assert states == [{"n": 6}, None]
    fresh = Stateful()
    CallbackList([fresh, object()]).set_state(states)
    assert fresh.restored == {"n": 6}


def test_verbose_levels_print_trial_progress():
    out = io.StringIO()
    printer = TrialProgressPrinter(3, out=out, interval_s=0)
    trial = Trial("t1", {}, "", "/d", last_result={"acc": 0.5, "training_iteration": 2})
    printer.on_trial_result(0, [trial], trial, {"acc": 0.5, "training_iteration": 2, "pid": 3})
    printer.on_trial_complete(0, [trial], trial)
    trial.error = "Traceback ...\nValueError: bad"
    printer.on_trial_error(0, [trial], trial)
    text = out.getvalue()
    assert "Result for t1: acc=0.5" in text and "pid" not in text
    assert "Trial t1 completed after 2 iterations" in text and "ValueError: bad" in text


# -- options -------------------------------------------------------------------------------------------------
def test_time_budget_takes_a_timedelta():
    assert TuneConfig(time_budget_s=datetime.timedelta(minutes=2)).time_budget_s == 120.0
    assert budget_seconds(5) == 5.0 and budget_seconds(None) is None
    for bad in (0, -1, "60", datetime.timedelta(0)):
        with pytest.raises(ConfigError, match="time_budget_s"):
            TuneConfig(time_budget_s=bad)


def test_run_config_validates_rays_options():
    assert RunConfig(log_to_file=True).log_to_file is True
    RunConfig(log_to_file="both.log")
    RunConfig(log_to_file=("out.log", "err.log"))
    for bad in (("a",), 3, "bad\nname", ("a", "")):
        with pytest.raises(ConfigError, match="log_to_file"):
            RunConfig(log_to_file=bad)
    assert output_files(False) is None and output_files(True) == ["stdout", "stderr"]
    assert output_files("x.log") == ["x.log", "x.log"] and output_files(("o", "e")) == ["o", "e"]
    for level in range(4):
        assert RunConfig(verbose=level).verbose == level
    for bad in (4, -1, "loud", True):
        with pytest.raises(ConfigError, match="verbose"):
            RunConfig(verbose=bad)
    with pytest.raises(ConfigError, match="trial_name_creator"):
        TuneConfig(trial_name_creator="name")
    assert RunConfig(local_dir="/scratch/x").storage_path == "/scratch/x"
    with pytest.raises(ConfigError, match="storage_path only"):
        RunConfig(local_dir="/a", storage_path="/b")


def test_accepted_ray_options_say_once_that_they_do_nothing(capsys, monkeypatch):
    from hpctune.config import ray_env as ray_compat

    monkeypatch.setattr(ray_compat, "_SHOWN", set())
    monkeypatch.setenv("HPCTUNE_BACKEND", "local")
    for _ in range(2):
        tune.Tuner(lambda config: None, tune_config=TuneConfig(reuse_actors=True),
                   run_config=RunConfig(sync_config=SyncConfig()))
    err = capsys.readouterr().err
    assert err.count("reuse_actors=True) has no effect with the local backend") == 1
    assert err.count("nothing to sync") == 1


# -- tune.run, Tuner, registry --------------------------------------------------------------------------------
def test_tune_run_refuses_ray_only_keywords_by_name():
    with pytest.raises(ConfigError) as info:
        tune.run(lambda config: None, export_formats=["h5"], storage_filesystem=None, frobnicate=1)
    text = str(info.value)
    assert "export_formats: model export" in text and "storage_filesystem" in text
    assert "frobnicate: not a parameter of tune.run" in text
    with pytest.raises(ConfigError, match="chdir_to_trial_dir: set HPCTUNE_CHDIR_TO_TRIAL_DIR"):
        tune.Experiment("e", lambda config: None, chdir_to_trial_dir=False)


def test_tune_run_maps_rays_older_checkpoint_and_resume_keywords(tmp_path):
    config = _checkpoint_config(None, 2, "min-loss", 3, True)
    assert (config.num_to_keep, config.checkpoint_score_attribute, config.checkpoint_score_order,
            config.checkpoint_frequency, config.checkpoint_at_end) == (2, "loss", "min", 3, True)
    with pytest.raises(ConfigError, match="not both"):
        _checkpoint_config(tune.CheckpointConfig(), 2, None, 0, False)
    run_config = RunConfig(name="e", storage_path=str(tmp_path))
    assert _restore_target(None, None, run_config) == (None, {
        "resume_unfinished": True, "resume_errored": False, "restart_errored": False})
    assert _restore_target(None, "AUTO", run_config)[0] is None  # nothing there yet: start it
    with pytest.raises(ConfigError, match="holds no experiment"):
        _restore_target(None, True, run_config)
    path, flags = _restore_target(str(tmp_path), "ERRORED_ONLY", run_config)
    assert path == str(tmp_path) and flags == {"resume_unfinished": False, "resume_errored": True,
                                               "restart_errored": False}
    with pytest.raises(ConfigError, match="REMOTE"):
        _restore_target(None, "REMOTE", run_config)


def test_registered_trainables_are_found_by_name(monkeypatch):
    monkeypatch.setenv("HPCTUNE_BACKEND", "local")

    def my_objective(config):
        return None

    tune.register_trainable("my_objective_by_name", my_objective)
    tuner = tune.Tuner("my_objective_by_name")
    assert tuner.trainable is my_objective and tuner._trainable_name() == "my_objective_by_name"
    with pytest.raises(TrainableError, match="register_trainable"):
        tune.Tuner("never_registered")
    with pytest.raises(HpctuneError, match="call tuner.fit"):
        tuner.get_results()


# -- searcher state after a ConcurrencyLimiter -------------------------------------------------------------------
class Counting(Searcher):
    def __init__(self):
        super().__init__()
        self.n = 0

    def suggest(self, trial_id):
        self.n += 1
        return {"n": self.n}

    def get_state(self):
        return {"n": self.n}

    def set_state(self, state):
        self.n = state["n"]


def test_restore_from_dir_after_a_concurrency_limiter(tmp_path):
    limiter = ConcurrencyLimiter(Counting(), max_concurrent=2)
    limiter.suggest("a")
    limiter.suggest("b")
    limiter.save_to_dir(tmp_path)  # what the driver does in the experiment directory
    plain = Counting()
    plain.restore_from_dir(tmp_path)
    assert plain.n == 2
    again = ConcurrencyLimiter(Counting(), max_concurrent=2)
    again.restore_from_dir(tmp_path)
    assert again.searcher.n == 2
    legacy = ConcurrencyLimiter(Counting(), max_concurrent=2)  # a limiter state, as hpctune 0.1 wrote
    legacy.set_state({"live_trials": {"a"}, "cached_results": {}, "searcher": {"n": 5}})
    assert legacy.live_trials == {"a"} and legacy.searcher.n == 5
    limiter.save(tmp_path / "whole.pkl")  # a file keeps the limiter's whole state
    whole = ConcurrencyLimiter(Counting(), max_concurrent=2)
    whole.restore(tmp_path / "whole.pkl")
    assert whole.live_trials == {"a", "b"} and whole.suggest("c") is None


# -- trial names -------------------------------------------------------------------------------------------------
def test_trial_names_are_safe_and_unique(tmp_path):
    assert safe_name("a/b\n\x00c", "t1") == "a_b__c" and safe_name("..", "t1") == "t1"
    assert safe_name(" ", "t1") == "t1" and len(safe_name("x" * 300, "t", 130)) == 130
    taken = {"a"}
    assert unique("a", taken) == "a_2" and unique("a", taken) == "a_3"
    exp = ExperimentDir(tmp_path / "exp")
    exp.create()
    namer = TrialNamer(exp, lambda t: f"lr={t.config['lr']}", lambda t: "trials")
    first, second = (Trial(f"id{n}", {"lr": 0.1}, "", str(exp.trial_dir(f"id{n}"))) for n in range(2))
    for trial in (first, second):
        exp.write_params(trial.trial_id, trial.config)
        exp.write_trial_meta(trial.trial_id, {"trial_id": trial.trial_id})
        namer.name(trial, [first, second])
    assert (first.trial_name, second.trial_name) == ("lr=0.1", "lr=0.1_2")
    assert (first.dirname, second.dirname) == ("trials_2", "trials_3")  # "trials" is the experiment's
    assert (exp.root / "trials_3").resolve() == exp.trial_dir("id1").resolve()
    assert exp.read_trial_meta("id1") == {"trial_id": "id1", "trial_name": "lr=0.1_2",
                                          "trial_dirname": "trials_3"}
    broken = TrialNamer(exp, lambda t: 1 / 0)
    with pytest.raises(ConfigError, match="trial_name_creator=...\\) raised ZeroDivisionError"):
        broken.name(Trial("id9", {}, "", str(exp.trial_dir("id9"))), [])


# -- log_to_file: the worker's side --------------------------------------------------------------------------------
@pytest.mark.parametrize("option, files", [(True, {"stdout": "out\n", "stderr": "err\n"}),
                                           ("all.log", {"all.log": "out\nerr\n"}),
                                           (("o.txt", "logs/e.txt"), {"o.txt": "out\n", "logs/e.txt": "err\n"})])
def test_redirect_output_sends_both_streams_to_the_files(tmp_path, option, files):
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(REPO)!r})
        from hpctune.worker.output import redirect_output, output_files
        redirect_output({str(tmp_path)!r}, {{"log_to_file": output_files({option!r})}})
        print("out", flush=True)
        os.write(2, b"err\\n")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == "", proc.stderr
    for name, text in files.items():
        assert (tmp_path / name).read_text() == text
        assert (tmp_path / name).stat().st_mode & 0o077 == 0


# -- signals ------------------------------------------------------------------------------------------------------------
def test_sigusr1_stops_like_ctrl_c_unless_someone_else_handles_it(monkeypatch):
    with interrupt_flag() as flag:
        os.kill(os.getpid(), signal.SIGUSR1)
        assert flag.wait(5)
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL
    seen = []
    previous = signal.signal(signal.SIGUSR1, lambda *a: seen.append(1))
    try:
        with interrupt_flag() as flag:
            os.kill(os.getpid(), signal.SIGUSR1)
            assert not flag.wait(0.2) and seen == [1]  # a detached driver's requeue handler stays
    finally:
        signal.signal(signal.SIGUSR1, previous)
    monkeypatch.setenv("TUNE_DISABLE_SIGINT_HANDLER", "1")
    before = signal.getsignal(signal.SIGINT)
    with interrupt_flag():
        assert signal.getsignal(signal.SIGINT) is before


# -- the docs -----------------------------------------------------------------------------------------------------------
RAY_ENV_VARS = [
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "TUNE_DISABLE_AUTO_INIT", "TUNE_DISABLE_DATED_SUBDIR",
    "TUNE_DISABLE_STRICT_METRIC_CHECKING", "TUNE_DISABLE_SIGINT_HANDLER", "TUNE_FORCE_TRIAL_CLEANUP_S",
    "TUNE_FUNCTION_THREAD_TIMEOUT_S", "TUNE_GLOBAL_CHECKPOINT_S", "TUNE_MAX_LEN_IDENTIFIER",
    "TUNE_MAX_PENDING_TRIALS_PG", "TUNE_PLACEMENT_GROUP_PREFIX", "TUNE_PLACEMENT_GROUP_RECON_INTERVAL",
    "TUNE_PRINT_ALL_TRIAL_ERRORS", "TUNE_RESULT_BUFFER_LENGTH", "TUNE_RESULT_DELIM",
    "TUNE_RESULT_BUFFER_MAX_TIME_S", "TUNE_RESULT_BUFFER_MIN_TIME_S", "TUNE_WARN_THRESHOLD_S",
    "TUNE_WARN_INSUFFICENT_RESOURCE_THRESHOLD_S", "TUNE_WARN_INSUFFICENT_RESOURCE_THRESHOLD_S_AUTOSCALER",
    "TUNE_WARN_SLOW_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "TUNE_STATE_REFRESH_PERIOD",
    "TUNE_RESTORE_RETRY_NUM", "RAY_AIR_FULL_TRACEBACKS", "RAY_AIR_NEW_OUTPUT", "RAY_CHDIR_TO_TRIAL_DIR",
]


def test_docs_say_what_each_of_rays_environment_variables_does_here():
    text = DOCS.read_text()
    missing = [name for name in RAY_ENV_VARS if f"`{name}`" not in text]
    assert missing == []


def test_coming_from_ray_tune_table_counts_add_up():
    text = DOCS.read_text()
    section = text[text.index("## Coming from Ray Tune"):]
    section = section[:section.index("\n## ", 3)] if "\n## " in section[3:] else section
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| feature")]
    marks = {"supported": 0, "difference": 0, "n/a": 0, "not yet": 0}
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        if len(cells) < 3 or set(cells[0]) <= {"-", " "} or cells[0].startswith("**"):
            continue
        status = cells[1]
        assert status in marks, row
        marks[status] += 1
    counts = re.search(r"Counts: (\d+) supported, (\d+) supported with a difference, (\d+) not applicable "
                       r"on Slurm, (\d+) not yet", section)
    assert counts, "the table ends with its counts"
    assert [int(n) for n in counts.groups()] == list(marks.values())
    assert sum(marks.values()) >= 150


def test_rays_environment_variables_that_make_sense_here(monkeypatch, tmp_path):
    from hpctune.config.ray_env import apply_ray_env

    monkeypatch.setenv("HPCTUNE_BACKEND", "local")
    monkeypatch.delenv("HPCTUNE_CHDIR_TO_TRIAL_DIR", raising=False)
    monkeypatch.setenv("RAY_CHDIR_TO_TRIAL_DIR", "0")
    apply_ray_env()
    assert os.environ["HPCTUNE_CHDIR_TO_TRIAL_DIR"] == "0"  # the workers inherit it
    monkeypatch.setenv("RAY_CHDIR_TO_TRIAL_DIR", "1")
    apply_ray_env()
    assert os.environ["HPCTUNE_CHDIR_TO_TRIAL_DIR"] == "0"  # ours wins once set

    def train_fn(config):
        return None

    tuner = tune.Tuner(train_fn, run_config=RunConfig(storage_path=str(tmp_path)))
    assert re.fullmatch(r"train_fn_\d{4}-\d\d-\d\d_.*", tuner._default_name())
    monkeypatch.setenv("TUNE_DISABLE_DATED_SUBDIR", "1")
    assert tuner._default_name() == "train_fn"


# -- ray.tune.utils and ray.tune.result (issue 22) --------------------------------------------------
def test_tune_result_has_rays_constants():
    from hpctune.tune import result

    assert (result.SHOULD_CHECKPOINT, result.DONE, result.TRAINING_ITERATION) == (
        "should_checkpoint", "done", "training_iteration")
    assert (result.TIMESTEPS_THIS_ITER, result.EPISODES_THIS_ITER, result.DEFAULT_METRIC) == (
        "timesteps_this_iter", "episodes_this_iter", "_metric")
    assert result.DEFAULT_RESULT_KEYS == ("training_iteration", "time_total_s", "mean_accuracy", "mean_loss")
    assert "config" in result.DEBUG_METRICS and "iterations_since_restore" in result.AUTO_RESULT_KEYS


@pytest.fixture
def fake_nvidia_smi(tmp_path, monkeypatch):
    """An ``nvidia-smi`` on PATH that lists GPU 0 (uses 0 of 1000 MiB) and GPU 1 (600 of 1000)."""
    script = tmp_path / "bin" / "nvidia-smi"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\necho '0, GPU-aaa, 0, 1000'\necho '1, GPU-bbb, 600, 1000'\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")


def test_wait_for_gpu_waits_for_the_trials_gpu_memory(fake_nvidia_smi, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert tune.utils.wait_for_gpu() is True  # the trial's first GPU is free
    assert tune.utils.wait_for_gpu("GPU-aaa") is True
    with pytest.raises(RuntimeError, match="GPU memory was not freed: GPU 1 still uses 60.0%"):
        tune.utils.wait_for_gpu(1, retry=2, delay_s=0)
    assert tune.utils.wait_for_gpu(1, target_util=0.7) is True
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    with pytest.raises(RuntimeError, match="No GPU ids found"):
        tune.utils.wait_for_gpu()


def test_diagnose_serialization_names_the_variable_that_fails(capsys):
    import threading

    from hpctune.tune.utils import diagnose_serialization

    lock = threading.Lock()

    def holds_a_lock(config):
        with lock:
            return {"x": config["x"]}

    def plain(config):
        return {"x": config["x"]}

    assert diagnose_serialization(plain) is True
    assert diagnose_serialization(holds_a_lock) == {"lock"}
    assert "FAIL: lock" in capsys.readouterr().out


class _Counting(tune.Trainable):
    def setup(self, config):
        self.count = 0

    def step(self):
        self.count += 1
        return {"count": self.count}

    def save_checkpoint(self, checkpoint_dir):
        return {"count": self.count}

    def load_checkpoint(self, checkpoint):
        self.count = checkpoint["count"]


class _ForgetsItsState(_Counting):
    def load_checkpoint(self, checkpoint):
        raise ValueError("cannot restore")


def test_validate_save_restore_runs_a_save_and_a_restore():
    from hpctune.tune.utils import validate_save_restore

    assert validate_save_restore(_Counting) is True
    with pytest.raises(ValueError, match="cannot restore"):
        validate_save_restore(_ForgetsItsState)
    with pytest.raises(TrainableError, match="Trainable subclass"):
        validate_save_restore(lambda config: None)
