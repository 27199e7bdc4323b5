"""Ray's trainable API, the pure parts (issue 17, the trial side): resources, the config files,
the trial context, the session's auto-filled metrics and stop handling, generator trainables,
class attributes, the local backend's GPUs and the driver's stop enactment."""

import json
import os
import stat
import threading
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from hpctune import tune
from hpctune.backends.local import LocalBackend, detect_gpus
from hpctune.controller.controller import Controller, ControllerSettings
from hpctune.core.metrics import AUTO_METRICS
from hpctune.core.resources import ResourceSpec, check_gpu_share, normalize_resources, resources_for
from hpctune.errors import ConfigError, UnsafeFileError
from hpctune.storage.control import ControlRecord
from hpctune.storage.experiment import ExperimentDir, config_view, pickle_config
from hpctune.storage.replay import replay_trial
from hpctune.storage.result_log import ResultLog, read_events
from hpctune.tune.experiment.trial import Trial
from hpctune.tune.trainable import Trainable
from hpctune.worker import session as session_mod
from hpctune.worker.run import _run_generator
from hpctune.worker.run import make_session as worker_session
from hpctune.worker.session import Session, StopTrial, TrialContext

#: every result carries these, written out (Ray's auto-filled metrics, then hpctune's own two)
AUTO_FILLED = frozenset({
    "training_iteration", "time_this_iter_s", "time_total_s", "time_since_restore", "iterations_since_restore",
    "timestamp", "date", "done", "trial_id", "experiment_tag", "hostname", "node_ip", "pid", "config",
    "experiment_id", "timesteps_total", "episodes_total", "timesteps_since_restore",
    "slurm_job_id", "restart_count"})


def noop(config):
    pass


# -- resources as Ray users write them ------------------------------------------------------------------
def test_resources_function_takes_a_spec_or_the_config():
    by_spec = tune.with_resources(noop, lambda spec: {"gpu": 1} if spec.config.use_gpu else {"gpu": 0})
    by_config = tune.with_resources(noop, lambda config: {"cpu": config["n"], "gpu": config.get("g", 0)})
    assert resources_for(by_spec, {"use_gpu": True}) == {"cpu": 1, "gpu": 1}
    assert resources_for(by_spec, {"use_gpu": False}) == {"cpu": 1, "gpu": 0}
    assert resources_for(by_config, {"n": 3}) == {"cpu": 3, "gpu": 0}
    spec = ResourceSpec({"model": {"width": 4}})
    assert spec.config.model.width == 4 and spec["model"]["width"] == 4 and dict(spec.config.model) == {"width": 4}
    with pytest.raises(AttributeError, match="no key 'nope'"):
        _ = spec.config.nope


def test_a_custom_resource_names_the_slurm_way_to_ask_for_it():
    with pytest.raises(ConfigError, match=r"custom_accel.*SlurmConfig\(constraint='custom_accel'\).*sbatch_options"):
        tune.with_resources(noop, {"cpu": 1, "custom_accel": 1})
    with pytest.raises(ConfigError, match="custom_accel"):
        resources_for(tune.with_resources(noop, lambda config: {"custom_accel": 1}), {})


def test_fractional_cpus_round_up_with_a_warning_and_fractional_gpus_need_the_pool():
    with pytest.warns(UserWarning, match=r"cpu=1.5 rounded up to 2"):
        assert normalize_resources({"cpu": 1.5})["cpu"] == 2
    with pytest.warns(UserWarning, match=r"cpu=0.5 rounded up to 1"):
        assert normalize_resources({"cpu": 0.5})["cpu"] == 1
    assert normalize_resources({"gpu": 0.5})["gpu"] == 0.5  # a share: the worker pool only
    with pytest.raises(ConfigError, match="gpu=0.5.*worker pool"):
        check_gpu_share({"gpu": 0.5}, pooled=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert normalize_resources({"CPU": 2, "GPU": 1, "memory": 2 * 1024**3}) == {
            "cpu": 2, "gpu": 1, "mem_gb": 2.0}


def test_default_resource_request_sizes_a_class_trainable_without_with_resources():
    class Sized(Trainable):
        @classmethod
        def default_resource_request(cls, config):
            return {"cpu": config["workers"] + 1, "gpu": 1}

    assert resources_for(Sized, {"workers": 3}) == {"cpu": 4, "gpu": 1}
    assert resources_for(tune.with_resources(Sized, {"cpu": 2}), {"workers": 3}) == {"cpu": 2, "gpu": 0}
    assert resources_for(Trainable, {}) == {"cpu": 1, "gpu": 0}


# -- the config files -----------------------------------------------------------------------------------
def test_params_pkl_keeps_the_config_and_params_json_shows_it(tmp_path):
    exp = ExperimentDir(tmp_path / "exp")
    exp.create()
    config = {"f": np.float32(0.5), "t": (1, 2), "k": {1: "a", (2, 3): "b"}, "cls": Trainable, "fn": noop}
    exp.write_params("t1", config)
    got = exp.read_config("t1")
    assert type(got["f"]) is np.float32 and got["t"] == (1, 2) and got["k"] == {1: "a", (2, 3): "b"}
    assert got["cls"] is Trainable and got["fn"].__name__ == "noop"
    view = json.loads(exp.params_path("t1").read_text())
    assert view == {"f": 0.5, "t": [1, 2], "k": {"1": "a", "(2, 3)": "b"},
                    "cls": "hpctune.tune.trainable.Trainable", "fn": f"{__name__}.noop"}
    assert exp.params_pickle_path("t1").name == "params.pkl"
    assert replay_trial(exp, "t1").config["t"] == (1, 2)
    assert replay_trial(exp, "t1", real_config=False).config["t"] == [1, 2]


def test_unpicklable_value_is_named_by_its_path():
    with pytest.raises(ConfigError, match=r"config\['layers'\]\[1\]\['lock'\] = <unlocked _thread.lock"):
        pickle_config({"layers": [{"ok": 1}, {"lock": threading.Lock()}]})


def test_params_pkl_is_loaded_only_when_safe_and_old_experiments_read_params_json(tmp_path):
    exp = ExperimentDir(tmp_path / "exp")
    exp.create()
    exp.write_params("t1", {"a": (1,)})
    os.chmod(exp.params_pickle_path("t1"), 0o666)
    with pytest.raises(UnsafeFileError, match="chmod go-w"):
        exp.read_config("t1")
    with pytest.warns(UserWarning, match="text view of params.json"):
        assert replay_trial(exp, "t1").config == {"a": [1]}
    exp.params_pickle_path("t1").unlink()  # an experiment from before params.pkl
    assert exp.read_config("t1") == {"a": [1]}


def test_config_view_is_plain_json():
    assert config_view({"a": np.int64(3), "b": [np.arange(2)], None: {1.5: object}}) == {
        "a": 3, "b": ["[0 1]"], None: {1.5: "builtins.object"}}


# -- the trial context and the session --------------------------------------------------------------------
def make_session(tmp_path, grace=1e6):
    trial_dir = tmp_path / "store" / "exp" / "trials" / "abc_00001"
    trial_dir.mkdir(parents=True)
    context = TrialContext("abc_00001", "abc_00001", str(trial_dir), "exp", "1_x=1",
                           resources={"cpu": 2, "gpu": 0}, experiment_id="abc")
    return Session(context, ResultLog(trial_dir / "result.jsonl"), trial_dir / "control.json",
                   stop_grace_s=grace)


def test_a_rerun_continues_from_its_latest_checkpoint_and_the_totals_reported_with_it(tmp_path):
    exp = ExperimentDir(tmp_path / "exp")
    exp.create()
    exp.trial_dir("t1").mkdir()
    exp.write_trial_meta("t1", {})
    ResultLog(exp.result_log_path("t1")).append_many([
        {"event": "result", "result": {"training_iteration": 2, "time_total_s": 7.5, "timesteps_total": 40},
         "checkpoint": "checkpoint_000002"},
        {"event": "result", "result": {"training_iteration": 3, "time_total_s": 9.0, "timesteps_total": 60}},
    ])
    (exp.trial_dir("t1") / "checkpoint_000002").mkdir()
    session = worker_session(exp, "t1", spec={})
    assert (session.iteration, session.time_total, session.timesteps_total) == (2, 7.5, 40)


def test_context_getters_read_slurm_task_environment(tmp_path, monkeypatch):
    ctx = make_session(tmp_path).context
    assert (ctx.get_world_size(), ctx.get_world_rank(), ctx.get_local_rank(), ctx.get_node_rank(),
            ctx.get_local_world_size()) == (1, 0, 0, 0, 1)
    # the batch shell of a 7-task job: one process, whatever SLURM_NTASKS counts
    for name, value in {"SLURM_NTASKS": "7", "SLURM_PROCID": "0", "SLURM_LOCALID": "0",
                        "SLURM_NODEID": "0", "SLURM_TASKS_PER_NODE": "2(x3),1"}.items():
        monkeypatch.setenv(name, value)
    assert (ctx.get_world_size(), ctx.get_world_rank(), ctx.get_local_world_size()) == (1, 0, 1)
    assert ctx.is_rank_zero()
    # task 5 of the srun step
    for name, value in {"SLURM_STEP_NUM_TASKS": "7", "SLURM_PROCID": "5", "SLURM_LOCALID": "1",
                        "SLURM_NODEID": "3", "SLURM_STEP_TASKS_PER_NODE": "2(x3),1"}.items():
        monkeypatch.setenv(name, value)
    assert (ctx.get_world_size(), ctx.get_world_rank(), ctx.get_local_rank(), ctx.get_node_rank(),
            ctx.get_local_world_size()) == (7, 5, 1, 3, 1)
    assert not ctx.is_rank_zero()
    monkeypatch.setenv("SLURM_NODEID", "2")
    assert ctx.get_local_world_size() == 2
    storage = ctx.get_storage()
    assert storage.trial_fs_path == ctx.get_trial_dir() and storage.experiment_dir_name == "exp"
    assert storage.storage_path == str(tmp_path / "store")
    assert ctx.get_trial_resources() == {"cpu": 2, "gpu": 0}


def test_report_fills_every_auto_metric_like_ray(tmp_path):
    session = make_session(tmp_path)
    session.config = {"x": (1, 2)}
    session_mod.set_session(session)
    try:
        assert session_mod.get_trial_resources() == {"cpu": 2, "gpu": 0}
        first = session.report({"loss": 1.0, "timesteps_this_iter": 5, "episodes_this_iter": 2})
        second = session.report({"loss": 0.5, "timesteps_this_iter": 5, "done": True})
    finally:
        session_mod.set_session(None)
    assert set(first) >= AUTO_FILLED, AUTO_FILLED - set(first)
    assert first["config"] == {"x": (1, 2)} and first["experiment_id"] == "abc"
    assert (first["timesteps_total"], second["timesteps_total"]) == (5, 10)
    assert (first["episodes_total"], second["episodes_total"]) == (2, 2)
    assert second["timesteps_since_restore"] == 10 and second["done"] is True and first["done"] is False
    logged = [e["result"] for e in read_events(Path(session.context.trial_dir) / "result.jsonl")]
    assert "config" not in logged[0] and logged[1]["training_iteration"] == 2  # params.pkl holds it
    assert AUTO_METRICS == AUTO_FILLED  # the names kept out of user metrics are these


def test_a_stop_signal_raises_in_the_trainable_but_never_while_hpctune_writes(tmp_path):
    session = make_session(tmp_path)
    request = ControlRecord.stop("asha", final=True)
    session.on_stop_signal(request)  # hpctune's own code runs: the stop waits
    with pytest.raises(StopTrial, match="asha") as stop, session.trainable_code():
        pass
    assert stop.value.final and session.stop_raised
    session.on_stop_signal(request)  # a second signal while cleaning up raises nothing
    session._watchdog.cancel()

    other = make_session(tmp_path / "b")
    with pytest.raises(StopTrial) as cancelled, other.trainable_code():
        other.on_stop_signal(ControlRecord.stop("interrupted"))
    assert cancelled.value.final is False  # Ctrl+C: resumable, not the trial's end
    other._watchdog.cancel()

    third = make_session(tmp_path / "c")
    with pytest.raises(StopTrial), third.trainable_code():
        third.interruptible = False  # as inside report(): the signal only marks the stop
        third.on_stop_signal(request)
        third.interruptible = True
        third.report({"loss": 1})  # ... and report raises it once its write is done
    assert [e["event"] for e in read_events(third.log.path)] == ["result"]
    third._watchdog.cancel()


def test_a_generator_trainable_gets_the_stop_at_its_yield():
    seen, cleaned = [], []

    def gen():
        try:
            for i in range(10):
                yield {"i": i}
        finally:
            cleaned.append(True)

    def report(value):
        seen.append(value)
        if len(seen) == 2:
            raise StopTrial("asha")

    with pytest.raises(StopTrial):
        _run_generator(gen(), SimpleNamespace(report=report))
    assert seen == [{"i": 0}, {"i": 1}] and cleaned == [True]

    def returns():
        yield {"i": 0}
        return {"final": 1}

    assert _run_generator(returns(), SimpleNamespace(report=lambda v: None)) == {"final": 1}


def test_trainable_attributes_outside_and_inside_a_trial(tmp_path):
    class T(Trainable):
        def step(self):
            return {}

    t = T({"a": 1})
    assert (t.iteration, t.trial_id, t.trial_name, t.config) == (0, "default", "default", {"a": 1})
    assert t.reset_config({"a": 2}) is False and T.default_resource_request({}) is None
    session = make_session(tmp_path)
    session.iteration = 4
    session_mod.set_session(session)
    try:
        assert (t.iteration, t.training_iteration, t.trial_id) == (4, 4, "abc_00001")
        assert t.logdir == session.context.trial_dir and t.trial_resources == {"cpu": 2, "gpu": 0}
    finally:
        session_mod.set_session(None)


# -- the local backend's GPUs -------------------------------------------------------------------------------
def test_detect_gpus_from_cuda_visible_devices_or_nvidia_smi(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 3")
    assert detect_gpus() == ["2", "3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert detect_gpus() == []
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,-1,1")
    assert detect_gpus() == ["0"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H200 (UUID: GPU-a)'\n"
                    "echo '  MIG 1g.18gb Device 0: (UUID: MIG-b)'\necho 'GPU 1: NVIDIA H200 (UUID: GPU-c)'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert detect_gpus() == ["0", "1"]
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert detect_gpus() == []


class FakeProc:
    def __init__(self):
        self.code = None
        self.pid = -1

    def poll(self):
        return self.code


def test_local_gpu_trials_wait_for_a_free_gpu(tmp_path, monkeypatch):
    backend = LocalBackend(tmp_path, max_cpus=8, gpus=["0", "1"])
    spawned = {}

    def spawn(job_id, trial_id, gpus=()):
        spawned[trial_id] = (gpus, FakeProc())
        return spawned[trial_id][1]

    monkeypatch.setattr(backend, "_spawn", spawn)
    backend.launch(["a", "b", "c"], {"cpu": 1, "gpu": 1}, None)
    assert {t: g for t, (g, _) in spawned.items()} == {"a": ("0",), "b": ("1",)}
    spawned["b"][1].code = 0
    states = backend.poll()  # b's end is reported; its GPU goes to c at the next poll
    assert "c" not in spawned and states["local-2"].state == "PENDING"
    states = backend.poll()
    assert spawned["c"][0] == ("1",) and states["local-2"].state == "RUNNING"
    backend.launch(["d"], {"cpu": 1, "gpu": 0}, None)
    assert spawned["d"][0] == ()
    with pytest.raises(ConfigError, match="3 GPU.*has 2"):
        backend.launch(["e"], {"cpu": 1, "gpu": 3}, None)


# -- the driver: scancel at once, the grace goes to the worker ------------------------------------------------
def test_a_stop_is_cancelled_at_once_and_marked_final(tmp_path):
    exp = ExperimentDir(tmp_path / "exp")
    exp.create()
    cancelled = []
    backend = SimpleNamespace(cancel=cancelled.extend, poll_interval_s=1.0)
    ctl = Controller(exp, backend, None, None, None, None, ControllerSettings(stop_grace_s=30.0))
    trial = Trial("t1", {}, "", str(exp.trial_dir("t1")), job_id="7_1", job_state="RUNNING")
    exp.trial_dir("t1").mkdir()
    ctl.trials["t1"] = ctl.live["t1"] = trial
    ctl.enactor.request_stop(trial, "stopped by scheduler", by_scheduler=True)
    ctl.enactor.cancel_stopped()
    assert cancelled == ["7_1"] and trial.job_state == "CANCELLING"
    assert exp.read_control("t1").final is True
