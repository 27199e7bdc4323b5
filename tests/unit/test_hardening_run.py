"""Damage and a full disk met while the driver runs (issue 24, deliverable 4, run-time half).

* A result log that names a crafted checkpoint (``../x``) quarantines that trial: ERROR with a
  message naming the trial and the file, its job cancelled, nothing outside the experiment
  touched, and the driver goes on with the other trials.
"""

from __future__ import annotations

from hpctune.config import CheckpointConfig
from hpctune.storage.events import EventKind
from hpctune.tune.experiment.trial import TrialStatus
from tests.unit.test_controller import grid, make_rig, tid


def crafted_result(job, name: str) -> None:
    """A result line naming checkpoint ``name``, as an edited or forged log would."""
    job.iteration += 1
    job._write(
        EventKind.RESULT,
        checkpoint=name,
        result={"loss": 1.0, "training_iteration": job.iteration, "trial_id": job.trial_id},
    )


def test_a_crafted_checkpoint_name_quarantines_its_trial_and_the_run_goes_on(tmp_path, capsys):
    victim = tmp_path / "x"
    victim.mkdir()
    rig = make_rig(tmp_path / "runs", grid(2), checkpoint_config=CheckpointConfig(num_to_keep=1))
    rig.step()
    for i in (0, 1):
        rig.job(i).start().report(loss=1.0, checkpoint=True)
    rig.step()
    crafted_result(rig.job(0), "../../x")
    rig.job(1).report(loss=0.5, checkpoint=True)
    rig.step()  # no exception: the driver goes on

    bad, good = rig.trial(0), rig.trial(1)
    log = rig.exp.result_log_path(tid(0))
    assert bad.status is TrialStatus.ERROR
    assert f"Trial {tid(0)} is quarantined: {log} cannot be trusted" in bad.error
    assert "'../../x' is not a valid checkpoint name" in bad.error
    assert bad.checkpoint == "checkpoint_000001"  # the crafted name never became its checkpoint
    assert [bad.job_id] in rig.backend.cancels
    assert sum(tid(0) in launch.trial_ids for launch in rig.backend.launches) == 1  # not retried
    assert victim.is_dir()
    assert f"Trial {tid(0)} is quarantined" in capsys.readouterr().err

    assert good.status is TrialStatus.RUNNING and good.checkpoint == "checkpoint_000002"
    rig.job(1).report(loss=0.2).complete()
    rig.step(3)
    assert good.status is TrialStatus.TERMINATED


def test_a_crafted_checkpoint_name_at_a_stop_quarantines_too(tmp_path):
    rig = make_rig(tmp_path / "runs", grid(1))
    rig.step()
    job = rig.job(0).start()
    job._write(EventKind.STOPPED, reason="stopped", checkpoint="..", result={"loss": 1.0})
    rig.step()
    assert rig.trial(0).status is TrialStatus.ERROR
    assert "'..' is not a valid checkpoint name" in rig.trial(0).error
