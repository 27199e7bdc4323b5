"""Files per trial: params.pkl only for a config JSON cannot give back, the trial's metadata
as ``meta`` events in its result log (an older hpctune's trial.json still read)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hpctune.errors import ExperimentStateError
from hpctune.storage.experiment import ExperimentDir, json_exact
from hpctune.storage.replay import replay_trial, trial_meta


@pytest.fixture
def exp(tmp_path):
    exp = ExperimentDir(tmp_path / "exp")
    exp.create()
    return exp


@pytest.mark.parametrize("value, exact", [
    ({"a": 1, "b": [1.5, "x", None, True], "c": {"d": -2}}, True),
    ({"a": (1, 2)}, False), ({1: "a"}, False), ({"f": np.float64(0.5)}, False),
    ({"f": float("nan")}, False), ({"f": float("inf")}, False), ({"c": json}, False),
])
def test_json_exact_is_true_only_when_json_gives_the_value_back_with_its_types(value, exact):
    assert json_exact(value) is exact


def test_a_json_exact_config_is_params_json_alone_and_a_rewrite_drops_a_stale_pickle(exp):
    exp.write_params("t1", {"lr": 0.1, "layers": [32, 32]})
    assert not exp.params_pickle_path("t1").exists()
    assert exp.read_config("t1") == {"lr": 0.1, "layers": [32, 32]}
    exp.write_params("t1", {"lr": np.float32(0.2)})  # a numpy number: pickled as it is
    assert type(exp.read_config("t1")["lr"]) is np.float32
    exp.write_params("t1", {"lr": 0.3})  # PBT's exploit writes a plain config: the pickle goes
    assert not exp.params_pickle_path("t1").exists() and exp.read_config("t1") == {"lr": 0.3}


def test_trial_meta_is_the_logs_latest_meta_event_and_no_file_of_its_own(exp):
    exp.write_params("t1", {})
    assert exp.read_trial_meta("t1") == {}
    exp.write_trial_meta("t1", {"experiment_tag": "0_x=1", "resources": {"cpu": 1}})
    exp.write_trial_meta("t1", {"experiment_tag": "0_x=1", "resources": {"cpu": 2}})
    assert exp.read_trial_meta("t1") == {"experiment_tag": "0_x=1", "resources": {"cpu": 2}}
    assert sorted(p.name for p in exp.trial_dir("t1").iterdir()) == ["params.json", "result.jsonl"]
    trial = replay_trial(exp, "t1")
    assert (trial.experiment_tag, trial.resources) == ("0_x=1", {"cpu": 2})
    assert not exp.has_started()  # the driver's meta events are not a run


def test_an_older_experiments_trial_json_is_still_read(exp):
    exp.write_params("t1", {})
    exp.trial_meta_path("t1").write_text(json.dumps({"experiment_tag": "7_old", "resources": {"cpu": 3}}))
    assert exp.read_trial_meta("t1")["experiment_tag"] == "7_old"
    assert replay_trial(exp, "t1").resources == {"cpu": 3}
    exp.write_trial_meta("t1", {**exp.read_trial_meta("t1"), "trial_name": "n"})  # a restore updates it
    assert exp.read_trial_meta("t1") == {"experiment_tag": "7_old", "resources": {"cpu": 3}, "trial_name": "n"}


def test_a_damaged_meta_event_names_the_result_log(exp):
    exp.write_params("t1", {})
    exp.result_log_path("t1").write_text('{"event": "meta", "v": 1, "meta": "nope"}\n')
    with pytest.raises(ExperimentStateError, match=r"result\.jsonl is damaged \(not a JSON object\)"):
        trial_meta(exp, "t1")


def test_an_array_tasks_empty_log_is_removed_only_when_it_is_its_own_and_empty(exp):
    local = exp.job_log_paths("local-3")[0]
    local.write_bytes(b"")
    with open(local, "ab") as f:
        assert not exp.remove_empty_job_log("local-3", f.fileno()) and local.exists()  # numbered after its logs
    out = exp.job_log_paths("12_3")[0]
    out.write_bytes(b"")
    with open(out, "ab") as f:
        assert not exp.remove_empty_job_log("12_4", f.fileno())  # another job's log: not this fd's
        f.write(b"x")
        f.flush()
        assert not exp.remove_empty_job_log("12_3", f.fileno()) and out.exists()  # it printed
    out.write_bytes(b"")
    with open(out, "ab") as f:
        assert exp.remove_empty_job_log("12_3", f.fileno()) and not out.exists()
    run_log = exp.job_log_paths("pool-7")[0]  # a pool run's: its number never comes back either
    run_log.write_bytes(b"")
    with open(run_log, "ab") as f:
        assert exp.remove_empty_job_log("pool-7", f.fileno()) and not run_log.exists()


def test_a_jobs_stderr_is_its_stdouts_file_unless_an_older_hpctune_wrote_an_err(exp):
    out, err = exp.job_log_paths("12_3")
    assert out == err and out.name == "12_3_0_log.out"
    (exp.jobs_dir / "12_3_0_log.err").write_text("old")
    assert exp.job_log_paths("12_3")[1].name == "12_3_0_log.err"


def test_a_local_process_that_ended_cleanly_and_quietly_leaves_no_log_and_no_number_comes_back(exp):
    """The local backend removes an empty log of a process that exited 0 (a crash's or a
    printing process's stays); its next number is recorded before a process starts, so a
    restored driver never reuses a job id even when the logs are gone. An experiment from
    before the record is numbered after its logs."""
    import sys

    from hpctune.backends.local import LocalBackend
    from hpctune.storage.local_jobs import read_next_local_job

    backend = LocalBackend(exp.root, max_cpus=4)
    commands = {"a": "print('x')", "b": "raise SystemExit(3)", "c": "pass", "d": "pass"}

    def spawn(job_id, trial_id, gpus=()):  # the real log files, a tiny process instead of a worker
        import subprocess
        out = exp.job_log_paths(job_id)[0]
        with open(out, "ab") as log:
            return subprocess.Popen([sys.executable, "-c", commands[trial_id]], stdout=log, stderr=log)

    backend._spawn = spawn
    assert backend.launch(["a", "b", "c"], {"cpu": 1}, None) == ["local-0", "local-1", "local-2"]
    assert read_next_local_job(exp.jobs_dir) == 3  # recorded before they started
    for proc, *_ in list(backend._running.values()):
        proc.wait()
    backend.poll()
    assert sorted(p.name for p in exp.jobs_dir.glob("*.out")) == ["local-0.out", "local-1.out"]
    record = (exp.jobs_dir / "local-next.json").read_bytes()
    (exp.jobs_dir / "local-next.json").unlink()  # an experiment from before the record
    assert read_next_local_job(exp.jobs_dir) == 2  # after local-1.out, the highest log left
    (exp.jobs_dir / "local-next.json").write_bytes(record)
    restored = LocalBackend(exp.root)  # a restored driver: not local-2 again, whose log went
    restored._spawn = spawn
    assert restored.launch(["d"], {"cpu": 1}, None) == ["local-3"]
    restored.close()
    (exp.jobs_dir / "local-next.json").write_text('{"v": 1, "next": "7"}')
    with pytest.raises(ExperimentStateError, match="local-next.json is not an hpctune job-number record"):
        read_next_local_job(exp.jobs_dir)
