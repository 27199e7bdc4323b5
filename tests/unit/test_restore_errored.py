"""``Tuner.restore(restart_errored=True)`` / ``hpctune resume --restart-errored`` runs errored
trials again from scratch (their checkpoints removed, so the next worker finds none), while
``resume_errored`` continues them from their checkpoints; both give the trial a fresh retry count."""

from __future__ import annotations

from pathlib import Path

from hpctune.storage.driver_state import load_driver_state
from hpctune.storage.result_log import ResultLog
from hpctune.tune.experiment.trial import TrialStatus
from hpctune.worker.context import TrialContext
from hpctune.worker.session import Session
from tests.unit.fake_backend import Launch
from tests.unit.test_controller import CPU1, grid, make_rig, tid


def errored_twice(tmp_path: Path):
    """One trial, max_failures=1: it checkpoints at iterations 1 and 2, fails, is retried,
    fails again: ERROR with 2 failures. Then the driver saves and is gone."""
    rig = make_rig(tmp_path, grid(1), max_failures=1)
    rig.step()
    rig.job(0).start().report(loss=1.0, checkpoint=True).report(loss=0.9, checkpoint=True).error()
    rig.step()
    rig.step()
    rig.job(0).start(restored_iteration=2).error()
    rig.step()
    assert (rig.trial(0).status, rig.trial(0).num_failures) == (TrialStatus.ERROR, 2)
    rig.ctl.save()
    return rig


def restored_with(rig, **flags):
    new = make_rig(rig.exp.root.parent, rig.space, backend=rig.backend.successor(),
                   exp_name=rig.exp.root.name, max_failures=1)
    new.ctl.restore(load_driver_state(rig.exp), **flags)
    return new


def checkpoints(rig) -> list[str]:
    return sorted(p.name for p in rig.exp.trial_dir(tid(0)).glob("checkpoint_*"))


def next_workers_start(rig) -> int:
    """The iteration a worker started now in the trial's directory would continue from."""
    trial_dir = rig.exp.trial_dir(tid(0))
    context = TrialContext(tid(0), tid(0), str(trial_dir), "exp", "0", slurm_job_id="1", experiment_id="t")
    return Session(context, ResultLog(rig.exp.result_log_path(tid(0))), trial_dir / "control.json",
                   stop_grace_s=1e6).iteration


def test_restart_errored_runs_the_trial_again_from_scratch(tmp_path):
    old = errored_twice(tmp_path)
    assert checkpoints(old) == ["checkpoint_000001", "checkpoint_000002"]
    new = restored_with(old, restart_errored=True)
    assert checkpoints(new) == []
    assert next_workers_start(new) == 0
    assert (new.trial(0).status, new.trial(0).num_failures, new.trial(0).error) == (TrialStatus.PENDING, 0, None)
    new.step()
    assert new.backend.launches == [Launch([tid(0)], CPU1, None, ["102_0"])]


def test_resume_errored_continues_from_the_latest_checkpoint(tmp_path):
    old = errored_twice(tmp_path)
    new = restored_with(old, resume_errored=True)
    assert checkpoints(new) == ["checkpoint_000001", "checkpoint_000002"]
    assert next_workers_start(new) == 2
    assert (new.trial(0).status, new.trial(0).num_failures) == (TrialStatus.PENDING, 0)


def test_a_resumed_errored_trial_gets_its_retries_again(tmp_path):
    """Its two failures were spent before the restore: with max_failures=1 its next failure is
    retried (relaunched), not final."""
    old = errored_twice(tmp_path)
    new = restored_with(old, resume_errored=True)
    new.step()
    new.job(0).start(restored_iteration=2).error()
    new.step()
    assert (new.trial(0).status, new.trial(0).num_failures) == (TrialStatus.PENDING, 1)
    new.step()
    assert [launch.trial_ids for launch in new.backend.launches] == [[tid(0)], [tid(0)]]
    new.job(0).start(restored_iteration=2).error()
    new.step()
    assert (new.trial(0).status, new.trial(0).num_failures) == (TrialStatus.ERROR, 2)


def test_a_trial_restarted_from_scratch_is_heard_from_its_first_iteration(tmp_path):
    """Its old iterations are gone with its checkpoints: the rerun's results 1 and 2 are new
    progress (the scheduler hears them), and it names no removed checkpoint."""
    new = restored_with(errored_twice(tmp_path), restart_errored=True)
    assert (new.trial(0).checkpoint, new.trial(0).checkpoints) == (None, [])
    new.step()
    new.job(0).start().report(loss=5.0).report(loss=4.0).report(loss=3.0)
    new.step()
    assert new.scheduler.without_adds()[-3:] == [("result", tid(0), 1, 5.0), ("result", tid(0), 2, 4.0),
                                                ("result", tid(0), 3, 3.0)]
