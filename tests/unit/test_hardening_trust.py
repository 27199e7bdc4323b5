"""Nothing trusted that another user wrote (issue 24, deliverable 3).

Other users' experiments are data only for the CLI; files are read only when regular, not
linked and of bounded size; names read from files are single path components; the
experiment root is never created through a link; control characters never reach the
terminal; checkpoint copies never follow links out of the checkpoint; hpctune's own names
are never trial directory names.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from hpctune import tune
from hpctune.config import RunConfig
from hpctune.controller.trial_names import TrialNamer
from hpctune.errors import UnsafeFileError
from hpctune.storage.atomic import read_json
from hpctune.storage.checkpoints import persist_checkpoint
from hpctune.storage.experiment import ExperimentDir, is_reserved_name
from hpctune.storage.secure import check_component, child_path, read_regular_bytes
from hpctune.tune.experiment.trial import Trial
from tests.unit import test_cli_hardening as cli_cases
from tests.unit.cli_env import cli_env, run  # noqa: F401 - cli_env is autouse
from tests.unit.test_cli_hardening import running_experiment

sleeper, slurm_calls = cli_cases.sleeper, cli_cases.slurm_calls  # the fixtures, shared

OTHER_UID = 54321
ESC = "\x1b]0;pwned\x07\x1b[2J"


# -- other users' experiments ---------------------------------------------------------------------
@pytest.mark.parametrize("owned", ["root", "state.json", "summary.json"])
def test_cancel_refuses_an_experiment_you_do_not_own(capsys, tmp_path, sleeper, slurm_calls, owned):
    proc, sent = sleeper
    exp = running_experiment(tmp_path / "results", driver={"pid": proc.pid, "host": os.uname().nodename})
    os.chown(exp if owned == "root" else exp / owned, OTHER_UID, OTHER_UID)
    code, _, err = run(capsys, "cancel", "live")
    assert code == 1 and "Refusing to cancel" in err and f"belongs to uid {OTHER_UID}" in err
    assert "reads other users' experiments as data only" in err
    assert sent == [] and slurm_calls == []
    assert not list(exp.glob("trials/*/control.json"))


def test_cancel_refuses_an_experiment_others_may_write(capsys, tmp_path, slurm_calls):
    exp = running_experiment(tmp_path / "results")
    os.chmod(exp / "state.json", 0o666)
    code, _, err = run(capsys, "cancel", "live")
    assert code == 1 and "state.json may be written by others" in err and slurm_calls == []


def test_resume_refuses_an_experiment_you_do_not_own(capsys, tmp_path):
    exp = running_experiment(tmp_path / "results")
    os.chown(exp, OTHER_UID, OTHER_UID)
    code, _, err = run(capsys, "resume", "live")
    assert code == 1 and "Refusing to resume" in err


def test_ls_and_status_still_read_other_users_experiments(capsys, tmp_path):
    exp = running_experiment(tmp_path / "results")
    os.chown(exp, OTHER_UID, OTHER_UID)
    assert run(capsys, "ls")[0] == 0
    assert run(capsys, "status", "live", "--no-squeue")[0] == 0


# -- files read only if regular, not linked, bounded ---------------------------------------------------
def test_a_fifo_as_summary_does_not_hang_ls(capsys, tmp_path):
    exp = running_experiment(tmp_path / "results")
    (exp / "summary.json").unlink()
    os.mkfifo(exp / "summary.json")
    result = {}
    worker = threading.Thread(target=lambda: result.update(out=run(capsys, "ls")))
    worker.start()
    worker.join(timeout=20)
    assert not worker.is_alive(), "hpctune ls hangs on a FIFO"
    code, out, _ = result["out"]
    assert code == 0 and "unreadable (summary.json)" in out


def test_a_link_to_dev_zero_is_not_read(tmp_path):
    (tmp_path / "summary.json").symlink_to("/dev/zero")
    with pytest.raises(UnsafeFileError, match="symbolic link"):
        read_json(tmp_path / "summary.json")


def test_a_device_and_an_oversized_file_are_refused(tmp_path):
    with pytest.raises(UnsafeFileError, match="not a regular file"):
        read_regular_bytes("/dev/null")
    big = tmp_path / "big.json"
    big.write_bytes(b"1" * 101)
    with pytest.raises(UnsafeFileError, match="larger than 100 bytes"):
        read_regular_bytes(big, max_bytes=100)
    assert read_regular_bytes(big, max_bytes=101) == b"1" * 101


# -- names read from files are single path components ---------------------------------------------------
@pytest.mark.parametrize("name", ["../../etc", "..", ".", "", "a/b", "x\x00y", "tab\there", 5, None,
                                  "x" * 256])
def test_names_that_are_not_one_path_component_are_refused(tmp_path, name):
    with pytest.raises(UnsafeFileError, match="is not a valid checkpoint name"):
        child_path(tmp_path, name, "checkpoint name")
    with pytest.raises(UnsafeFileError, match="is not a valid trial id"):
        ExperimentDir(tmp_path).trial_dir(name)


@pytest.mark.parametrize("name", ["checkpoint_000003", "abc_00001", "name with spaces", "é"])
def test_single_components_pass(name):
    assert check_component(name, "x") == name


def test_a_crafted_checkpoint_name_never_removes_outside_the_experiment(tmp_path):
    from hpctune.config import CheckpointConfig
    from hpctune.controller.output import keep_checkpoint

    victim = tmp_path / "victim"
    victim.mkdir()
    trial_dir = tmp_path / "exp" / "trials" / "t_00000"
    trial_dir.mkdir(parents=True)
    trial = Trial(trial_id="t_00000", config={}, experiment_tag="0", path=str(trial_dir))
    trial.checkpoints = [["../../../victim", None], ["checkpoint_000002", None]]

    with pytest.raises(UnsafeFileError):
        keep_checkpoint(trial, "checkpoint_000003", {}, CheckpointConfig(num_to_keep=1))
    assert victim.is_dir()


# -- the experiment root ---------------------------------------------------------------------------------
def test_a_link_planted_at_the_experiment_root_is_not_followed(tmp_path):
    target = tmp_path / "attacker"
    target.mkdir()
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "victim").symlink_to(target)
    with pytest.raises(UnsafeFileError, match="symbolic link"):
        tune.Tuner(lambda config: None, run_config=RunConfig(name="victim", verbose=0)).fit()
    assert list(target.iterdir()) == []


def test_the_root_keeps_its_last_component_but_resolves_its_parents(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    assert ExperimentDir(tmp_path / "alias" / "exp").root == tmp_path / "real" / "exp"
    assert ExperimentDir(tmp_path / "real" / "exp" / "..").root == tmp_path / "real"


# -- control characters ----------------------------------------------------------------------------------
def test_control_characters_never_reach_the_terminal(capsys, tmp_path):
    exp = running_experiment(tmp_path / "results")
    state = json.loads((exp / "state.json").read_text())
    state["trials"][0]["config"] = {"a": ESC, ESC: "[/]"}
    state["trials"][0]["error"] = ESC
    (exp / "state.json").write_text(json.dumps(state))
    summary = json.loads((exp / "summary.json").read_text())
    summary["metric"] = ESC
    (exp / "summary.json").write_text(json.dumps(summary))
    named = exp.rename(exp.parent / f"live{ESC}")
    outputs = [run(capsys, "ls"), run(capsys, "status", str(named), "--no-squeue"),
               run(capsys, "trials", str(named)), run(capsys, "best", f"nope{ESC}")]
    for _, out, err in outputs:
        assert "\x1b" not in out + err and "\x07" not in out + err
    assert "\\x1b]0;pwned\\x07" in outputs[0][1] + outputs[2][1]


# -- checkpoints never carry links out -------------------------------------------------------------------
def test_a_checkpoint_link_out_of_the_checkpoint_is_refused(tmp_path):
    secret = tmp_path / "id_rsa"
    secret.write_text("secret")
    source, trial_dir = tmp_path / "ckpt", tmp_path / "trial"
    source.mkdir()
    trial_dir.mkdir()
    (source / "model.bin").write_text("weights")
    (source / "key").symlink_to(secret)
    with pytest.raises(UnsafeFileError, match="outside the checkpoint"):
        persist_checkpoint(source, trial_dir, 1)
    assert not list(trial_dir.rglob("*"))  # no copy, no temp directory left


def test_a_checkpoint_link_inside_the_checkpoint_is_copied_as_its_file(tmp_path):
    source, trial_dir = tmp_path / "ckpt", tmp_path / "trial"
    (source / "sub").mkdir(parents=True)
    trial_dir.mkdir()
    (source / "sub" / "model.bin").write_text("weights")
    (source / "latest").symlink_to(source / "sub" / "model.bin")
    (source / "loop").symlink_to(source)
    with pytest.raises(UnsafeFileError, match="link to its own parent"):
        persist_checkpoint(source, trial_dir, 1)
    (source / "loop").unlink()
    final = persist_checkpoint(source, trial_dir, 1)
    assert (final / "latest").read_text() == "weights" and not (final / "latest").is_symlink()


# -- reserved names ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["pool", "trials", "jobs", "state.json", "tuner.pkl", "searcher-state.pkl",
                                  ".driver.lock", "pbt_policy_x.txt", "driver.log", ".hidden"])
def test_hpctunes_own_names_are_reserved(name):
    assert is_reserved_name(name)


def test_a_dirname_creator_cannot_take_a_reserved_name(tmp_path):
    exp = ExperimentDir(tmp_path / "exp")
    exp.create()
    namer = TrialNamer(exp, dirname_creator=lambda trial: "pool")
    trial = Trial(trial_id="t_00000", config={}, experiment_tag="0", path=str(exp.trial_dir("t_00000")))
    Path(trial.path).mkdir()
    namer.name(trial, [trial])
    assert trial.dirname == "pool_2" and not (exp.root / "pool").exists()


def test_the_searcher_state_name_is_the_searchers():
    from hpctune.storage.experiment import SEARCHER_STATE_FILE
    from hpctune.tune.search.searcher import SEARCHER_STATE_FILE as searchers

    assert searchers == SEARCHER_STATE_FILE
