"""Replaying a trial's result log: the facts it gives the trial record, the surviving lineage of
a restarted run, and how the driver's snapshot and the logs combine in ResultGrid."""

from __future__ import annotations

import json

import pytest

from hpctune.results.grid import ResultGrid
from hpctune.storage.events import EventKind, new_event
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.replay import TrialReplay, load_trials, replay_trial, trial_results
from hpctune.storage.result_log import ResultLog
from hpctune.tune.experiment.trial import Trial, TrialStatus


@pytest.fixture
def exp(tmp_path):
    exp = ExperimentDir(tmp_path / "exp")
    exp.create()
    exp.write_experiment({"metric": "loss", "mode": "min"})
    return exp


def write(exp: ExperimentDir, trial_id: str, *events: tuple) -> None:
    """Events as (kind, fields); a result's fields are its metrics (plus ``checkpoint``)."""
    if not exp.params_path(trial_id).exists():
        exp.write_params(trial_id, {"id": trial_id})
    log = ResultLog(exp.result_log_path(trial_id))
    for n, (kind, fields) in enumerate(events):
        fields = dict(fields)
        extra = {"time": 1000.0 + n, "trial_id": trial_id, "slurm_job_id": "7_0",
                 "restart_count": fields.pop("restart_count", 0)}
        if kind is EventKind.RESULT:
            checkpoint = fields.pop("checkpoint", None)
            extra["result"] = fields
            if checkpoint:
                extra["checkpoint"] = checkpoint
        else:
            extra.update(fields)
        log.append(new_event(kind, **extra))
    log.close()


def result(iteration: int, loss: float, **more) -> tuple:
    return EventKind.RESULT, {"training_iteration": iteration, "loss": loss, **more}


START = (EventKind.START, {})
COMPLETE = (EventKind.COMPLETE, {})


def test_a_completed_trial(exp):
    write(exp, "t", START, result(1, 3.0), result(2, 2.0, checkpoint="checkpoint_000002"), COMPLETE)
    trial = replay_trial(exp, "t")
    assert (trial.status, trial.error, trial.num_results, trial.max_iteration) == (
        TrialStatus.TERMINATED, None, 2, 2)
    assert trial.last_result == {"training_iteration": 2, "loss": 2.0, "done": True}
    assert trial.checkpoint == "checkpoint_000002"
    assert trial.config == {"id": "t"}
    assert trial.metric_analysis["loss"]["min"] == 2.0 and trial.metric_analysis["loss"]["avg"] == 2.5


def test_an_errored_then_restarted_trial(exp):
    """An error counts a failure; the restart's start event brings its restart count; a
    preemption is counted; the final `complete` clears the error."""
    write(exp, "t", START, result(1, 1.0), (EventKind.ERROR, {"error": "Traceback: boom"}))
    trial = replay_trial(exp, "t")
    assert (trial.status, trial.error, trial.num_failures) == (TrialStatus.ERROR, "Traceback: boom", 1)
    write(exp, "t", (EventKind.PREEMPTED, {"signal": "SIGUSR1"}),
          (EventKind.START, {"restart_count": 2}), result(2, 0.5), COMPLETE)
    trial = replay_trial(exp, "t")
    assert (trial.status, trial.error, trial.num_failures) == (TrialStatus.TERMINATED, None, 1)
    assert (trial.restart_count, trial.preemptions) == (2, 1)


def test_a_rerun_after_a_restart_is_recorded_but_not_new_progress():
    """A run restarted from checkpoint 2 reports iterations 3 and 4 again: kept as results,
    but not new progress (the driver must not act on them twice)."""
    trial = Trial("t", {}, "", "/nonexistent")
    replay = TrialReplay(trial)
    fresh = [replay.record({"training_iteration": i, "loss": 1.0}) for i in (1, 2, 3, 4)]
    again = [replay.record({"training_iteration": i, "loss": 0.5}) for i in (3, 4, 5)]
    assert fresh == [True, True, True, True]
    assert again == [False, False, True]
    assert (trial.num_results, trial.max_iteration) == (7, 5)


def test_trial_results_keep_the_surviving_lineage(exp):
    """Iterations reported again after a restart replace the older reports from there on."""
    write(exp, "t", START, result(1, 9.0), result(2, 8.0), result(3, 7.0), result(4, 6.0),
          (EventKind.START, {"restart_count": 1}), result(3, 5.0), result(4, 4.0), result(5, 3.0))
    lineage = trial_results(exp.result_log_path("t"))
    assert [(r["training_iteration"], r["loss"]) for r in lineage] == [
        (1, 9.0), (2, 8.0), (3, 5.0), (4, 4.0), (5, 3.0)]
    results_without_iterations = [(EventKind.RESULT, {"loss": 1.0}), (EventKind.RESULT, {"loss": 2.0})]
    write(exp, "u", START, *results_without_iterations)
    assert [r["loss"] for r in trial_results(exp.result_log_path("u"))] == [1.0, 2.0]


def write_snapshot(exp: ExperimentDir, **statuses: tuple[str, str | None]) -> None:
    trials = [{"trial_id": t, "status": s, "error": e} for t, (s, e) in statuses.items()]
    exp.state_path.write_text(json.dumps({"trials": trials}))


def test_the_log_wins_over_a_stale_snapshot_for_a_finished_trial(exp):
    """The snapshot said RUNNING (the driver died) but the log says it completed: TERMINATED.
    A trial the log leaves unfinished takes the snapshot's word (an error only the driver
    knew, a trial still queued)."""
    write(exp, "done", START, result(1, 1.0), COMPLETE)
    write(exp, "lost", START, result(1, 2.0))
    write(exp, "queued")
    write_snapshot(exp, done=("RUNNING", None), lost=("ERROR", "No heartbeat from job 7_0"),
                   queued=("PENDING", None))
    trials = {t.trial_id: t for t in load_trials(exp)}
    assert {t: trial.status for t, trial in trials.items()} == {
        "done": TrialStatus.TERMINATED, "lost": TrialStatus.ERROR, "queued": TrialStatus.PENDING}
    assert trials["lost"].error == "No heartbeat from job 7_0" and trials["done"].error is None


def test_result_grid_from_the_logs_picks_the_best_by_scope(exp):
    """From the logs alone: 'a' has the best value ever, 'b' the best last value."""
    write(exp, "a", START, result(1, 0.1), result(2, 5.0), COMPLETE)
    write(exp, "b", START, result(1, 3.0), result(2, 2.0), COMPLETE)
    grid = ResultGrid.from_path(exp.root)
    assert grid.get_best_result().trial_id == "b"
    assert grid.get_best_result(scope="all").trial_id == "a"
    assert grid.get_best_result(scope="avg").trial_id == "b"
    assert list(grid.get_best_result(scope="all").metrics_dataframe["loss"]) == [0.1, 5.0]


def test_results_after_the_drivers_stop_decision_are_not_the_trials(tmp_path):
    """A fast trainable reports on until it sees its STOP: the driver's stop_decided event marks
    where the trial ended, and every reader stops there (ResultGrid.from_path, metrics_dataframe)."""
    from hpctune.storage.events import EventKind, new_event
    from hpctune.storage.experiment import ExperimentDir
    from hpctune.storage.replay import replay_trial, trial_results
    from hpctune.storage.result_log import ResultLog

    exp = ExperimentDir(tmp_path / "e")
    exp.create()
    exp.write_params("t_00000", {"x": 1})
    log = ResultLog(exp.result_log_path("t_00000"))
    for i in (1, 2, 3, 4, 5):
        log.append(new_event(EventKind.RESULT, result={"training_iteration": i, "loss": 1 / i}))
        if i == 4:  # the decision was on iteration 3; 4 was already written
            log.append(new_event(EventKind.STOP_DECIDED, at_iteration=3, reason="stop criterion"))
    log.append(new_event(EventKind.STOPPED))
    trial = replay_trial(exp, "t_00000")
    assert trial.last_result["training_iteration"] == 3 and trial.num_results == 3
    assert trial.status.value == "TERMINATED"
    assert [r["training_iteration"] for r in trial_results(exp.result_log_path("t_00000"))] == [1, 2, 3]


def test_a_stopped_trial_ends_with_done_and_its_checkpoint_at_end(exp):
    """Ray sets ``done`` in the final result of a trial a stopper or scheduler ended; a
    ``checkpoint_at_end`` saved as it stopped (its ``stopped`` event) is the trial's checkpoint.
    The driver's ``stop_decided`` alone (a worker killed before its ``stopped``) is enough."""
    decided = (EventKind.STOP_DECIDED, {"at_iteration": 2, "reason": "stop criterion reached"})
    write(exp, "t", START, result(1, 3.0), result(2, 2.0), decided)
    trial = replay_trial(exp, "t")
    assert trial.last_result == {"training_iteration": 2, "loss": 2.0, "done": True}
    write(exp, "u", START, result(1, 3.0), result(2, 2.0), decided, result(3, 1.0),
          (EventKind.STOPPED, {"reason": "stopped", "checkpoint": "checkpoint_000002",
                               "result": {"training_iteration": 2, "loss": 2.0}}))
    trial = replay_trial(exp, "u")
    assert trial.last_result == {"training_iteration": 2, "loss": 2.0, "done": True}
    assert (trial.status, trial.checkpoint) == (TrialStatus.TERMINATED, "checkpoint_000002")
