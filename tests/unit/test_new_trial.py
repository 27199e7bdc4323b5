"""Creating a trial in few metadata operations (``storage/new_trial``, ``secure.NewDirs``):
what the short paths must keep of the general ones (modes, the old files of a directory that
was there, the names written while the trial is created, the driver not hearing itself)."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

import hpctune.storage.secure as secure
from hpctune.errors import StorageError
from hpctune.storage.events import EventKind
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.result_log import LogTail, ResultLog, read_events
from hpctune.storage.secure import NewDirs


@pytest.fixture
def exp(tmp_path):
    exp = ExperimentDir(tmp_path / "exp")
    exp.create()
    return exp


@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def mode_of(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_new_dirs_get_exactly_the_shared_mode_although_the_umask_takes_the_group_bits(
    tmp_path, umask
):
    umask(0o077)  # mkdir alone gives 0700: each directory is checked and fixed
    dirs = NewDirs(tmp_path, 0o750)
    assert dirs.make("a") and dirs.make("b") and dirs.make("c")
    assert [mode_of(tmp_path / n) for n in "abc"] == [0o750, 0o750, 0o750]


def test_new_dirs_check_the_mode_until_mkdir_gives_it_then_trust_mkdir(
    tmp_path, umask, monkeypatch
):
    checked = []
    real = secure._set_dir_mode
    monkeypatch.setattr(
        secure, "_set_dir_mode", lambda path, mode: checked.append(path.name) or real(path, mode)
    )
    umask(0o022)
    dirs = NewDirs(tmp_path, 0o700)
    for name in "abc":
        assert dirs.make(name)
    assert checked == ["a"] and [mode_of(tmp_path / n) for n in "abc"] == [0o700] * 3


def test_new_dirs_policy_mode_follows_the_parent(tmp_path):
    os.chmod(tmp_path, 0o750)
    assert NewDirs(tmp_path).mode == 0o750
    os.chmod(tmp_path, 0o700)
    assert NewDirs(tmp_path).mode == 0o700


def test_new_dirs_say_false_for_a_directory_there_and_refuse_a_file(tmp_path):
    dirs = NewDirs(tmp_path, 0o700)
    (tmp_path / "old").mkdir(mode=0o755)
    assert dirs.make("old") is False and mode_of(tmp_path / "old") == 0o755  # left as it is
    (tmp_path / "f").write_text("x")
    with pytest.raises(StorageError, match="not a directory"):
        dirs.make("f")


def test_a_fresh_trial_has_params_json_in_the_policy_mode_and_no_pickle(exp, umask):
    umask(0o077)
    with exp.new_trial("t1") as new:
        exp.write_params("t1", {"lr": 0.1})
        assert new.fresh is True
    assert exp.read_config("t1") == {"lr": 0.1} and not exp.params_pickle_path("t1").exists()
    assert mode_of(exp.params_path("t1")) == 0o600 and mode_of(exp.trial_dir("t1")) == 0o700
    assert [n for n in os.listdir(exp.trial_dir("t1")) if n.endswith(".tmp")] == []


def test_a_fresh_trial_shared_with_the_group_gets_the_shared_modes(tmp_path, umask):
    umask(0o077)
    exp = ExperimentDir(tmp_path / "exp")
    exp.create(share_with_group=True)
    with exp.new_trial("t1"):
        exp.write_params("t1", {"lr": 0.1})
        exp.write_trial_meta("t1", {"trial_id": "t1"})
    assert mode_of(exp.trial_dir("t1")) == 0o750
    assert mode_of(exp.params_path("t1")) == 0o640 and mode_of(exp.result_log_path("t1")) == 0o640


def test_a_pickle_written_while_the_trial_is_created_goes_when_a_plain_config_replaces_it(exp):
    with exp.new_trial("t1"):
        exp.write_params("t1", {"lr": np.float32(0.2)})
        assert exp.params_pickle_path("t1").exists()
        exp.write_params("t1", {"lr": 0.3})  # PBT's initial config, plain
    assert not exp.params_pickle_path("t1").exists() and exp.read_config("t1") == {"lr": 0.3}


def test_a_directory_there_already_keeps_the_general_path_its_stale_pickle_goes(exp):
    exp.write_params("t1", {"lr": np.float32(0.2)})  # a driver stopped before its snapshot
    with exp.new_trial("t1") as new:
        exp.write_params("t1", {"lr": 0.3})
        assert new.fresh is False
    assert not exp.params_pickle_path("t1").exists() and exp.read_config("t1") == {"lr": 0.3}


def test_an_old_trial_json_is_read_for_a_directory_that_was_there(exp):
    exp.trial_dir("t1").mkdir()
    (exp.trial_dir("t1") / "trial.json").write_text('{"trial_name": "old"}')
    with exp.new_trial("t1"):
        exp.write_params("t1", {"lr": 0.1})
        assert exp.read_trial_meta("t1") == {"trial_name": "old"}


def test_the_record_written_while_the_trial_is_created_is_read_back_from_memory_and_logged(exp):
    with exp.new_trial("t1") as new:
        exp.write_params("t1", {"lr": 0.1})
        assert exp.read_trial_meta("t1") == {}
        exp.write_trial_meta("t1", {"trial_name": "named"})  # trial_name_creator's, in on_trial_add
        exp.write_trial_meta("t1", {**exp.read_trial_meta("t1"), "experiment_tag": "0_lr=0.1"})
        fd, size = new.take_log()
        os.close(fd)
    metas = [
        e["meta"]
        for e in read_events(exp.result_log_path("t1"))
        if e["event"] == EventKind.META.value
    ]
    assert metas == [{"trial_name": "named"}, {"trial_name": "named", "experiment_tag": "0_lr=0.1"}]
    assert size == os.path.getsize(exp.result_log_path("t1"))
    assert exp.read_trial_meta("t1") == metas[-1]  # after the block: from the log


def test_the_window_is_only_the_trial_being_created(exp):
    exp.write_trial_meta("t0", {"trial_name": "zero"})
    with exp.new_trial("t1"):
        assert exp.read_trial_meta("t0") == {"trial_name": "zero"}
    with exp.new_trial("t2"):
        exp.write_params("t2", {"lr": 0.1})
    assert exp.read_trial_meta("t2") == {}


def test_the_driver_tail_skips_its_own_meta_events_and_reads_the_worker_s(exp):
    with exp.new_trial("t1") as new:
        exp.write_params("t1", {"lr": 0.1})
        exp.write_trial_meta("t1", {"trial_id": "t1"})
        tail = LogTail(exp.result_log_path("t1"), keep_open=True)
        tail.adopt(*new.take_log())
    assert tail.read_new() == []
    ResultLog(exp.result_log_path("t1")).append({"event": "start", "v": 1, "trial_id": "t1"})
    assert [e["event"] for e in tail.read_new()] == ["start"]
    assert tail.offset == os.path.getsize(exp.result_log_path("t1"))
    tail.close()


def test_a_log_left_unread_is_closed_when_the_window_ends(exp):
    with exp.new_trial("t1") as new:
        exp.write_params("t1", {"lr": 0.1})
        exp.write_trial_meta("t1", {"trial_id": "t1"})
        assert new._log is not None
    assert new._log is None and new.take_log() is None


def test_new_dirs_make_a_missing_parent_first(tmp_path):
    dirs = NewDirs(tmp_path / "trials", 0o700)
    assert dirs.make("a") and mode_of(tmp_path / "trials" / "a") == 0o700


def test_a_fresh_trial_s_config_files_are_created_in_place_and_a_later_write_replaces_them(exp, monkeypatch):
    renames = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: renames.append(os.path.basename(b)) or real(a, b))
    with exp.new_trial("t1"):
        exp.write_params("t1", {"lr": np.float32(0.5)})  # params.pkl and params.json: one open each
        assert renames == [] and exp.read_params("t1") == {"lr": 0.5}
        exp.write_params("t1", {"lr": np.float32(0.25)})  # PBT's initial config: replaced whole
        assert sorted(renames) == ["params.json", "params.pkl"]
    assert exp.read_config("t1") == {"lr": np.float32(0.25)} and exp.read_params("t1") == {"lr": 0.25}
    assert sorted(os.listdir(exp.trial_dir("t1"))) == ["params.json", "params.pkl"]


def test_a_directory_being_created_is_no_trial_for_readers_until_its_record_is_logged(exp):
    from hpctune.storage.replay import load_trials

    exp.write_params("t0", {"lr": 0.1})
    exp.write_trial_meta("t0", {"trial_id": "t0", "experiment_tag": "0"})
    exp.trial_dir("t1").mkdir()
    exp.params_path("t1").write_text('{"lr": 0.')  # the driver is writing it in place
    exp.trial_dir("t2").mkdir()
    (exp.trial_dir("t2") / "trial.json").write_text('{"experiment_tag": "old"}')  # an older hpctune's
    exp.params_path("t2").write_text('{"lr": 0.2}')
    trials = load_trials(exp)  # no driver snapshot yet: the logs alone
    assert [t.trial_id for t in trials] == ["t0", "t2"]
    exp.params_path("t1").write_text('{"lr": 0.3}')
    exp.write_trial_meta("t1", {"trial_id": "t1"})
    assert [t.config for t in load_trials(exp)] == [{"lr": 0.1}, {"lr": 0.3}, {"lr": 0.2}]
