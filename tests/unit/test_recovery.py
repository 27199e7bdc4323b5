"""Recovery that finishes (issue 24, deliverable 4): a trial interrupted by a full disk is
resumed by a default restore; one trial's damaged file quarantines that trial (named, with the
fix) and the others are restored; temp files of killed writes are collected; a torn last result
line is reported and its checkpoint counted."""

from __future__ import annotations

import os

import pytest

from hpctune.controller.recovery import collect_leftovers
from hpctune.errors import StorageFullError
from hpctune.storage.driver_state import load_driver_state
from hpctune.tune import CheckpointConfig
from hpctune.tune.experiment.trial import TrialStatus
from tests.unit.test_controller import grid, make_rig, tid

FULL = ("hpctune.errors.StorageFullError: the filesystem holding /x/trials/t/result.jsonl is full "
        "(or read-only); nothing written so far is lost; free space, then `hpctune resume /x`")


def two_running(tmp_path, **settings):
    """Two trials with a checkpoint at iteration 1 each; the driver saves and is gone."""
    rig = make_rig(tmp_path, grid(2), **settings)
    rig.step()
    for i in (0, 1):
        rig.job(i).start().report(loss=1.0, checkpoint=True)
    rig.step()
    rig.ctl.save()
    return rig


def restored(rig, settings: dict | None = None, **flags):
    new = make_rig(rig.exp.root.parent, rig.space, backend=rig.backend.successor(), exp_name=rig.exp.root.name,
                   **(settings or {}))
    new.ctl.restore(load_driver_state(rig.exp), **flags)
    return new


# -- a full disk --------------------------------------------------------------------------------------
def test_a_trial_a_full_disk_ended_is_resumed_by_a_default_restore(tmp_path):
    rig = two_running(tmp_path)
    rig.job(0).error(FULL)  # its report() hit the full disk
    rig.job(1).error("RuntimeError: its own bug")
    with pytest.raises(StorageFullError):  # the run stops for it (tests/unit/test_hardening_run.py)
        rig.step()
    assert rig.statuses() == {tid(0): TrialStatus.PENDING, tid(1): TrialStatus.ERROR}
    rig.trial(0).fail(FULL)  # as a driver that marked it ERROR (before the run-time stop) left it
    rig.trial(0).num_failures = 1
    rig.ctl.save()
    new = restored(rig)
    assert (new.trial(0).status, new.trial(0).error, new.trial(0).num_failures) == (TrialStatus.PENDING, None, 0)
    assert new.trial(1).status is TrialStatus.ERROR  # a real error still needs --resume-errored
    new.step()
    assert [launch.trial_ids for launch in new.backend.launches] == [[tid(0)]]


def test_a_worker_that_could_not_write_its_error_is_known_by_its_stderr(tmp_path):
    rig = two_running(tmp_path)
    job = rig.trial(0).job_id
    rig.exp.job_log_paths(job)[1].write_text(f"Traceback ...\n{FULL}\n")
    rig.job(0).state = "FAILED"  # gone without an error event
    with pytest.raises(StorageFullError):  # the run stops for it at the poll that sees the job gone
        for _ in range(3):
            rig.step()
    assert rig.trial(0).status is TrialStatus.PENDING
    rig.trial(0).job_id = job  # as a driver before the run-time stop left it: ERROR, with its job
    rig.trial(0).fail("the job ended without a final result")
    rig.ctl.save()
    assert restored(rig).trial(0).status is TrialStatus.PENDING


# -- one trial's damaged file -----------------------------------------------------------------------
@pytest.mark.parametrize("name, content", [
    ("params.pkl", b"\x80\x04garbage"),
    ("params.json", b"{not json"),  # no params.pkl: it holds the config
    ("control.json", b"{not json"),
    ("result.jsonl", b'{"event": "meta", "v": 1, "meta": [1, 2]}\n'),  # the trial's metadata record
    ("result.jsonl", b'{"event": "result", "schema": 1, "result": {"x": 1}, "checkpoint": "../../victim"}\n'),
])
def test_one_damaged_file_quarantines_that_trial_and_restores_the_rest(tmp_path, capsys, name, content):
    rig = two_running(tmp_path)
    path = rig.exp.trial_dir(tid(0)) / name
    with open(path, "ab" if name == "result.jsonl" else "wb") as f:
        f.write(content)
    victim = tmp_path / "victim"
    victim.mkdir()
    new = restored(rig)
    assert new.trial(0).status is TrialStatus.ERROR
    assert f"Trial {tid(0)} is quarantined: {path} cannot be read" in new.trial(0).error
    assert "Fix: restore that file" in new.trial(0).error and "--resume-errored" in new.trial(0).error
    assert new.trial(1).status is not TrialStatus.ERROR
    assert f"{path} cannot be read" in capsys.readouterr().err
    assert victim.is_dir()
    assert new.backend.cancels == [[rig.trial(0).job_id]]  # nobody would read what its job writes
    new.job(1).report(loss=0.5)
    new.step()
    assert new.trial(1).max_iteration == 2 and new.trial(0).status is TrialStatus.ERROR


def test_a_quarantined_trial_stays_so_with_resume_errored_until_its_file_is_fixed(tmp_path):
    rig = two_running(tmp_path)
    params = rig.exp.params_path(tid(0))  # the config is JSON-exact: params.json holds it (no params.pkl)
    assert not rig.exp.params_pickle_path(tid(0)).exists()
    good = params.read_bytes()
    params.write_bytes(b"garbage")
    assert restored(rig, resume_errored=True).trial(0).status is TrialStatus.ERROR
    params.write_bytes(good)
    assert restored(rig, resume_errored=True).trial(0).status is TrialStatus.RUNNING  # its job re-attached


def test_a_forged_trial_id_in_state_json_is_left_out(tmp_path, capsys):
    rig = two_running(tmp_path)
    state = load_driver_state(rig.exp)
    state["trials"].append({**state["trials"][0], "trial_id": "../../etc"})
    new = make_rig(rig.exp.root.parent, rig.space, backend=rig.backend.successor(), exp_name="exp")
    new.ctl.restore(state)
    assert sorted(t.trial_id for t in new.ctl.trial_list) == [tid(0), tid(1)]
    assert "left out a trial of state.json: '../../etc' is not a valid trial id" in capsys.readouterr().err


def test_a_finished_trial_with_a_damaged_file_keeps_its_end(tmp_path):
    rig = two_running(tmp_path)
    rig.job(0).complete()
    rig.step()
    rig.ctl.save()
    rig.exp.control_path(tid(0)).write_bytes(b"\x00\x01")
    assert restored(rig).trial(0).status is TrialStatus.TERMINATED


# -- what killed writes leave -----------------------------------------------------------------------
def test_temp_files_of_killed_writes_are_collected_and_nothing_else(tmp_path):
    rig = two_running(tmp_path)
    rig.job(1).complete()  # no job writes in its directory any more
    rig.step()
    rig.ctl.save()
    root, trial = rig.exp.root, rig.exp.trial_dir(tid(1))
    ours = [root / ".state.json.ab12cd_9.tmp", trial / ".params.pkl.zz99aa00.tmp"]
    for path in ours:
        path.write_text("half")
    copies = [trial / ".tmp_checkpoint_000002.k2j3h4g5", trial / ".exploit_q1w2e3r4"]
    for path in copies:
        path.mkdir()
        (path / "weights").write_text("half")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("keep")
    (trial / ".old_checkpoint_000001.a1b2c3d4").symlink_to(outside)  # removed as a link, not followed
    users = [trial / ".mydata.ab12cd34.tmp", trial / "scratch.tmp", root / ".tmp_checkpoint_000001.abcdefgh"]
    for path in users:
        path.write_text("the trainable's own")
    restored(rig)
    assert [p for p in ours + copies if os.path.lexists(p)] == []
    assert not os.path.lexists(trial / ".old_checkpoint_000001.a1b2c3d4")
    assert (outside / "keep").read_text() == "keep"
    assert [p.exists() for p in users] == [True, True, True]


def test_a_pinned_exploits_staged_copy_is_kept(tmp_path):
    rig = two_running(tmp_path)
    staged = rig.exp.trial_dir(tid(0)) / ".exploit_pinned1"
    staged.mkdir()
    removed = collect_leftovers(rig.exp, [tid(0)], keep={str(staged)})
    assert removed == [] and staged.is_dir()


# -- a torn last result line ---------------------------------------------------------------------------
def test_a_torn_last_line_is_reported_and_its_checkpoint_counted(tmp_path):
    keep_two = {"checkpoint_config": CheckpointConfig(num_to_keep=2)}
    rig = two_running(tmp_path, **keep_two)
    trial_dir = rig.exp.trial_dir(tid(0))
    (trial_dir / "checkpoint_000002").mkdir()  # persisted; then the worker died mid-line
    with open(rig.exp.result_log_path(tid(0)), "ab") as f:
        f.write(b'{"event": "result", "schema": 1, "result": {"training_iter')
    with pytest.warns(UserWarning, match=f"Trial {tid(0)}: the last line of .* was torn by a killed write"):
        new = restored(rig, keep_two)
    assert [c[0] for c in new.trial(0).checkpoints] == ["checkpoint_000001", "checkpoint_000002"]
    new.step()
    new.job(0).iteration = 2  # the job goes on after its torn report
    new.job(0).report(loss=0.5, checkpoint=True)
    new.step()
    assert sorted(p.name for p in trial_dir.glob("checkpoint_*")) == ["checkpoint_000002", "checkpoint_000003"]


# -- a garbage control.json under a running trial ----------------------------------------------------
def test_a_garbage_control_record_is_no_request_for_a_running_trial(tmp_path, capsys):
    from hpctune.storage.result_log import ResultLog
    from hpctune.worker.context import TrialContext
    from hpctune.worker.session import Session

    context = TrialContext("t", "t", str(tmp_path), "exp", "0", slurm_job_id="1", experiment_id="e")
    session = Session(context, ResultLog(tmp_path / "result.jsonl"), tmp_path / "control.json", stop_grace_s=1)
    (tmp_path / "control.json").write_bytes(b"\xff garbage")
    session.check_control()  # no StopTrial: the trial goes on
    assert session.stop_request() is None
    err = capsys.readouterr().err
    assert f"hpctune: ignoring the control record {tmp_path / 'control.json'}: " in err
    assert "is not an hpctune control record" in err


# -- experiment.json and ResultGrid.from_path ------------------------------------------------------
def test_a_damaged_experiment_json_is_a_clear_error_before_the_restore_changes_anything(tmp_path):
    from hpctune.errors import ExperimentStateError

    rig = two_running(tmp_path)
    rig.exp.experiment_path.write_bytes(b'{"metric": "loss", ')
    new = make_rig(rig.exp.root.parent, rig.space, backend=rig.backend.successor(), exp_name="exp")
    with pytest.raises(ExperimentStateError, match=f"{rig.exp.experiment_path} is damaged .*JSONDecodeError.* "
                                                   "Fix: restore the file from a backup"):
        new.ctl.restore(load_driver_state(rig.exp))
    assert new.ctl.trial_list == [] and new.backend.cancels == []


def test_from_path_marks_a_trial_with_a_garbled_trial_json_and_loads_the_rest(tmp_path):
    from hpctune.tune import ResultGrid

    rig = two_running(tmp_path)
    rig.job(1).report(loss=0.5).complete()
    rig.step()
    rig.ctl.save()
    log = rig.exp.result_log_path(tid(0))  # as an older hpctune left it: no meta events, a trial.json
    log.write_text("".join(line + "\n" for line in log.read_text().splitlines() if '"meta"' not in line))
    meta = rig.exp.trial_meta_path(tid(0))
    meta.write_bytes(b"\x00garbled{")
    rig.exp.experiment_path.write_text("[]")
    with pytest.warns(UserWarning) as caught:
        grid_ = ResultGrid.from_path(rig.exp.root)
    messages = [str(w.message) for w in caught]
    assert any(m.startswith(f"{meta} is damaged (UnicodeDecodeError") and "It is shown as an errored trial" in m
               for m in messages), messages
    assert any(m.startswith(f"{rig.exp.experiment_path} is damaged (not a JSON object)") for m in messages)
    assert (len(grid_), grid_.num_errors, grid_.num_terminated) == (2, 1, 1)
    assert f"{meta} is damaged" in str(grid_.errors[0])


def test_from_path_never_uses_a_crafted_checkpoint_name(tmp_path):
    from hpctune.tune import ResultGrid

    rig = two_running(tmp_path)
    rig.job(0).complete()
    rig.step()
    _append_line = b'{"event": "result", "schema": 1, "result": {"training_iteration": 9}, "checkpoint": "../../x"}\n'
    with open(rig.exp.result_log_path(tid(1)), "ab") as f:
        f.write(_append_line)
    with pytest.warns(UserWarning, match=f"Trial {tid(1)}: its result log names a checkpoint that is not used"):
        grid_ = ResultGrid.from_path(rig.exp.root)
    checkpoint = next(r for r in grid_ if r.trial_id == tid(1)).checkpoint
    assert checkpoint is not None and checkpoint.path.endswith("checkpoint_000001")
