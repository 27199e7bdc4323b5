"""What the exports and the report read from an experiment: NaN for a value a result did not
report, the best trial first, what only the driver knew (queue times, job ids, nodes), and a
PBT recipient's results after its donor's checkpoint left out. Every expectation written out."""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import pytest

from hpctune.results.hdf5 import write_hdf5
from hpctune.results.report import html, stats
from hpctune.results.report.data import load_experiment
from hpctune.storage.atomic import write_json_atomic
from hpctune.storage.events import EventKind, new_event
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.replay import trial_results
from hpctune.storage.result_log import ResultLog
from hpctune.tune.experiment.trial import Trial, TrialStatus


def experiment(root: Path, mode: str, trials: dict[str, list[dict]]) -> ExperimentDir:
    """Trials with the given results (one job each, ``<n>_0``), all complete."""
    exp = ExperimentDir(root)
    exp.create()
    exp.write_experiment({"metric": "loss", "mode": mode})
    for n, (trial_id, results) in enumerate(trials.items()):
        exp.write_params(trial_id, {"n": n})
        exp.write_trial_meta(trial_id, {"experiment_tag": f"{n}_n={n}", "resources": {"cpu": 1}})
        log = ResultLog(exp.result_log_path(trial_id))
        log.append(new_event(EventKind.START, slurm_job_id=f"{700 + n}_0", hostname="n1", time=1000.0))
        for i, result in enumerate(results, 1):
            log.append(new_event(EventKind.RESULT, result={"training_iteration": i, **result},
                                 slurm_job_id=f"{700 + n}_0", time=1000.0 + i))
        log.append(new_event(EventKind.COMPLETE, slurm_job_id=f"{700 + n}_0", time=1010.0))
    return exp


# -- HDF5: NaN where a result lacks a number ---------------------------------------------------------
def test_a_value_a_result_did_not_report_is_nan_in_the_hdf5_file(tmp_path):
    exp = experiment(tmp_path / "exp", "min", {"a": [{"loss": 1.0}, {"loss": 0.5, "acc": 0.75},
                                                     {"loss": 0.25}]})
    path = write_hdf5(load_experiment(exp.root), tmp_path / "out.h5")
    with h5py.File(path, "r") as f:
        acc = list(f["trials/a/metrics/acc"][:])
        loss = list(f["trials/a/metrics/loss"][:])
    assert math.isnan(acc[0]) and acc[1] == 0.75 and math.isnan(acc[2])
    assert loss == [1.0, 0.5, 0.25]


# -- the report's ranking ---------------------------------------------------------------------------------
THREE = {"mid": [{"loss": 3.0}, {"loss": 2.0}], "best": [{"loss": 5.0}, {"loss": 1.0}],
         "worst": [{"loss": 4.0}, {"loss": 9.0}]}


@pytest.mark.parametrize(("mode", "order", "named"), [
    ("min", ["best", "mid", "worst"], "Best trial: <b>best</b> with loss = <b>1</b> (min)"),
    ("max", ["worst", "best", "mid"], "Best trial: <b>worst</b> with loss = <b>9</b> (max)")])
def test_the_report_ranks_the_best_trial_first(tmp_path, mode, order, named):
    """Best values: best 1.0 (min) / 5.0 (max), mid 2.0 / 3.0, worst 4.0 / 9.0."""
    record = load_experiment(experiment(tmp_path / "exp", mode, THREE).root)
    assert [t.trial_id for t, _ in stats.ranked(record)] == order
    assert named in html._summary(record)


# -- a report built from the directory alone ------------------------------------------------------------
def test_a_report_from_the_directory_keeps_queue_times_job_ids_and_nodes(tmp_path):
    """The logs know results and runs; the driver's snapshot (state.json) alone knows when a job
    was submitted and started, its job id and its node: the record takes them from there."""
    exp = experiment(tmp_path / "exp", "min", {"a": [{"loss": 1.0}], "b": [{"loss": 2.0}]})
    snapshot = []
    for trial_id, job, node, submitted, started in (("a", "700_0", "n2", 100.0, 130.0),
                                                    ("b", "701_0", "n1", 100.0, 112.5)):
        trial = Trial(trial_id, {}, "", str(exp.trial_dir(trial_id)), status=TrialStatus.TERMINATED,
                      job_id=job, node=node, submitted_at=submitted, started_at=started,
                      ended_at=started + 10.0, num_failures=1, preemptions=2)
        snapshot.append(trial.to_dict())
    write_json_atomic(exp.state_path, {"trials": snapshot})
    record = load_experiment(exp.root)
    by_id = {t.trial_id: t.trial for t in record.trials}
    assert [(by_id[i].job_id, by_id[i].node, by_id[i].submitted_at, by_id[i].started_at)
            for i in ("a", "b")] == [("700_0", "n2", 100.0, 130.0), ("701_0", "n1", 100.0, 112.5)]
    assert (by_id["a"].num_failures, by_id["a"].preemptions) == (1, 2)
    summary = stats.slurm_summary(record)
    assert sorted(summary.queue_wait_s) == [12.5, 30.0]
    assert summary.failures == 2
    assert "median 21.2 s, max 30.0 s (2 trials)" in html._slurm(record)


# -- PBT: the recipient's results after the donor's checkpoint -------------------------------------------
def exploited_log(path: Path, donor_iteration: int, step: int, after: list[int]) -> None:
    """Results 1..step, the exploit (donor's checkpoint at ``donor_iteration``), then the
    recipient's results ``after`` (from the donor's checkpoint on)."""
    log = ResultLog(path)
    log.append(new_event(EventKind.START, slurm_job_id="1_0", time=1.0))
    for i in range(1, step + 1):
        log.append(new_event(EventKind.RESULT, result={"training_iteration": i, "who": "own"}, time=1.0 + i))
    log.append(new_event(EventKind.TERMINATED, slurm_job_id="1_0", time=50.0))
    log.append(new_event(EventKind.EXPLOITED, donor="d", donor_iteration=donor_iteration, step=step,
                         new_config={"lr": 0.1}, time=51.0))
    if after:
        log.append(new_event(EventKind.START, slurm_job_id="2_0", time=52.0))
    for i in after:
        log.append(new_event(EventKind.RESULT, result={"training_iteration": i, "who": "new"}, time=52.0 + i))


def iterations(path: Path) -> list[tuple[int, str]]:
    return [(r["training_iteration"], r["who"]) for r in trial_results(path)]


def test_an_experiment_ending_right_after_an_exploit_leaves_out_the_recipients_later_results(tmp_path):
    """Exploit at step 6 from the donor's checkpoint 4, then the experiment ends: results 5 and
    6 belong to the lineage the recipient left, so 1..4 remain."""
    exploited_log(tmp_path / "r.jsonl", donor_iteration=4, step=6, after=[])
    assert iterations(tmp_path / "r.jsonl") == [(1, "own"), (2, "own"), (3, "own"), (4, "own")]


def test_results_after_the_exploit_follow_the_donors_checkpoint(tmp_path):
    exploited_log(tmp_path / "r.jsonl", donor_iteration=4, step=6, after=[5])
    assert iterations(tmp_path / "r.jsonl") == [(1, "own"), (2, "own"), (3, "own"), (4, "own"), (5, "new")]


def test_a_donor_ahead_of_the_recipient_cuts_at_the_decision(tmp_path):
    """The donor's checkpoint (8) is newer than the decision (3): results up to the decision stay."""
    exploited_log(tmp_path / "r.jsonl", donor_iteration=8, step=3, after=[])
    assert iterations(tmp_path / "r.jsonl") == [(1, "own"), (2, "own"), (3, "own")]
