"""Finished trials in their compact form (issue 23 item 7: the driver's memory at 100,000 trials).

A finished trial whose record a snapshot wrote is packed (``Trial.pack``, ``TrialTable.pack``)
once the run has ``PACK_FROM_TRIALS`` trials. Nothing anyone reads may change: the same
experiment run with every finished trial packed and with none gives the same trials, state
files, summary, decisions, results, best trial and restore."""

from __future__ import annotations

import copy
import dataclasses
import json
import marshal
import math
import pickle
import zlib

import numpy as np

from hpctune.controller import state as table_state
from hpctune.controller.snapshot import fingerprint
from hpctune.core.metrics import SCOPES
from hpctune.results.grid import ResultGrid
from hpctune.storage.journal import read_trial_state
from hpctune.tune.experiment.trial import _PACKED_NAMES, JobState, PackedTrial, Trial, TrialStatus
from hpctune.tune.schedulers.trial_scheduler import Decision
from tests.unit.test_controller import grid, make_rig, tid
from tests.unit.test_recovery import restored

FIELDS = [f.name for f in dataclasses.fields(Trial)]
N = 240


def finished_trial(**fields) -> Trial:
    trial = Trial("t_00007", {"x": 7, "nested": {"a": [1, 2]}}, "7_x=7", "/exp/trials/t_00007",
                  resources={"cpu": 2, "gpu": 0}, **fields)
    trial.launch("100_7", at=5.0)
    trial.start(0, at=6.0)
    for i, loss in enumerate([3.0, float("nan"), -0.0, 1e308, 2.5], 1):
        trial.record_result({"loss": loss, "training_iteration": i, "val": {"acc": i / 3},
                             "done": False, "note": "é\n", "flag": True, "big": 2**70})
    trial.checkpoint, trial.checkpoints = "checkpoint_000005", [["checkpoint_000005", 2.5]]
    trial.lineage, trial.cancelled_jobs = ["t_00001@3"], ["99_7"]
    trial.finish(at=9.0)
    return trial


def view(trial: Trial) -> dict:
    """Every field as a reader gets it (NaN made comparable)."""
    return json.loads(json.dumps({name: getattr(trial, name) for name in FIELDS}, default=str))


# -- one trial ------------------------------------------------------------------------------------
def test_a_packed_trial_reads_as_before_and_its_record_is_the_same():
    trial = finished_trial()
    before, record, key_order = view(trial), trial.to_dict(), list(trial.to_dict())
    info, name, finished = trial.info, trial.name, trial.is_finished
    assert trial.pack() and type(trial) is PackedTrial and isinstance(trial, Trial)
    assert len(trial.__dict__) == 4 and len(trial.packed) < 700  # the point of it
    assert view(trial) == before
    assert json.dumps(trial.to_dict(), default=str) == json.dumps(record, default=str)
    assert list(trial.to_dict()) == key_order  # the journal's line is the same text
    assert trial.info == info and trial.name == name and trial.is_finished == finished
    assert type(trial.job_state) is JobState and trial.job_state.value == record["job_state"]
    assert type(trial.last_result["big"]) is int and trial.last_result["flag"] is True
    assert math.isnan(trial.metric_analysis["loss"]["recent"][1])
    assert not trial.pack()  # once


def test_an_assignment_unpacks_the_trial_and_keeps_every_other_field():
    trial = finished_trial()
    before = view(trial)
    trial.pack()
    trial.reopen()  # the state machine's own operations work on a packed trial
    assert type(trial) is Trial and trial.status is TrialStatus.RUNNING
    assert {k: v for k, v in view(trial).items() if k not in ("status", "error")} == {
        k: v for k, v in before.items() if k not in ("status", "error")}
    trial.record_result({"loss": 0.5, "training_iteration": 6})
    assert trial.metric_analysis["loss"]["n"] == 6 and trial.num_results == 6
    trial.fail("RuntimeError: boom")
    assert trial.pack()
    trial.checkpoints = [*trial.checkpoints, ["checkpoint_000006", None]]  # as keep_checkpoint does
    trial.checkpoints.append(["checkpoint_000007", None])
    assert type(trial) is Trial and [c[0] for c in trial.checkpoints][-2:] == [
        "checkpoint_000006", "checkpoint_000007"]
    assert trial.pack()
    trial.revive()
    assert trial.status is TrialStatus.PENDING and trial.awaiting_restart and trial.metric_analysis


def test_blobs_are_compressed_against_the_first_packed_trial_and_pickle_as_plain_trials():
    first = finished_trial()
    first.pack()
    alike = finished_trial()
    alike.trial_id = "t_00008"
    plain = len(zlib.compress(marshal.dumps(tuple(getattr(alike, n) if n != "job_state" else alike.job_state.value
                                                    for n in _PACKED_NAMES)), 1))
    before = view(alike)
    assert alike.pack() and len(alike.packed) < plain / 2  # the point of the preset dictionary
    assert view(alike) == before
    for copied in (pickle.loads(pickle.dumps(alike)), copy.deepcopy(alike), copy.copy(alike)):
        assert type(copied) is Trial and copied is not alike  # no blob leaves the process
        assert list(copied.__dict__) == FIELDS and view(copied) == before
        assert type(copied.job_state) is JobState and type(copied.status) is TrialStatus
    assert type(alike) is PackedTrial and view(alike) == before


def test_what_cannot_be_packed_exactly_is_left_as_it_is():
    assert not Trial("t_1", {}, "1", "/x").pack()  # still PENDING
    numpy_result = finished_trial()
    numpy_result.last_result = {"loss": np.float64(1.0)}  # marshal would not keep the type
    assert not numpy_result.pack() and type(numpy_result) is Trial
    extra = finished_trial()
    extra.my_note = "a callback's attribute"
    assert not extra.pack() and extra.my_note == "a callback's attribute"


def test_a_snapshot_compares_a_packed_trial_by_its_blob():
    trial = finished_trial()
    trial.pack()
    assert fingerprint(trial) == fingerprint(trial) and fingerprint(trial) is trial.packed
    trial.error = "edited"  # unpacks: the next snapshot writes it again
    assert len(fingerprint(trial)) == len(FIELDS) - 1


# -- a whole experiment, packed and not ---------------------------------------------------------------
def drive(rig, scripted: set[str]) -> None:
    """What the workers do, 12 jobs a step: each new job starts, reports twice (a checkpoint with
    the first) and completes; every 11th trial fails its first run (retried), every 13th fails
    every run."""
    for job in [j for j in rig.backend.jobs.values() if j.job_id not in scripted and j.state == "PENDING"][:12]:
        scripted.add(job.job_id)
        index = int(job.trial_id.split("_")[1])
        job.start().report(loss=(index * 37 % 101) / 10, checkpoint=True).report(loss=(index * 53 % 97) / 10)
        first = len(rig.backend.jobs_of(job.trial_id)) == 1
        if index % 13 == 0 or (index % 11 == 0 and first):
            job.error(f"RuntimeError: trial {index}")
        else:
            job.complete()


def run(tmp_path, monkeypatch, pack_from: int):
    monkeypatch.setattr(table_state, "PACK_FROM_TRIALS", pack_from)
    stops = {(tid(i), 1): Decision.STOP for i in range(0, N, 7)}
    rig = make_rig(tmp_path, space=grid(N), decisions=stops, max_failures=1, max_concurrent=40)
    scripted: set[str] = set()
    packed_while_running = 0
    while not rig.ctl.done:
        drive(rig, scripted)
        rig.step()
        rig.clock.advance(5.0)  # a snapshot every step
        live = len(rig.ctl.live)
        packed = sum(type(t) is PackedTrial for t in rig.ctl.trial_list)
        if live and packed:
            packed_while_running += 1
    rig.ctl.save("finished")
    return rig, packed_while_running


def normalised(rig, data):
    """``data`` as JSON without the experiment's path, a trial's ``log_offset`` as the number of
    lines of its log before it (the driver's own events carry the wall clock's time, whose
    text varies in length from run to run)."""
    data = json.loads(json.dumps(data, default=str))
    for records in (data.get("views", ()), data.get("records", ()), data.get("state", ())):
        for record in records:
            log = rig.exp.result_log_path(record["trial_id"]).read_bytes()
            offset = record["log_offset"]
            assert offset == 0 or log[offset - 1:offset] == b"\n"
            record["log_offset"] = log[:offset].count(b"\n")
    return json.loads(json.dumps(data).replace(str(rig.exp.root), "<exp>"))


def outcome(rig) -> dict:
    ctl = rig.ctl
    summary = json.loads(rig.exp.summary_path.read_text())
    results = ResultGrid(ctl.trial_list, rig.exp.root, "loss", "min")
    best = {scope: results.get_best_result(scope=scope) for scope in SCOPES}
    return normalised(rig, {
        "views": [view(t) for t in ctl.trial_list],
        "records": [t.to_dict() for t in ctl.trial_list],
        "state": list(read_trial_state(rig.exp).trials.values()),
        "summary": {k: v for k, v in summary.items() if k not in ("updated", "driver")},
        "scheduler": rig.scheduler.calls, "searcher": rig.searcher.told, "callbacks": rig.callback.calls,
        "results": [(r.trial_id, r.status, r.metrics, r.config, r.path, str(r.error), r.checkpoint and
                     r.checkpoint.path) for r in results],
        "dataframe": results.get_dataframe().to_dict(orient="records"),
        "best": {scope: (r.trial_id, r.metrics) for scope, r in best.items()},
        "errors": results.num_errors, "terminated": results.num_terminated,
    })


def test_packing_changes_nothing_anyone_reads(tmp_path, monkeypatch):
    plain, packed_while_running = run(tmp_path / "plain_", monkeypatch, pack_from=10**9)
    assert packed_while_running == 0 and not any(type(t) is PackedTrial for t in plain.ctl.trial_list)
    packed, packed_while_running = run(tmp_path / "packed", monkeypatch, pack_from=0)
    assert packed_while_running > 10  # finished trials were packed while others still ran
    assert sum(type(t) is PackedTrial for t in packed.ctl.trial_list) == N
    assert packed.ctl.table.tails.keys() == set()  # no finished trial keeps its log's reader
    expected = outcome(plain)
    statuses = {r["status"] for r in expected["records"]}
    assert statuses == {"TERMINATED", "ERROR"} and expected["errors"] > 0  # the scenario's variety
    assert any(r["stopped_by_scheduler"] for r in expected["records"])
    assert any(r["num_failures"] for r in expected["records"])
    assert outcome(packed) == expected
    # a restore of either gives the same trials as the run left them
    again = {name: restored(rig) for name, rig in (("plain", plain), ("packed", packed))}
    for name, rig in again.items():
        records = normalised(rig, {"records": [t.to_dict() for t in rig.ctl.trial_list]})["records"]
        assert records == expected["records"], name


def test_a_packed_trial_brought_back_by_a_restore_reads_its_log_again(tmp_path, monkeypatch):
    monkeypatch.setattr(table_state, "PACK_FROM_TRIALS", 0)
    rig = make_rig(tmp_path, space=grid(2))
    rig.step()
    rig.job(0).start().report(loss=1.0)
    rig.job(0).error("RuntimeError: boom")
    rig.job(1).start().report(loss=2.0).complete()
    rig.step()
    rig.clock.advance(5.0)
    rig.step()
    errored = rig.trial(0)
    assert type(errored) is PackedTrial and tid(0) not in rig.ctl.table.tails
    rig.ctl.table.bring_back(errored)  # what a restore with resume_errored does
    errored.revive()
    assert rig.ctl.table.tails[tid(0)].offset == errored.log_offset > 0
