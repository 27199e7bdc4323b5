"""Bad input, all clear (issue 16): each bad input is refused with our own error, whose message
names the problem (and mostly the fix), and nothing is written for it.

Three tables: the Python API (configs, resources, spaces, stoppers, schedulers, searchers,
reporters, the Tuner), experiment files (TOML and YAML, through `hpctune submit --dry-run`)
and the command line (exit code 1 or 2 and one line on stderr). The Python cases that build a
Tuner also call ``fit()``: the error must come before the experiment directory exists, so no
name is burnt. The last section runs trials (local backend) for the inputs that only show at
run time: report values, a checkpoint that contains the trial, sys.exit(0), step() -> None.
"""

from __future__ import annotations

import datetime
import decimal
import shutil
import threading
from pathlib import Path

import pytest

from hpctune import tune
from hpctune.config import CheckpointConfig, FailureConfig, RunConfig, SlurmConfig, TuneConfig
from hpctune.core.resources import normalize_resources
from hpctune.display.reporter import CLIReporter
from hpctune.errors import ConfigError, SearchSpaceError, TrainableError
from hpctune.tune.schedulers import ASHAScheduler, MedianStoppingRule, create_scheduler
from hpctune.tune.search import BasicVariantGenerator, ConcurrencyLimiter, Repeater, create_searcher
from hpctune.tune.stopper import (
    CombinedStopper,
    ExperimentPlateauStopper,
    MaximumIterationStopper,
    TimeoutStopper,
    TrialPlateauStopper,
)
from hpctune.tune.trainable import with_resources
from tests.unit.cli_env import cli_env, run  # noqa: F401 - cli_env is autouse


def objective(config):
    tune.report({"score": 1})


def fit(trainable=objective, **kwargs):
    """Build and fit a Tuner named "bad" in the test's storage path (the error must come first)."""
    run_config = kwargs.pop("run_config", None) or RunConfig(name="bad", verbose=0)
    return tune.Tuner(trainable, run_config=run_config, **kwargs).fit()


def run_config(**fields):
    return RunConfig(name="bad", verbose=0, **fields)


def mutated(obj, **fields):
    """A config whose fields were set after construction (checked again by fit())."""
    for name, value in fields.items():
        setattr(obj, name, value)
    return obj


class NotATrainable:
    pass


class Hooks:
    def on_trial_result(self, **info):
        pass


C = ConfigError
S = SearchSpaceError
T = TrainableError

API = [
    # -- TuneConfig
    ("num_samples str", lambda: TuneConfig(num_samples="3"), C, "write num_samples=3 (a number, not the string '3')"),
    ("num_samples float", lambda: TuneConfig(num_samples=2.5), C, "`num_samples` must be a whole number"),
    ("num_samples None", lambda: TuneConfig(num_samples=None), C, "TuneConfig(num_samples=None)"),
    ("num_samples bool", lambda: TuneConfig(num_samples=True), C, "`num_samples` must be a whole number"),
    ("num_samples 0", lambda: TuneConfig(num_samples=0), C, "must be >= 1 (or -1"),
    ("num_samples -2", lambda: TuneConfig(num_samples=-2), C, "must be >= 1 (or -1"),
    ("num_samples mutated", lambda: fit(tune_config=mutated(TuneConfig(), num_samples="3")), C,
     "not the string '3'"),
    ("max_concurrent str", lambda: TuneConfig(max_concurrent_trials="2"), C, "write max_concurrent_trials=2"),
    ("max_concurrent float", lambda: TuneConfig(max_concurrent_trials=1.5), C, "must be a whole number"),
    ("max_concurrent 0", lambda: TuneConfig(max_concurrent_trials=0), C, "must be >= 1"),
    ("time_budget str", lambda: TuneConfig(time_budget_s="10"), C, "a number of seconds > 0"),
    ("time_budget -1", lambda: TuneConfig(time_budget_s=-1), C, "a number of seconds > 0"),
    ("time_budget nan", lambda: TuneConfig(time_budget_s=float("nan")), C, "a number of seconds > 0"),
    ("time_budget timedelta 0", lambda: TuneConfig(time_budget_s=datetime.timedelta(0)), C, "> 0"),
    ("mode best", lambda: TuneConfig(mode="best"), C, "must be 'min' or 'max'"),
    ("mode MIN", lambda: TuneConfig(mode="MIN"), C, "must be 'min' or 'max'"),
    ("mode fix", lambda: TuneConfig(mode=1), C, "TuneConfig(mode=1) is not valid: `mode` must be 'min' or 'max'. Fix:"),
    ("metric int", lambda: TuneConfig(metric=5), C, "`metric` must be a string"),
    ("reuse_actors str", lambda: TuneConfig(reuse_actors="yes"), C, "reuse_actors=True or"),
    ("trial_name_creator str", lambda: TuneConfig(trial_name_creator="x"), C, "must be a function"),
    ("scheduler by name", lambda: TuneConfig(scheduler="asha"), C, "tune.create_scheduler('asha')"),
    ("scheduler class", lambda: TuneConfig(scheduler=ASHAScheduler), C, "pass an instance"),
    ("search_alg by name", lambda: TuneConfig(search_alg="optuna"), C, "tune.create_searcher('optuna')"),
    ("search_alg object", lambda: TuneConfig(search_alg=object()), C, "an object with suggest()"),
    ("seed str", lambda: fit(tune_config=TuneConfig(seed="1")), C, "`seed` is '1'"),
    ("metric in both", lambda: fit(tune_config=TuneConfig(metric="score", mode="min", scheduler=ASHAScheduler(
        metric="score", mode="min"))), C, "set them in TuneConfig"),
    ("asha without metric", lambda: fit(tune_config=TuneConfig(scheduler=ASHAScheduler())), C,
     "needs a metric and a mode"),
    # -- RunConfig
    ("name int", lambda: RunConfig(name=5), C, "RunConfig(name=5)"),
    ("name empty", lambda: RunConfig(name=""), C, "it is empty"),
    ("name slash", lambda: RunConfig(name="a/b"), C, "it contains '/'"),
    ("name dotdot", lambda: RunConfig(name=".."), C, "it is '.' or '..'"),
    ("name dash", lambda: RunConfig(name="-x"), C, "it starts with '-'"),
    ("name newline", lambda: RunConfig(name="a\nb"), C, "control character"),
    ("storage int", lambda: RunConfig(storage_path=5), C, "`storage_path` must be a string"),
    ("storage uri", lambda: RunConfig(storage_path="s3://bucket/x"), C, "is a URI"),
    ("storage and local_dir", lambda: RunConfig(storage_path="/a", local_dir="/b"), C, "both storage_path and local_dir"),
    ("verbose 5", lambda: RunConfig(verbose=5), C, "`verbose` is 5"),
    ("verbose str", lambda: RunConfig(verbose="1"), C, "`verbose` is '1'"),
    ("log_to_file int", lambda: RunConfig(log_to_file=5), C, "log_to_file=5"),
    ("callbacks str", lambda: RunConfig(callbacks="x"), C, "callbacks=[MyCallback()]"),
    ("callbacks class", lambda: RunConfig(callbacks=[Hooks]), C, "instances, not classes"),
    ("stop str", lambda: RunConfig(stop="abc"), C, "The value of `stop` is a str"),
    ("stop dict str", lambda: RunConfig(stop={"training_iteration": "10"}), C, "must be a number"),
    ("stop dict key", lambda: RunConfig(stop={1: 10}), C, "keys must be strings"),
    ("stop Stopper class", lambda: RunConfig(stop=MaximumIterationStopper), C, "must be an instance"),
    ("stop mutated", lambda: fit(run_config=mutated(run_config(), stop=5)), C, "The value of `stop` is a int"),
    ("failure_config dict", lambda: RunConfig(failure_config={"max_failures": 3}), C, "failure_config=FailureConfig(...)"),
    ("checkpoint_config dict", lambda: RunConfig(checkpoint_config={"num_to_keep": 1}), C,
     "must be a CheckpointConfig"),
    ("slurm dict", lambda: RunConfig(slurm={"partition": "x"}), C, "`slurm` must be a SlurmConfig"),
    ("keep_jobs str", lambda: RunConfig(keep_jobs_on_interrupt="yes"), C, "keep_jobs_on_interrupt=True"),
    ("progress_reporter str", lambda: fit(run_config=run_config(progress_reporter="x")), C,
     "needs should_report() and report()"),
    # -- FailureConfig
    ("max_failures str", lambda: FailureConfig(max_failures="3"), C, "write max_failures=3"),
    ("max_failures -2", lambda: FailureConfig(max_failures=-2), C, "choose max_failures >= -1"),
    ("max_failures float", lambda: FailureConfig(max_failures=1.5), C, "must be a whole number >= -1"),
    ("max_failures mutated", lambda: fit(run_config=run_config(failure_config=mutated(
        FailureConfig(), max_failures="3"))), C, "write max_failures=3"),
    ("fail_fast str", lambda: FailureConfig(fail_fast="yes"), C, "must be True, False or 'raise'"),
    ("heartbeat str", lambda: FailureConfig(heartbeat_timeout_s="600"), C, "write heartbeat_timeout_s=600.0"),
    ("heartbeat 0", lambda: FailureConfig(heartbeat_timeout_s=0), C, "choose heartbeat_timeout_s > 0"),
    ("heartbeat inf", lambda: FailureConfig(heartbeat_timeout_s=float("inf")), C, "a finite number > 0"),
    ("report_timeout str", lambda: FailureConfig(report_timeout_s="60"), C, "write report_timeout_s=60.0"),
    ("report_timeout -1", lambda: FailureConfig(report_timeout_s=-1), C, "choose report_timeout_s > 0"),
    ("report_timeout bool", lambda: FailureConfig(report_timeout_s=True), C, "report_timeout_s=True"),
    # -- CheckpointConfig
    ("num_to_keep str", lambda: CheckpointConfig(num_to_keep="2"), C, "write num_to_keep=2"),
    ("num_to_keep 0", lambda: CheckpointConfig(num_to_keep=0), C, "must be >= 1 or None"),
    ("score_order best", lambda: CheckpointConfig(checkpoint_score_order="best"), C, "'min' or 'max'"),
    ("score_attribute int", lambda: CheckpointConfig(checkpoint_score_attribute=5), C, "must be a string"),
    ("frequency -1", lambda: CheckpointConfig(checkpoint_frequency=-1), C, "choose checkpoint_frequency >= 0"),
    ("frequency str", lambda: CheckpointConfig(checkpoint_frequency="5"), C, "write checkpoint_frequency=5"),
    ("at_end str", lambda: CheckpointConfig(checkpoint_at_end="yes"), C, "checkpoint_at_end=True or"),
    # -- SlurmConfig
    ("time_min str", lambda: SlurmConfig(time_min="60"), C, "write time_min=60"),
    ("time_min 0", lambda: SlurmConfig(time_min=0), C, "must be >= 1 (minutes)"),
    ("time_min float", lambda: SlurmConfig(time_min=1.5), C, "must be a whole number (minutes)"),
    ("poll str", lambda: SlurmConfig(poll_interval_s="2"), C, "write poll_interval_s=2.0"),
    ("poll 0.1", lambda: SlurmConfig(poll_interval_s=0.1), C, "must be >= 0.2"),
    ("partition newline", lambda: SlurmConfig(partition="gpu\n#SBATCH --x"), C, "control character"),
    ("partition int", lambda: SlurmConfig(partition=5), C, "`partition` must be a string"),
    ("setup str", lambda: SlurmConfig(setup="module load cuda"), C, "must be a list of lines"),
    ("setup int", lambda: SlurmConfig(setup=[1]), C, "must be a list of lines"),
    ("sbatch_options str", lambda: SlurmConfig(sbatch_options="x"), C, "must be a dict of sbatch options"),
    ("sbatch_options key", lambda: SlurmConfig(sbatch_options={"bad key": 1}), C, "not an sbatch option name"),
    ("stop_grace -1", lambda: SlurmConfig(stop_grace_s=-1), C, "choose stop_grace_s >= 0"),
    ("stop_grace str", lambda: SlurmConfig(stop_grace_s="3"), C, "write stop_grace_s=3.0"),
    ("signal_lead -5", lambda: SlurmConfig(signal_lead_s=-5), C, "choose signal_lead_s >= 0"),
    ("max_array_size 0", lambda: SlurmConfig(max_array_size=0), C, "choose max_array_size >= 1"),
    ("use_srun str", lambda: SlurmConfig(use_srun="yes"), C, "use_srun=True or use_srun=False"),
    ("requeue str", lambda: SlurmConfig(requeue="auto"), C, "`requeue` must be True or False"),
    ("slurm mutated", lambda: fit(slurm_config=mutated(SlurmConfig(), time_min="60")), C, "write time_min=60"),
    # -- resources
    ("cpu str", lambda: normalize_resources({"cpu": "2"}), C, "write {'cpu': 2} without quotes"),
    ("cpu -1", lambda: normalize_resources({"cpu": -1}), C, "resource `cpu` is -1"),
    ("cpu nan", lambda: normalize_resources({"cpu": float("nan")}), C, "must be a finite number"),
    ("cpu inf", lambda: normalize_resources({"cpu": float("inf")}), C, "must be a finite number"),
    ("cpu bool", lambda: normalize_resources({"cpu": True}), C, "resource `cpu` is True"),
    ("gpu str", lambda: normalize_resources({"gpu": "1"}), C, "write {'gpu': 1} without quotes"),
    ("gpu 1.5", lambda: normalize_resources({"gpu": 1.5}), C, "gpu=1.5"),
    ("gpu -1", lambda: normalize_resources({"gpu": -1}), C, "must be a whole number >= 0"),
    ("mem tiny", lambda: normalize_resources({"mem_gb": 0.0004}), C, "at least 1 MB (mem_gb >= 0.001)"),
    ("mem negative", lambda: normalize_resources({"mem_gb": -4}), C, "at least 1 MB"),
    ("mem zero", lambda: normalize_resources({"mem_gb": 0}), C, "--mem=0 as all of a node's memory"),
    ("mem str", lambda: normalize_resources({"mem_gb": "8"}), C, "write {'mem_gb': 8} without quotes"),
    ("memory bytes tiny", lambda: normalize_resources({"memory": 100}), C, "memory >= 1048576 bytes"),
    ("nodes 0", lambda: normalize_resources({"nodes": 0}), C, "resource `nodes` is 0"),
    ("nodes 1.5", lambda: normalize_resources({"nodes": 1.5}), C, "must be a whole number >= 1"),
    ("tasks_per_node 0", lambda: normalize_resources({"tasks_per_node": 0}), C, "`tasks_per_node` is 0"),
    ("custom resource", lambda: normalize_resources({"custom_accel": 1}), C, "SlurmConfig(constraint="),
    ("resources str", lambda: with_resources(objective, "cpu=2"), C, "must be a dict"),
    ("with_resources mem", lambda: fit(with_resources(objective, {"mem_gb": -4})), C, "at least 1 MB"),
    # -- search spaces
    ("param_space list", lambda: fit(param_space=[1]), C, "param_space=[1]"),
    ("param_space str", lambda: fit(param_space="lr"), C, "must be a dict of parameters"),
    ("uniform reversed", lambda: tune.uniform(1, 0), S, "must be < `upper`"),
    ("uniform str", lambda: tune.uniform("0", "1"), S, "must be a finite number"),
    ("loguniform 0", lambda: tune.loguniform(0, 1), S, "on a log scale"),
    ("quniform q0", lambda: tune.quniform(0, 1, 0), S, "`q` is 0"),
    ("qrandint q0", lambda: tune.qrandint(0, 10, 0), S, "`q` is 0"),
    ("randn sd -1", lambda: tune.randn(0, -1), S, "`sd` is -1"),
    ("lograndint 0", lambda: tune.lograndint(0, 10), S, "on a log scale"),
    ("randint empty", lambda: tune.randint(5, 5), S, "randint"),
    ("choice empty", lambda: tune.choice([]), S, "choice"),
    ("choice str", lambda: tune.choice("abc"), S, "takes a list of categories"),
    ("grid empty", lambda: fit(param_space={"a": tune.grid_search([])}), S, "got an empty list"),
    ("grid str", lambda: tune.grid_search("abc"), S, "takes a list of values"),
    ("grid nested", lambda: fit(param_space={"a": tune.grid_search([{"b": tune.grid_search([1, 2])}])}), S, "is nested in a grid_search"),
    ("sample_from 5", lambda: tune.sample_from(5), S, "takes a function"),
    ("sample_from raises", lambda: fit(param_space={"a": tune.sample_from(lambda spec: 1 / 0)}), S, "raised ZeroDivisionError"),
    ("sample_from cycle", lambda: fit(param_space={
        "a": tune.sample_from(lambda spec: spec.config.b), "b": tune.sample_from(lambda spec: spec.config.a)}), S, "cycle"),
    # -- stoppers
    ("max_iter str", lambda: MaximumIterationStopper("10"), C, "`max_iter` is '10'"),
    ("max_iter str fix", lambda: MaximumIterationStopper("10"), C, "Fix: write max_iter=10 (a number, not the string '10')"),
    ("max_iter 0", lambda: MaximumIterationStopper(0), C, "must be a whole number > 0"),
    ("trial plateau metric", lambda: TrialPlateauStopper(metric=5), C, "TrialPlateauStopper(metric=5)"),
    ("trial plateau std", lambda: TrialPlateauStopper("loss", std=-1), C, "`std` is -1"),
    ("trial plateau results", lambda: TrialPlateauStopper("loss", num_results=0), C, "`num_results` is 0"),
    ("exp plateau metric", lambda: ExperimentPlateauStopper(metric=""), C, "non-empty string"),
    ("exp plateau mode", lambda: ExperimentPlateauStopper("loss", mode="best"), C, "'min' or 'max'"),
    ("exp plateau top", lambda: ExperimentPlateauStopper("loss", top=0), C, "`top` is 0"),
    ("timeout str", lambda: TimeoutStopper("10"), C, "a number of seconds"),
    ("timeout -1", lambda: TimeoutStopper(-1), C, "`timeout` is -1"),
    ("combined dict", lambda: CombinedStopper({"a": 1}), C, "takes Stopper instances"),
    # -- schedulers
    ("asha max_t 0", lambda: ASHAScheduler(max_t=0), C, "`max_t` is 0"),
    ("asha reduction 1", lambda: ASHAScheduler(reduction_factor=1), C, "`reduction_factor` is 1"),
    ("asha mode", lambda: ASHAScheduler(mode="best"), C, "'min' or 'max'"),
    ("asha time_attr int", lambda: ASHAScheduler(time_attr=5), C, "`time_attr` is 5"),
    ("asha time_attr empty", lambda: ASHAScheduler(time_attr=""), C, "name of a reported metric"),
    ("reporter rows 0", lambda: CLIReporter(max_progress_rows=0), C, "`max_progress_rows` is 0"),
    ("reporter rows str", lambda: CLIReporter(max_progress_rows="5"), C, "`max_progress_rows` is '5'"),
    ("reporter frequency neg", lambda: CLIReporter(max_report_frequency=-1), C, "`max_report_frequency`"),
    ("reporter mode", lambda: CLIReporter(mode="best"), C, "CLIReporter(mode='best') is not valid: `mode` must be 'min' or 'max'. Fix: mode='min'"),
    ("asha grace str", lambda: ASHAScheduler(grace_period="1"), C, "`grace_period` is '1'"),
    ("median grace -1", lambda: MedianStoppingRule(grace_period=-1), C, "`grace_period` is -1"),
    ("median samples 0", lambda: MedianStoppingRule(min_samples_required=0), C, "`min_samples_required` is 0"),
    ("create_scheduler", lambda: create_scheduler("nope"), C, "must be one of"),
    # -- searchers
    ("create_searcher", lambda: create_searcher("nope"), C, "Unknown search algorithm 'nope'"),
    ("limiter 0", lambda: ConcurrencyLimiter(BasicVariantGenerator(), max_concurrent=0), C, "`max_concurrent` is 0"),
    ("limiter str", lambda: ConcurrencyLimiter(BasicVariantGenerator(), max_concurrent="2"), C, "`max_concurrent` is '2'"),
    ("limiter not searcher", lambda: ConcurrencyLimiter("x", max_concurrent=2), C, "wraps a Searcher"),
    ("repeater 0", lambda: Repeater(BasicVariantGenerator(), repeat=0), C, "`repeat` is 0"),
    ("points_to_evaluate str", lambda: BasicVariantGenerator(points_to_evaluate="x"), C, "points_to_evaluate[0]"),
    # -- reporters
    ("reporter columns int", lambda: CLIReporter(metric_columns=5), C, "`metric_columns` must be a list"),
    # -- the Tuner
    ("trainable int", lambda: tune.Tuner(5), T, "must be a function f(config) or a Trainable class"),
    ("trainable class", lambda: tune.Tuner(NotATrainable), T, "not a subclass of hpctune.Trainable"),
    ("trainable unregistered", lambda: tune.Tuner("nope_trainable"), T, "No trainable is registered as 'nope_trainable'"),
    ("tune_config dict", lambda: tune.Tuner(objective, tune_config={"num_samples": 2}), C, "TuneConfig(**fields)"),
    ("run_config dict", lambda: tune.Tuner(objective, run_config={"name": "x"}), C, "`run_config` must be a RunConfig"),
    ("slurm_config dict", lambda: tune.Tuner(objective, slurm_config={"partition": "x"}), C, "must be a SlurmConfig"),
    ("backend k8s", lambda: tune.Tuner(objective, backend="k8s"), C, "Unknown backend 'k8s'"),
    ("restore missing", lambda: tune.Tuner.restore("/nonexistent/exp", objective), C, "holds no restorable"),
    ("unpicklable config", lambda: fit(param_space={"lock": threading.Lock()}), C, "config['lock']"),
]


@pytest.mark.parametrize("make, error, phrase", [pytest.param(*case[1:], id=case[0]) for case in API])
def test_python_api(tmp_path, monkeypatch, make, error, phrase):
    if "Unknown backend" in phrase:
        monkeypatch.delenv("HPCTUNE_BACKEND")
    with pytest.raises(error) as raised:
        make()
    assert phrase in str(raised.value)
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


def test_an_existing_experiment_is_not_overwritten(tmp_path):
    fit()
    with pytest.raises(ConfigError, match="already holds an experiment: continue it with"):
        fit()


# -- experiment files --------------------------------------------------------------------------
BASE = 'trainable = "train.py:objective"\nname = "bad"\n'
FILES = [
    ("unknown key", BASE + "foo = 1\n", "foo: unknown key"),
    ("typo key", BASE + "num_sample = 2\n", "did you mean `num_samples`"),
    ("no trainable", 'name = "bad"\n', 'trainable: expected "module:function"'),
    ("trainable no colon", 'trainable = "train.py"\n', 'got "train.py"'),
    ("trainable int", "trainable = 5\n", "got 5"),
    ("trainable file missing", 'trainable = "nope.py:f"\n', 'file "nope.py" not found'),
    ("trainable name missing", 'trainable = "train.py:nope"\n', "has no `nope`; it defines: objective"),
    ("trainable module missing", 'trainable = "no_such_module:f"\n', 'cannot import "no_such_module"'),
    ("trainable raises", 'trainable = "broken.py:f"\n', "importing"),
    ("param_space str", BASE + 'param_space = "x"\n', "param_space: expected a table"),
    ("uniform one bound", BASE + "[param_space]\na = {uniform = [1]}\n", "expected a table like {uniform = [0, 1]}"),
    ("uniform str", BASE + '[param_space]\na = {uniform = "a"}\n', "expected a table like {uniform"),
    ("uniform reversed", BASE + "[param_space]\na = {uniform = [1, 0]}\n", "must be < `upper`"),
    ("uniform typo", BASE + "[param_space]\na = {unifrom = [0, 1]}\n", "did you mean `uniform`"),
    ("uniform bad argument", BASE + "[param_space]\na = {uniform = {low = 0, high = 1}}\n", "unknown argument `high`"),
    ("choice empty", BASE + "[param_space]\na = {choice = []}\n", "{choice = []}"),
    ("loguniform 0 nested", BASE + "[param_space.opt]\nlr = {loguniform = [0, 1]}\n", "param_space.opt.lr"),
    ("scheduler no name", BASE + "[scheduler]\nmax_t = 10\n", "scheduler.name: expected the scheduler name"),
    ("scheduler unknown", BASE + 'scheduler = "nope"\n', "must be one of"),
    ("scheduler parameter", BASE + '[scheduler]\nname = "asha"\nfoo = 1\n', "invalid parameters for 'asha'"),
    ("scheduler value", BASE + '[scheduler]\nname = "asha"\nmax_t = 0\n', "`max_t` is 0"),
    ("search unknown", BASE + 'search = "nope"\n', "Unknown search algorithm"),
    ("resources str", BASE + 'resources = "x"\n', "resources: expected a table"),
    ("resources cpu str", BASE + '[resources]\ncpu = "2"\n', "write {'cpu': 2} without quotes"),
    ("resources mem 0", BASE + "[resources]\nmem_gb = 0\n", "at least 1 MB"),
    ("num_samples str", BASE + 'num_samples = "3"\n', "write num_samples=3"),
    ("num_samples 0", BASE + "num_samples = 0\n", "must be >= 1 (or -1"),
    ("max_concurrent 0", BASE + "max_concurrent_trials = 0\n", "must be >= 1"),
    ("time_budget str", BASE + 'time_budget_s = "10"\n', "a number of seconds > 0"),
    ("metric int", BASE + "metric = 5\n", "`metric` must be a string"),
    ("mode best", BASE + 'mode = "best"\n', "'min' or 'max'"),
    ("seed str", BASE + 'seed = "1"\n', "`seed` is '1'"),
    ("verbose str", BASE + 'verbose = "x"\n', "verbose: `verbose` is 'x'"),
    ("verbose float", BASE + "verbose = 2.7\n", "`verbose` is 2.7"),
    ("failure unknown", BASE + "[failure]\nfoo = 1\n", "failure.foo: unknown key"),
    ("failure max str", BASE + '[failure]\nmax_failures = "3"\n', "write max_failures=3"),
    ("failure report timeout", BASE + "[failure]\nreport_timeout_s = 0\n", "choose report_timeout_s > 0"),
    ("checkpoint keep 0", BASE + "[checkpoint]\nnum_to_keep = 0\n", "`num_to_keep` is 0"),
    ("slurm unknown", BASE + "[slurm]\nfoo = 1\n", "`foo` is not a SlurmConfig field"),
    ("slurm time str", BASE + '[slurm]\ntime_min = "60"\n', "write time_min=60"),
    ("name int", 'trainable = "train.py:objective"\nname = 5\n', "RunConfig(name=5)"),
    ("name slash", 'trainable = "train.py:objective"\nname = "a/b"\n', "it contains '/'"),
    ("storage int", BASE + "storage_path = 5\n", "`storage_path` must be a string"),
    ("stop str", BASE + 'stop = "x"\n', "stop: expected a table"),
    ("stop value str", BASE + '[stop]\ntraining_iteration = "10"\n', "must be a number"),
    ("backend k8s", BASE + 'backend = "k8s"\n', 'backend: expected "slurm" or "local"'),
    ("profile unknown", BASE + 'profile = "nope"\n', "Unknown profile 'nope'"),
    ("profile int", BASE + "profile = 5\n", 'profile: expected a name in quotes'),
    ("invalid toml", BASE + "a = = 1\n", "invalid TOML"),
    ("empty file", "", 'trainable: expected "module:function"'),
    ("binary file", "\x00\x01\xff\xfe", "not a text file"),
]
YAML_FILES = [
    ("yaml list", "- 1\n- 2\n", "expected a table of settings at the top level"),
    ("yaml scalar", "hello\n", "expected a table of settings at the top level"),
    ("yaml invalid", "a: [1\n", "invalid YAML"),
    ("yaml num_samples str", "trainable: train.py:objective\nname: bad\nnum_samples: '3'\n", "write num_samples=3"),
    ("yaml nested deep", "trainable: train.py:objective\nparam_space: " + "[" * 3000 + "]" * 3000 + "\n",
     "nested too deeply"),
]


@pytest.fixture
def trainable_file(tmp_path):
    (tmp_path / "train.py").write_text("from hpctune import tune\n\ndef objective(config):\n"
                                       "    tune.report({'score': 1})\n")
    (tmp_path / "broken.py").write_text("raise RuntimeError('top-level failure')\n")


@pytest.mark.parametrize("text, phrase", [pytest.param(*c[1:], id=c[0]) for c in FILES])
def test_experiment_file(tmp_path, capsys, trainable_file, text, phrase):
    path = tmp_path / "experiment.toml"
    path.write_bytes(text.encode("latin-1"))
    code, _, err = run(capsys, "submit", "--dry-run", str(path))
    assert code == 1 and phrase in err, err
    assert err.startswith("hpctune submit: error: ") and "Traceback" not in err
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("text, phrase", [pytest.param(*c[1:], id=c[0]) for c in YAML_FILES])
def test_yaml_experiment_file(tmp_path, capsys, trainable_file, text, phrase):
    pytest.importorskip("yaml")
    path = tmp_path / "experiment.yaml"
    path.write_text(text)
    code, _, err = run(capsys, "submit", "--dry-run", str(path))
    assert code == 1 and phrase in err, err
    assert "Traceback" not in err and not (tmp_path / "results").exists()


# -- the command line --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One finished experiment ``x`` (two trials), run once for the module."""
    root = tmp_path_factory.mktemp("finished")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HPCTUNE_BACKEND", "local")
        tune.Tuner(objective, param_space={"a": tune.grid_search([1, 2])},
                   tune_config=TuneConfig(metric="score", mode="min"),
                   run_config=RunConfig(name="x", storage_path=str(root), verbose=0)).fit()
    return root / "x"


@pytest.fixture
def experiment(tmp_path, trainable_file, finished):
    """A copy of the finished experiment ``x`` in the test's storage path."""
    shutil.copytree(finished, tmp_path / "results" / "x", symlinks=True)
    (tmp_path / "e.toml").write_text(BASE)
    return tmp_path / "results" / "x"


CLI = [
    ("unknown command", ["nope"], 2, "invalid choice: 'nope'"),
    ("submit nothing", ["submit"], 2, "the following arguments are required"),
    ("status nothing", ["status"], 2, "the following arguments are required: EXP"),
    ("status unknown", ["status", "nope"], 1, "No experiment 'nope'"),
    ("status empty", ["status", ""], 1, "No experiment ''"),
    ("trials unknown", ["trials", "nope"], 1, "No experiment 'nope'"),
    ("limit -1", ["trials", "x", "--limit", "-1"], 2, "'-1': expected a whole number >= 1"),
    ("limit 0", ["trials", "x", "--limit", "0"], 2, "'0': expected a whole number >= 1"),
    ("limit abc", ["trials", "x", "--limit", "abc"], 2, "'abc': expected a whole number >= 1"),
    ("filter shape", ["trials", "x", "--filter", "bad"], 1, 'expected "<column> <op> <value>"'),
    ("filter op", ["trials", "x", "--filter", "score ~= 1"], 1, 'expected "<column> <op> <value>"'),
    ("filter column", ["trials", "x", "--filter", "nope == 1"], 1, "--filter: unknown column 'nope'"),
    ("sort column", ["trials", "x", "--sort", "nope"], 1, "--sort: unknown column 'nope'"),
    ("columns unknown", ["trials", "x", "--columns", "nope"], 1, "--columns: unknown column 'nope'"),
    ("output suffix", ["trials", "x", "--output", "a.xlsx"], 1, "use a .csv or .json file name"),
    ("output directory", ["trials", "x", "--output", "/nonexistent/dir/a.csv"], 1, "cannot write it"),
    ("best mode", ["best", "x", "--mode", "best"], 2, "invalid choice: 'best'"),
    ("best metric", ["best", "x", "--metric", "nope"], 1, "nope"),
    ("best metric empty", ["best", "x", "--metric", ""], 1, "--metric is empty"),
    ("resume both errored", ["resume", "x", "--resume-errored", "--restart-errored"], 2, "not allowed with"),
    ("logs no trial", ["logs", "x"], 2, "the following arguments are required: TRIAL"),
    ("logs stream", ["logs", "x", "y", "--stream", "z"], 2, "invalid choice: 'z'"),
    ("logs unknown trial", ["logs", "x", "nope"], 1, "Trial 'nope' matches no trial"),
    ("cancel unknown", ["cancel", "nope"], 1, "No experiment 'nope'"),
    ("cancel unknown trial", ["cancel", "x", "t_99999"], 1, "Trial 't_99999' matches no trial"),
    ("resume unknown", ["resume", "nope"], 1, "No experiment 'nope'"),
    ("profiles unknown", ["profiles", "nope"], 1, "Unknown profile 'nope'"),
    ("status interval 0", ["status", "x", "--interval", "0"], 2, "expected a number > 0"),
    ("status rows -3", ["status", "x", "--max-rows", "-3"], 2, "expected a whole number >= 1"),
    ("ls missing", ["ls", "/nonexistent/results"], 1, "does not exist"),
    ("submit missing", ["submit", "nope.toml"], 1, "No such file: nope.toml"),
    ("submit json", ["submit", "e.json"], 1, "expected a Python script (.py) or an experiment file"),
    ("submit cpus 0", ["submit", "--cpus", "0", "e.toml"], 2, "--cpus: '0'"),
    ("submit gpus 0.5", ["submit", "--gpus", "0.5", "e.toml"], 2, "--gpus: '0.5'"),
    ("submit mem -1", ["submit", "--mem-gb", "-1", "e.toml"], 2, "--mem-gb: '-1'"),
    ("submit mem tiny", ["submit", "--dry-run", "--mem-gb", "0.0001", "e.toml"], 1, "at least 1 MB"),
    ("submit time 0", ["submit", "--time-min", "0", "e.toml"], 2, "--time-min: '0'"),
    ("submit nodes 0", ["submit", "--nodes", "0", "e.toml"], 2, "--nodes: '0'"),
    ("submit sbatch shape", ["submit", "--sbatch", "noequals", "e.toml"], 1, "expected KEY=VALUE"),
    ("submit sbatch key", ["submit", "--dry-run", "--sbatch", "bad key=1", "e.toml"], 1, "not an sbatch option name"),
    ("submit num_samples 0", ["submit", "--dry-run", "--num-samples", "0", "e.toml"], 1, "must be >= 1"),
    ("submit profile", ["submit", "--profile", "nope", "e.toml"], 1, "Unknown profile 'nope'"),
    ("submit name", ["submit", "--dry-run", "--name", "a/b", "e.toml"], 1, "it contains '/'"),
    ("submit storage uri", ["submit", "--dry-run", "--storage-path", "s3://x", "e.toml"], 1, "is a URI"),
    ("submit setup newline", ["submit", "--dry-run", "--setup", "a\nb", "e.toml"], 1, "control character"),
    ("submit poll", ["submit", "--dry-run", "--poll-interval-s", "0.01", "e.toml"], 1, "must be >= 0.2"),
    ("submit backend", ["submit", "--backend", "k8s", "e.toml"], 2, "invalid choice: 'k8s'"),
    ("submit partition newline", ["submit", "--dry-run", "--partition", "a\nb", "e.toml"], 1, "control character"),
    ("submit driver time 0", ["submit", "--detach", "--driver-time-min", "0", "e.toml"], 2, "--driver-time-min"),
]


@pytest.mark.parametrize("argv, code, phrase", [pytest.param(*c[1:], id=c[0]) for c in CLI])
def test_command_line(tmp_path, capsys, experiment, argv, code, phrase):
    (tmp_path / "e.json").write_text("{}")
    before = sorted(p.name for p in experiment.parent.iterdir())
    got, _, err = run(capsys, *argv)
    assert got == code and phrase in err, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("hpctune")
    assert sorted(p.name for p in experiment.parent.iterdir()) == before  # nothing new written


def test_the_tables_hold_at_least_120_bad_inputs():
    assert len(API) + len(FILES) + len(YAML_FILES) + len(CLI) >= 120


# -- at run time (local backend) ---------------------------------------------------------------
def reports(value):
    def trainable(config):
        tune.report({"score": 1, "extra": value})

    return trainable


def checkpoint_of_the_trial_dir(config):
    tune.report({"score": 1}, checkpoint=tune.Checkpoint.from_directory("."))


def exits(code):
    def trainable(config):
        tune.report({"score": 1})
        raise SystemExit(code)

    return trainable


class NoReturn(tune.Trainable):
    def step(self):
        self.touched = True  # forgot `return {...}`


def run_one(trainable):
    grid = fit(trainable, tune_config=TuneConfig(metric="score", mode="min"))
    return grid[0]


@pytest.mark.parametrize("value, phrase", [
    pytest.param(decimal.Decimal("0.1"), "`extra` is Decimal('0.1') (a decimal.Decimal)", id="Decimal"),
    pytest.param(datetime.date(2024, 1, 2), "`extra` is datetime.date(2024, 1, 2)", id="date"),
    pytest.param({"a": [1, object()]}, "`extra/a[1]` is <object object", id="object in a list"),
    pytest.param({1: 2}, "the key 1 under `extra` is not a string", id="int key"),
])
def test_report_refuses_values_it_would_turn_into_strings(value, phrase):
    result = run_one(reports(value))
    assert result.error and "ReportError" in str(result.error) and phrase in str(result.error)
    assert "extra" not in (result.metrics or {})


def test_report_keeps_numpy_values_exactly():
    np = pytest.importorskip("numpy")
    result = run_one(reports({"f": np.float32(0.5), "v": np.arange(3), "b": np.bool_(True)}))
    assert result.error is None
    assert result.metrics["extra"] == {"f": 0.5, "v": [0, 1, 2], "b": True}


def test_a_checkpoint_of_the_trial_directory_is_refused(tmp_path):
    result = run_one(checkpoint_of_the_trial_dir)
    assert "contains the trial directory" in str(result.error)
    assert not list(Path(result.path).glob("checkpoint_*"))


@pytest.mark.parametrize("code", [0, None])
def test_sys_exit_0_ends_the_trial_normally(code):
    result = run_one(exits(code))
    assert result.error is None and result.metrics["score"] == 1


def test_sys_exit_1_is_an_error():
    result = run_one(exits(1))
    assert "SystemExit: 1" in str(result.error)


def test_a_step_without_a_dict_names_the_class_and_step():
    result = run_one(NoReturn)
    assert "NoReturn.step() returned None, but must return a dict of metrics" in str(result.error)


def test_a_resources_function_returning_bad_values_errs_at_launch():
    bad = with_resources(objective, lambda config: {"cpu": "2"})
    with pytest.raises(ConfigError, match="write {'cpu': 2} without quotes"):
        fit(bad)



def test_inputs_that_look_odd_but_are_right_are_accepted(tmp_path):
    """The checks refuse wrong types, not Ray's spellings: None for Ray's defaults, numpy
    integers, a Path, a timedelta, an IntEnum verbosity, -1 samples, cpu=0 (one CPU)."""
    import enum

    np = pytest.importorskip("numpy")

    class Verbosity(enum.IntEnum):
        V0_MINIMAL = 0

    run = RunConfig(callbacks=None, failure_config=None, checkpoint_config=None, verbose=None,
                    storage_path=tmp_path / "results", name="ok")
    assert (run.callbacks, run.failure_config, run.verbose) == ([], FailureConfig(), 1)
    assert RunConfig(verbose=Verbosity.V0_MINIMAL).verbose == 0
    TuneConfig(num_samples=np.int64(2), max_concurrent_trials=np.int32(1))
    TuneConfig(num_samples=-1, time_budget_s=datetime.timedelta(minutes=1))
    FailureConfig(max_failures=-1, heartbeat_timeout_s=None, report_timeout_s=np.float64(30))
    SlurmConfig(time_min=np.int64(5), setup=("module load x",), stop_grace_s=0)
    assert normalize_resources({"cpu": 0, "GPU": np.int64(1), "memory": 2 * 1024**3}) == {
        "cpu": 1, "gpu": 1, "mem_gb": 2.0}
