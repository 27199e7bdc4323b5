"""A Ray Tune trainable runs unchanged and right (issue 17, the trial side), as local processes.

The config reaches the trainable exactly as the searcher made it; generator functions, class
trainables' attributes, ``get_context()`` and the auto-filled metrics are Ray's; a stopped
trial's ``finally:``/``cleanup()`` runs, within ``SlurmConfig(stop_grace_s)``; the local backend
gives each GPU trial its own GPUs.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hpctune import tune
from hpctune.errors import ConfigError
from hpctune.storage.control import ControlRecord
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.result_log import read_events
from hpctune.tune.tuner import pickle_trainable
from tests.e2e import trainables
from tests.unit.test_trainable_api import AUTO_FILLED


@pytest.fixture(autouse=True)
def local_backend(monkeypatch):
    monkeypatch.setenv("HPCTUNE_BACKEND", "local")


def run(trainable, tmp_path, name="exp", **kwargs):
    run_config = tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0,
                                stop=kwargs.pop("stop", None), slurm=kwargs.pop("slurm", None))
    return tune.Tuner(trainable, run_config=run_config, **kwargs).fit()


def events_of(result):
    return [e["event"] for e in read_events(Path(result.path) / "result.jsonl")]


# -- 1. config fidelity ----------------------------------------------------------------------------
def activation_classes():
    try:
        import torch
    except ImportError:
        return [trainables.LocalActivation]
    return [torch.nn.ReLU, trainables.LocalActivation]


def test_the_trainable_gets_the_config_the_searcher_made(tmp_path):
    space = {
        "f32": tune.choice([np.float32(1.5), np.float32(2.5)]),
        "arr": np.arange(3.0),
        "tup": (1, "a"),
        "ints": {1: "one", 2: "two"},
        "fn": trainables.double,
        "nested": {"act": tune.grid_search(activation_classes()), "deep": [(np.int64(3), None)]},
    }
    grid = run(trainables.config_probe, tmp_path, param_space=space)
    assert grid.num_errors == 0, [str(e) for e in grid.errors]
    for result in grid:
        assert result.metrics["seen"] == trainables.describe(result.config)
        assert result.metrics["act_works"] is True
    again = tune.ResultGrid.from_path(tmp_path / "exp")  # from params.pkl, not the text view
    for result in again:
        assert type(result.config["f32"]) is np.float32 and isinstance(result.config["tup"], tuple)
        assert list(result.config["ints"]) == [1, 2] and result.config["fn"](21) == 42
        assert result.metrics["seen"] == trainables.describe(result.config)
    view = json.loads((Path(again[0].path) / "params.json").read_text())
    assert view["f32"] in (1.5, 2.5) and view["fn"] == "tests.e2e.trainables.double"
    assert view["ints"] == {"1": "one", "2": "two"} and view["arr"] == "[0. 1. 2.]"


def test_an_unpicklable_config_value_is_an_error_naming_its_key(tmp_path):
    """A value sampled for a trial (a constant of the space fails earlier, when the Tuner is saved)."""
    import threading

    with pytest.raises(ConfigError, match=r"config\['model'\]\['lock'\].*with_parameters"):
        run(trainables.quadratic, tmp_path, param_space={
            "a": 1, "b": 1, "model": {"lock": tune.sample_from(lambda spec: threading.Lock())}})
    assert not list((tmp_path / "exp" / "trials").iterdir())  # no trial was created


# -- 2. the trainable API ----------------------------------------------------------------------------
def test_a_generator_function_reports_each_yielded_dict(tmp_path):
    grid = run(trainables.yielding, tmp_path, param_space={"x": tune.grid_search([1, 2])},
               tune_config=tune.TuneConfig(metric="score", mode="max"))
    assert grid.num_terminated == 2
    for result in grid:
        assert list(result.metrics_dataframe["score"]) == [result.config["x"] * k for k in (1, 2, 3)]
        assert result.metrics["training_iteration"] == 3


def test_class_trainable_attributes_log_result_and_default_resource_request(tmp_path):
    grid = run(trainables.Introspective, tmp_path, param_space={"cpus": 2})
    (result,) = grid
    assert result.error is None
    rows = result.metrics_dataframe.to_dict("records")
    assert [r["iteration_attr"] for r in rows] == [0, 1, 2]
    assert [r["training_iteration_attr"] for r in rows] == [0, 1, 2]
    assert rows[-1]["logged"] == [1, 2]  # log_result got every earlier result
    trial_id = rows[0]["trial_id"]
    assert rows[0]["trial_id_attr"] == trial_id
    assert rows[0]["trial_name_attr"] == f"Introspective_{trial_id}"  # Ray: <trainable>_<trial_id>
    assert os.path.samefile(rows[0]["logdir_attr"], result.path)
    assert rows[0]["cpus"] == 2  # default_resource_request(config), no with_resources
    assert result.metrics["config_attr"] == {"cpus": 2}
    assert result.metrics["done"] is True


def test_get_context_getters_and_auto_filled_metrics(tmp_path):
    grid = run(tune.with_resources(trainables.context_probe, lambda spec: {"cpu": spec.config.cpus}),
               tmp_path, param_space={"cpus": 2})
    (result,) = grid
    assert result.error is None
    ctx = result.metrics["ctx"]
    assert ctx["trial_id"] == result.metrics["trial_id"] and ctx["experiment_name"] == "exp"
    assert os.path.samefile(ctx["trial_dir"], result.path)
    assert os.path.samefile(ctx["trial_fs_path"], result.path)
    assert ctx["resources"]["cpu"] == 2 and result.metrics["resources"]["cpu"] == 2
    assert (ctx["local_rank"], ctx["world_rank"], ctx["node_rank"]) == (0, 0, 0)
    assert (ctx["world_size"], ctx["local_world_size"]) == (1, 1)
    for row in result.metrics_dataframe.to_dict("records"):
        assert AUTO_FILLED - {"config"} <= set(row), AUTO_FILLED - set(row)
    assert list(result.metrics_dataframe["timesteps_total"]) == [10, 20]
    assert list(result.metrics_dataframe["episodes_total"]) == [1, 2]
    assert result.metrics["experiment_id"] and result.metrics["trial_id"].startswith(
        result.metrics["experiment_id"])


# -- 3. a stopped trial cleans up, within the grace ------------------------------------------------------
@pytest.mark.parametrize("trainable", [trainables.stops_in_long_iteration, trainables.StopsInLongStep],
                         ids=["function", "class"])
def test_a_stopped_trial_runs_its_cleanup_at_once(tmp_path, trainable):
    start = time.monotonic()
    grid = run(trainable, tmp_path, param_space={"x": tune.grid_search([1, 2])},
               stop={"training_iteration": 1}, slurm=tune.SlurmConfig(stop_grace_s=10))
    assert time.monotonic() - start < 20, "the stop must not wait for the 60 s iteration"
    assert grid.num_terminated == 2 and grid.num_errors == 0
    for result in grid:
        assert (Path(result.path) / "cleaned_up").read_text() == "yes"
        assert events_of(result)[-1] == "stopped"


def test_stop_grace_bounds_a_slow_cleanup(tmp_path):
    start = time.monotonic()
    grid = run(trainables.stops_in_long_iteration, tmp_path,
               param_space={"x": 1, "cleanup_s": 60}, stop={"training_iteration": 1},
               slurm=tune.SlurmConfig(stop_grace_s=1))
    assert time.monotonic() - start < 20, "the worker must exit when its cleanup outlasts the grace"
    (result,) = grid
    assert result.error is None and grid.num_terminated == 1
    assert (Path(result.path) / "cleanup_started").exists()
    assert not (Path(result.path) / "cleaned_up").exists()


@pytest.mark.parametrize("final, last_event", [(True, "stopped"), (False, "terminated")])
def test_sigterm_after_a_stop_request_raises_inside_the_trainable(tmp_path, final, last_event):
    """A scheduler's stop ends the trial (``stopped``); a cancel to be resumed (Ctrl+C on the
    driver) is ``terminated``, so that a restored driver runs the trial again."""
    exp = ExperimentDir(tmp_path / "exp")
    exp.create()
    exp.write_trainable(pickle_trainable(trainables.stops_in_long_iteration))
    exp.write_experiment({"stop_grace_s": 10})
    exp.write_params("t_00000", {"x": 1})
    exp.write_trial_meta("t_00000", {})
    proc = subprocess.Popen([sys.executable, "-m", "hpctune.worker", str(exp.root), "--trial", "t_00000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while "result" not in [e["event"] for e in read_events(exp.result_log_path("t_00000"))]:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        exp.write_control("t_00000", ControlRecord.stop("test", final=final))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
    assert (exp.trial_dir("t_00000") / "cleaned_up").exists()
    kinds = [e["event"] for e in read_events(exp.result_log_path("t_00000"))]
    assert kinds[-1] == last_event, kinds


# -- 4. GPUs of the local backend ------------------------------------------------------------------------
def test_each_local_gpu_trial_gets_its_own_gpu(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    grid = run(tune.with_resources(trainables.gpu_probe, {"gpu": 1}), tmp_path,
               param_space={"x": tune.grid_search(list(range(4))), "sleep": 0.5})
    assert grid.num_terminated == 4
    runs = [r.metrics for r in grid]
    assert {m["gpu"] for m in runs} <= {"3", "5"}
    for a in runs:
        for b in runs:
            if a is not b and a["gpu"] == b["gpu"]:
                assert a["end"] <= b["start"] or b["end"] <= a["start"], (a, b)
    cpu_only = run(trainables.gpu_probe, tmp_path, name="cpu", param_space={"x": 0, "sleep": 0})
    assert cpu_only[0].metrics["gpu"] == ""  # a trial without GPUs sees none, as in Ray
    with pytest.raises(ConfigError, match="3 GPU.*has 2"):
        run(tune.with_resources(trainables.quadratic, {"gpu": 3}), tmp_path, name="big",
            param_space={"a": 1, "b": 1})


# -- 4. checkpoints and the end of a trial, as Ray has them (issue 22) --------------------------
def run_with_checkpoints(trainable, tmp_path, checkpoint_config, **kwargs):
    run_config = tune.RunConfig(name="ckpt", storage_path=str(tmp_path), verbose=0,
                                stop=kwargs.pop("stop", None), checkpoint_config=checkpoint_config,
                                failure_config=kwargs.pop("failure_config", None))
    return tune.Tuner(trainable, run_config=run_config, **kwargs).fit()


def test_a_dict_returned_by_save_checkpoint_is_what_load_checkpoint_receives(tmp_path):
    """Ray: "save_checkpoint ... can return a dict"; restoring passes that dict to load_checkpoint."""
    grid = run_with_checkpoints(trainables.DictCheckpointed, tmp_path, tune.CheckpointConfig(),
                                param_space={"steps": 4, "fail_at": 3},
                                failure_config=tune.FailureConfig(max_failures=1))
    (result,) = grid
    assert result.error is None
    rows = result.metrics_dataframe.to_dict("records")
    assert [(r["count"], r["loaded"]) for r in rows] == [
        (1, "nothing"), (2, "nothing"), (3, "'dict':{'count': 2}"), (4, "'dict':{'count': 2}")]


def test_checkpoint_at_end_holds_when_a_stopper_ends_the_trial(tmp_path):
    """Ray: checkpoint_at_end=True saves a checkpoint at the end of the trial, also when a stop
    criterion ends it; that final result says ``done``."""
    grid = run_with_checkpoints(trainables.CountsToEnd, tmp_path,
                                tune.CheckpointConfig(checkpoint_at_end=True),
                                stop={"training_iteration": 3}, param_space={"sleep": 0.05})
    (result,) = grid
    assert result.error is None and result.metrics["training_iteration"] == 3
    assert result.metrics["done"] is True
    assert result.checkpoint is not None
    with result.checkpoint.as_directory() as path:
        saved = int(Path(path, "count").read_text())
    # the checkpoint holds the state of the iteration that decided the stop: the report at 3
    # waits for the driver's verdict, so the worker never runs past it
    assert saved == int(Path(result.checkpoint.path).name.rsplit("_", 1)[1]) == 3
    assert tune.ExperimentAnalysis(str(tmp_path / "ckpt")).trials[0].last_result["done"] is True


def test_a_metric_no_result_contains_fails_the_run_unless_strict_checking_is_off(tmp_path, monkeypatch):
    """Ray: "Trial returned a result which did not include the specified metric(s) ... set the
    TUNE_DISABLE_STRICT_METRIC_CHECKING environment variable to 1"."""
    config = tune.TuneConfig(metric="acc", mode="max")
    with pytest.raises(ValueError, match=r"did not include the specified metric\(s\) `acc` that "
                                         r"`tune.TuneConfig\(\)` expects.*TUNE_DISABLE_STRICT_METRIC_CHECKING"):
        run(trainables.quadratic, tmp_path, name="strict", tune_config=config, param_space={"a": 1.0, "b": 0.0})
    monkeypatch.setenv("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
    (result,) = run(trainables.quadratic, tmp_path, name="lax", tune_config=config, param_space={"a": 1.0, "b": 0.0})
    assert result.error is None and "acc" not in result.metrics


def test_seeding_numpy_before_the_tuner_gives_the_same_configs_every_run(tmp_path):
    """Ray's FAQ: search algorithms that use Numpy's ``np.random`` interface are seeded with
    ``np.random.seed()`` on the driver, so that the configurations suggested are the same."""
    space = {"lr": tune.loguniform(1e-4, 1e-1), "units": tune.randint(8, 256), "x": 1.0, "steps": 1}

    def configs(name):
        np.random.seed(1234)
        grid = run(trainables.yielding, tmp_path, name=name, param_space=space,
                   tune_config=tune.TuneConfig(num_samples=2))
        assert not grid.errors
        return sorted((r.config["lr"], r.config["units"]) for r in grid)

    first = configs("first")
    assert configs("second") == first and len(set(first)) == 2
    np.random.seed(4321)
    generator = tune.search.BasicVariantGenerator(space, num_samples=2)
    assert sorted((c["lr"], c["units"]) for c in (generator.suggest(f"t{n}") for n in range(2))) != first
