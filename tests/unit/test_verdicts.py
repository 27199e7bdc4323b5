"""The driver's verdict on a result its worker waits at: proceed, or the stop or pause it decided."""

from hpctune.core.decision_points import EVERY, DecisionPoints
from hpctune.storage.experiment import ExperimentDir
from hpctune.tune.schedulers.trial_scheduler import Decision
from tests.unit.fake_backend import FakeBackend
from tests.unit.test_controller import make_rig, tid


def test_the_launch_tells_the_worker_where_to_wait(tmp_path):
    """The test's recording scheduler decides in its own on_trial_result: every result."""
    rig = make_rig(tmp_path, stop={"training_iteration": 3})
    rig.step()
    meta = rig.exp.read_trial_meta(tid(0))
    assert DecisionPoints.from_json(meta["decision_points"]) == EVERY


def test_a_waiting_result_gets_a_proceed_for_its_iteration(tmp_path):
    rig = make_rig(tmp_path)
    rig.step()
    rig.job(0).start().report(loss=1.0)  # not at a decision point: nobody waits, nothing written
    rig.step()
    assert rig.control(0) is None
    rig.job(0).report(loss=0.9, waits=True)
    rig.step()
    record = rig.control(0)
    assert (record.action.value, record.iteration) == ("proceed", 2)


def test_a_stop_or_pause_is_the_verdict_and_no_proceed_overwrites_it(tmp_path):
    rig = make_rig(tmp_path, decisions={(tid(0), 1): Decision.STOP, (tid(1), 1): Decision.PAUSE},
                   max_concurrent=3)
    rig.step()
    for i in (0, 1):
        rig.job(i).start().report(loss=1.0, waits=True)
    rig.step()
    assert rig.control(0).is_stop and rig.control(0).final
    assert rig.control(1).is_pause


def test_a_stoppers_verdict_reaches_the_waiting_worker(tmp_path):
    rig = make_rig(tmp_path, stop={"training_iteration": 2})
    rig.step()
    rig.job(0).start().report(loss=1.0, waits=True)
    rig.step()
    assert rig.control(0).lets_go_on_after(1)
    rig.job(0).report(loss=1.0, waits=True)
    rig.step()
    assert rig.control(0).is_stop and rig.control(0).reason == "stop criterion reached"


def test_a_resubmitted_trial_is_told_its_points_anew(tmp_path):
    """A scheduler's points move as the run goes (PBT's next perturbation): each launch writes them."""
    rig = make_rig(tmp_path, decisions={(tid(0), 1): Decision.PAUSE}, space={"x": 1})
    rig.step()
    first_job = rig.trial(0).job_id
    meta = rig.exp.read_trial_meta(tid(0))
    rig.exp.write_trial_meta(tid(0), {k: v for k, v in meta.items() if k != "decision_points"})
    rig.job(0).start().report(loss=1.0, checkpoint=True, waits=True)
    rig.step()
    rig.job(0).paused()
    rig.step(3)
    assert rig.trial(0).job_id not in (None, first_job)  # resubmitted
    assert DecisionPoints.from_json(rig.exp.read_trial_meta(tid(0))["decision_points"]) == EVERY


def test_the_change_feed_gets_a_verdict_before_the_next_poll(tmp_path):
    """Between polls the driver reads only the logs the change feed names: a job that started
    since the last poll and waits at once is read, and answered, in the next step."""
    rig = make_rig(tmp_path, space={"x": 1},
                   backend=FakeBackend(ExperimentDir(tmp_path / "exp"), poll_interval_s=60.0))
    rig.step()  # launched, and polled: its job is pending
    rig.job(0).start().report(loss=1.0, waits=True)  # each append rings the feed
    rig.step()
    assert rig.control(0).lets_go_on_after(1)


def test_a_log_the_feed_does_not_name_waits_for_the_poll(tmp_path):
    """Without a ring (a feed that could not be written) the log is read at the next poll."""
    rig = make_rig(tmp_path, space={"x": 1},
                   backend=FakeBackend(ExperimentDir(tmp_path / "exp"), poll_interval_s=60.0))
    rig.step()
    rig.job(0).start().report(loss=1.0, waits=True)
    rig.ctl.changes.take()  # the rings are lost
    rig.step()
    assert rig.control(0) is None  # no poll due: its log is not read
