"""Damage and a full disk met while the driver runs (issue 24, deliverable 4, run-time half).

* A result log that names a crafted checkpoint (``../x``) quarantines that trial: ERROR with a
  message naming the trial and the file, its job cancelled, nothing outside the experiment
  touched, and the driver goes on with the other trials.
* A trial's job that meets a full (or read-only) disk stops the run as the driver's own write
  would, with or without retries: no ERROR, no retry spent; a default restore resumes it.
"""

from __future__ import annotations

import json

import pytest

from hpctune.config import CheckpointConfig
from hpctune.errors import StorageFullError
from hpctune.storage.driver_state import load_driver_state
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


# -- a full disk met by a trial's job ------------------------------------------------------------------
FULL = (
    "hpctune.errors.StorageFullError: the filesystem holding /x/trials/t/result.jsonl is full "
    "(or read-only); nothing written so far is lost; free space, then `hpctune resume /x`"
)


def three_running(tmp_path, **settings):
    rig = make_rig(tmp_path / "runs", grid(3), **settings)
    rig.step()
    for i in (0, 1, 2):
        rig.job(i).start().report(loss=1.0, checkpoint=True)
    rig.step()
    return rig


@pytest.mark.parametrize("max_failures", [0, 3])
def test_a_full_disk_met_by_a_job_stops_the_run_with_or_without_retries(
    tmp_path, capsys, max_failures
):
    rig = three_running(tmp_path, max_failures=max_failures)
    rig.job(0).error(FULL)  # its report() hit the full disk
    with pytest.raises(StorageFullError) as raised:
        rig.ctl.run()
    assert "/x/trials/t/result.jsonl is full (or read-only)" in str(raised.value)
    assert f"`hpctune resume {rig.exp.root}`" in str(raised.value)
    first = rig.trial(0)
    assert (first.status, first.error, first.num_failures) == (TrialStatus.PENDING, None, 0)
    assert first.awaiting_restart  # resumed from its checkpoint, no retry spent
    for i in (1, 2):  # the others' jobs are cancelled, to be resumed too
        assert rig.trial(i).status is TrialStatus.PENDING
    cancelled = {job for batch in rig.backend.cancels for job in batch}
    assert {rig.job(1).job_id, rig.job(2).job_id} <= cancelled
    assert sum(tid(0) in launch.trial_ids for launch in rig.backend.launches) == 1  # not relaunched
    assert capsys.readouterr().err.count("is full (or read-only)") == 1  # said once
    summary = json.loads(rig.exp.summary_path.read_text())
    assert summary["status"] == "error: disk full"

    new = make_rig(
        rig.exp.root.parent,
        rig.space,
        backend=rig.backend.successor(),
        exp_name=rig.exp.root.name,
        max_failures=max_failures,
    )
    new.ctl.restore(load_driver_state(rig.exp))  # default flags
    new.step()
    relaunched = sorted(t for launch in new.backend.launches for t in launch.trial_ids)
    assert relaunched == [tid(0), tid(1), tid(2)]


def test_a_job_that_could_not_write_its_error_is_known_by_its_stderr(tmp_path):
    rig = three_running(tmp_path)
    rig.exp.job_log_paths(rig.trial(0).job_id)[1].write_text(f"Traceback ...\n{FULL}\n")
    rig.job(0).vanish("FAILED")  # gone without an error event
    with pytest.raises(StorageFullError):
        rig.ctl.run()
    assert (rig.trial(0).status, rig.trial(0).num_failures) == (TrialStatus.PENDING, 0)


def test_a_trials_own_error_still_fails_it(tmp_path):
    rig = three_running(tmp_path)
    rig.job(0).error("RuntimeError: its own bug (the disk is fine)")
    rig.step()
    assert rig.trial(0).status is TrialStatus.ERROR and rig.ctl.state.storage_full is None
