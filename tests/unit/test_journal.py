"""The state journal (issue 23, deliverable 4): a snapshot appends the trials that changed,
the base is compacted when the journal outgrows it, and a restore works from any point
(base + journal up to the driver-state's snapshot); a torn last line is reported and left
out; experiments of an hpctune before the journal still read and restore."""

from __future__ import annotations

import json
import pickle
import time

import pytest

from hpctune.controller.snapshot import save_trials
from hpctune.errors import ExperimentStateError
from hpctune.storage import journal_writer
from hpctune.storage.driver_state import load_driver_state
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.journal import journal_path, read_one_trial, read_trial_state
from hpctune.storage.journal_writer import JournalWriter, merge_base
from hpctune.storage.replay import snapshot_trials
from hpctune.tune.experiment.trial import TrialStatus
from tests.unit.test_controller import grid, make_rig, tid
from tests.unit.test_recovery import restored, two_running

RUN = {"searcher_finished": False, "backend_commands": {"sbatch": 1}, "updated": 1.0}


def trial(i: int, **fields) -> dict:
    return {"trial_id": tid(i), "status": "RUNNING", "config": {"x": i}, "experiment_tag": str(i),
            "path": f"/x/{tid(i)}", **fields}


@pytest.fixture
def exp(tmp_path):
    exp = ExperimentDir(tmp_path / "exp")
    exp.create()
    return exp


def journal_lines(exp: ExperimentDir) -> list[dict]:
    return [json.loads(line) for line in journal_path(exp).read_text().splitlines()]


# -- the files ------------------------------------------------------------------------------------
def test_the_journal_replays_over_the_base_in_order(exp):
    writer = JournalWriter(exp)
    assert writer.due()  # a writer's first snapshot is a compaction
    writer.compact(1, [trial(0), trial(1)], RUN)
    assert not writer.due()
    writer.append(2, [trial(1, status="TERMINATED")], {**RUN, "updated": 2.0})
    writer.append(3, [trial(2), trial(1, status="ERROR")], {**RUN, "searcher_finished": True})
    state = read_trial_state(exp)
    assert list(state.trials) == [tid(0), tid(1), tid(2)]  # creation order, a new trial last
    assert state.trials[tid(1)]["status"] == "ERROR" and state.seq == 3 and state.problems == []
    assert state.run["searcher_finished"] is True
    as_of_2 = read_trial_state(exp, upto_seq=2)  # what driver-state.pkl of snapshot 2 pairs with
    assert list(as_of_2.trials) == [tid(0), tid(1)] and as_of_2.trials[tid(1)]["status"] == "TERMINATED"
    assert as_of_2.run["updated"] == 2.0 and as_of_2.seq == 2
    assert json.loads(exp.state_path.read_text())["trials"][0]["trial_id"] == tid(0)  # still JSON


def test_a_compaction_starts_a_new_generation_and_an_old_journal_is_ignored(exp):
    writer = JournalWriter(exp, ratio=0.0, min_bytes=0)
    writer.compact(1, [trial(0)], RUN)
    writer.append(2, [trial(0, status="TERMINATED")], RUN)
    assert writer.due()  # the journal outgrew its share of the base
    old_journal = journal_path(exp).read_bytes()
    writer.compact(3, [trial(0, status="TERMINATED"), trial(1)], RUN)
    assert [line["kind"] for line in journal_lines(exp)] == ["header"]
    # a compaction cut off after its new base: the old journal's lines are in the base already
    journal_path(exp).write_bytes(old_journal + json.dumps(
        {"kind": "trial", "seq": 2, "trial": trial(0, status="ERROR")}).encode() + b"\n")
    state = read_trial_state(exp)
    assert state.trials[tid(0)]["status"] == "TERMINATED" and tid(1) in state.trials and state.seq == 3


def background_writer(exp: ExperimentDir) -> JournalWriter:
    """A writer whose every due compaction runs in the background (a large base's way)."""
    writer = JournalWriter(exp, ratio=0.0, min_bytes=0)
    writer.background_min_bytes = 0
    writer.compact(1, [trial(0), trial(1)], RUN)
    writer.append(2, [trial(1, status="TERMINATED"), trial(2)], {**RUN, "updated": 2.0})
    assert writer.due() and writer.background()
    writer.append(3, [trial(3), trial(0, status="ERROR")], {**RUN, "updated": 3.0})
    return writer


def expected_as_of(seq: int) -> dict:
    return {2: {tid(0): "RUNNING", tid(1): "TERMINATED", tid(2): "RUNNING"},
            3: {tid(0): "ERROR", tid(1): "TERMINATED", tid(2): "RUNNING", tid(3): "RUNNING"},
            4: {tid(0): "ERROR", tid(1): "TERMINATED", tid(2): "PAUSED", tid(3): "RUNNING"}}[seq]


def statuses(exp: ExperimentDir, upto_seq: int | None = None) -> dict:
    state = read_trial_state(exp, upto_seq=upto_seq)
    return {k: t["status"] for k, t in state.trials.items()}


def test_a_background_compaction_keeps_every_trial_at_each_point(exp):
    """A large base is rewritten aside from the files up to the last snapshot (whose
    driver-state is written) while appends go on; read at any point, before its base lands,
    after it (the old journal's later lines count on top), after its own journal starts."""
    writer = background_writer(exp)
    before = exp.state_path.read_bytes()
    writer.compact_in_background(2)
    assert not writer.due()  # one at a time; the journal goes on meanwhile
    writer._merge.join()
    base = json.loads(exp.state_path.read_bytes())
    assert exp.state_path.read_bytes() != before and base["seq"] == 2 and base["continues"]
    assert [t["trial_id"] for t in base["trials"]] == [tid(0), tid(1), tid(2)]
    assert base["trials"][1]["status"] == "TERMINATED" and base["updated"] == 2.0
    # killed here: the new base and the old journal, whose line 3 counts on top of it
    assert statuses(exp) == expected_as_of(3) and statuses(exp, upto_seq=2) == expected_as_of(2)
    assert read_one_trial(exp, tid(0))["status"] == "ERROR"  # from the old journal's line 3
    assert read_one_trial(exp, tid(1))["status"] == "TERMINATED"  # from the base
    assert read_trial_state(exp).run["updated"] == 3.0
    writer.poll()  # the new generation's journal: its header and line 3
    lines = journal_lines(exp)
    assert lines[0]["generation"] == base["generation"] and [ln.get("seq") for ln in lines] == [None, 3, 3, 3]
    assert statuses(exp) == expected_as_of(3) and writer.journal_bytes == journal_path(exp).stat().st_size
    writer.append(4, [trial(2, status="PAUSED")], RUN)
    assert statuses(exp) == expected_as_of(4) and statuses(exp, upto_seq=3) == expected_as_of(3)
    assert read_one_trial(exp, tid(2))["status"] == "PAUSED" and read_one_trial(exp, tid(3))["status"] == "RUNNING"


def test_a_background_compaction_of_many_trials_equals_the_replay(exp):
    """Written in pieces (``_PIECE`` records at a time): the same trials, in the same order."""
    writer = JournalWriter(exp, ratio=0.0, min_bytes=0)
    writer.compact(1, [trial(i) for i in range(1100)], RUN)
    writer.append(2, [trial(i, status="TERMINATED") for i in range(0, 1100, 7)] + [trial(1100)], RUN)
    expected = read_trial_state(exp).trials
    merge_base(exp, writer.generation, 2, "g2")
    assert read_trial_state(exp).trials == expected and json.loads(exp.state_path.read_bytes())["seq"] == 2


def test_a_compaction_waits_for_a_background_one_and_a_failed_one_compacts_next(exp):
    writer = background_writer(exp)
    writer.compact_in_background(2)
    writer.compact(4, [trial(0, status="TERMINATED")], RUN)  # final: its base stays
    assert statuses(exp) == {tid(0): "TERMINATED"} and "continues" not in json.loads(exp.state_path.read_bytes())
    writer.append(5, [trial(1)], RUN)
    assert writer.due()
    exp.state_path.write_bytes(b"{}")  # not the base the journal goes with
    writer.compact_in_background(4)
    writer._merge.join()
    writer.poll()  # it failed: the next snapshot compacts from memory
    assert writer.due() and not writer.background()
    writer.compact(6, [trial(0)], RUN)
    writer.append(7, [trial(1)], RUN)
    writer.compact_in_background(6)
    writer._merge.join()
    journal_path(exp).unlink()  # moved away meanwhile: the next snapshot compacts
    writer.poll()
    assert writer.due() and statuses(exp) == {tid(0): "RUNNING"}


@pytest.mark.parametrize("tail", [b'{"kind": "trial", "seq": 3, "tri', b'{"kind": "trial", "seq": 3, "tri\n'])
def test_a_torn_last_line_is_reported_and_left_out(exp, tail):
    writer = JournalWriter(exp)
    writer.compact(1, [trial(0)], RUN)
    writer.append(2, [trial(0, status="TERMINATED")], RUN)
    with open(journal_path(exp), "ab") as f:
        f.write(tail)
    state = read_trial_state(exp)
    assert state.trials[tid(0)]["status"] == "TERMINATED" and state.seq == 2
    assert len(state.problems) == 1 and str(journal_path(exp)) in state.problems[0]
    with pytest.warns(UserWarning, match="left out"):
        assert [t.status for t in snapshot_trials(exp)] == [TrialStatus.TERMINATED]


def test_a_damaged_line_in_the_middle_is_a_clear_error(exp):
    writer = JournalWriter(exp)
    writer.compact(1, [trial(0)], RUN)
    with open(journal_path(exp), "ab") as f:
        f.write(b"garbage\n")
    writer.append(2, [trial(0, status="TERMINATED")], RUN)
    with pytest.raises(ExperimentStateError, match=r"state.journal is damaged at line 2.*Fix: move it away"):
        read_trial_state(exp)


def test_a_journal_of_a_newer_hpctune_is_refused(exp):
    JournalWriter(exp).compact(1, [trial(0)], RUN)
    base = json.loads(exp.state_path.read_text())
    exp.state_path.write_text(json.dumps({**base, "version": 99}))
    with pytest.raises(ExperimentStateError, match="newer hpctune.*upgrade"):
        read_trial_state(exp)


def test_a_failed_append_makes_the_next_snapshot_a_compaction(exp):
    writer = JournalWriter(exp)
    writer.compact(1, [trial(0)], RUN)
    journal_path(exp).unlink()
    with pytest.raises(FileNotFoundError):
        writer.append(2, [trial(0)], RUN)
    assert writer.due()


def test_an_append_of_many_trials_is_written_in_pieces_and_reads_whole(exp):
    from hpctune.storage.journal_merge import PIECE

    writer = JournalWriter(exp)
    writer.compact(1, [trial(0)], RUN)
    before = journal_path(exp).stat().st_size
    count = 2 * PIECE + 7
    written = writer.append(2, (trial(i) for i in range(count)), RUN)
    assert written == journal_path(exp).stat().st_size - before == writer.journal_bytes - before
    state = read_trial_state(exp)
    assert list(state.trials) == [tid(i) for i in range(count)] and not writer.due()

    def failing():
        yield trial(1)
        raise RuntimeError("a record that cannot be made")

    with pytest.raises(RuntimeError):
        writer.append(3, failing(), RUN)
    assert writer.due()  # what was written of it is rewritten by the next snapshot's compaction


def test_a_state_json_of_an_hpctune_before_the_journal_reads_as_it_is(exp):
    exp.state_path.write_text(json.dumps({"trials": [trial(0), trial(1)], "searcher_finished": True}))
    journal_path(exp).write_text("not read at all\n")
    state = read_trial_state(exp)
    assert not state.journaled and list(state.trials) == [tid(0), tid(1)]
    assert state.run == {"searcher_finished": True}


# -- the driver's snapshots -----------------------------------------------------------------------
def test_a_snapshot_writes_only_the_trials_that_changed(tmp_path):
    rig = make_rig(tmp_path, grid(3))
    rig.step()  # launched, and saved: the first snapshot of this driver is a compaction
    assert len(json.loads(rig.exp.state_path.read_text())["trials"]) == 3
    rig.ctl.save()
    seen = len(journal_lines(rig.exp))
    rig.ctl.save()  # nothing changed: the run's line only
    assert [line["kind"] for line in journal_lines(rig.exp)[seen:]] == ["run"]
    seen += 1
    rig.job(1).start().report(loss=0.5)
    rig.step()
    rig.ctl.save()
    new = journal_lines(rig.exp)[seen:]
    assert [line["trial"]["trial_id"] for line in new if line["kind"] == "trial"] == [tid(1)]
    state = read_trial_state(rig.exp)
    assert state.trials[tid(1)]["last_result"]["loss"] == 0.5
    assert state.trials[tid(1)]["log_offset"] == rig.ctl.table.tails[tid(1)].offset > 0


def test_a_retired_trial_is_written_once_more(tmp_path):
    rig = make_rig(tmp_path, grid(2))
    rig.step()
    rig.job(0).start().report(loss=0.5)
    rig.step()
    rig.ctl.save()
    rig.job(0).complete()
    rig.step()
    assert tid(0) not in rig.ctl.live
    rig.ctl.save()
    assert read_trial_state(rig.exp).trials[tid(0)]["status"] == "TERMINATED"
    seen = len(journal_lines(rig.exp))
    rig.ctl.save()  # finished and unchanged: not written again
    assert [line["kind"] for line in journal_lines(rig.exp)[seen:]] == ["run"]


def test_a_live_trial_changed_by_the_driver_alone_is_written(tmp_path):
    """A change that reads no log (a poll's job state) is written: the snapshot looks at the
    live trials assigned to since the last one, not only at those whose logs grew."""
    rig = make_rig(tmp_path, grid(3))
    rig.step()
    rig.ctl.save()
    seen = len(journal_lines(rig.exp))
    rig.ctl.live[tid(2)].observe_job("RUNNING", node="n7")
    rig.ctl.save()
    new = [line["trial"] for line in journal_lines(rig.exp)[seen:] if line["kind"] == "trial"]
    assert [(t["trial_id"], t["node"]) for t in new] == [(tid(2), "n7")]
    assert read_trial_state(rig.exp).trials[tid(2)]["job_state"] == "RUNNING"
    assert not rig.ctl.parts.snapshots.assigned  # looked at: the next snapshot skips them


def test_a_log_read_further_is_written_with_its_offset(tmp_path):
    """A log whose reader moved on without changing its trial (a line that is no event) is
    written with the new offset: a restored driver does not read that line again."""
    rig = make_rig(tmp_path, grid(2))
    rig.step()
    rig.ctl.save()
    seen = len(journal_lines(rig.exp))
    tail = rig.ctl.table.tails[tid(1)]
    tail.offset += 7  # read further, nothing assigned to the trial
    rig.ctl.save()
    new = [line["trial"] for line in journal_lines(rig.exp)[seen:] if line["kind"] == "trial"]
    assert [(t["trial_id"], t["log_offset"]) for t in new] == [(tid(1), tail.offset)]


def test_a_compaction_keeps_every_trial(tmp_path, monkeypatch):
    monkeypatch.setattr("hpctune.storage.journal_writer.COMPACT_MIN_BYTES", 10_000)
    rig = make_rig(tmp_path, grid(3))
    rig.step()
    rig.job(0).start().report(loss=0.5)
    rig.step()
    rig.ctl.save()  # appended: the journal is still small
    assert any(line["kind"] == "trial" for line in journal_lines(rig.exp))
    rig.ctl.parts.snapshots.writer.min_bytes = 0  # from now on it outgrew its share
    rig.job(2).start().report(loss=0.25)
    rig.step()
    before = read_trial_state(rig.exp).trials
    rig.ctl.save()  # a compaction
    assert [line["kind"] for line in journal_lines(rig.exp)] == ["header"]
    after = read_trial_state(rig.exp).trials
    assert list(after) == [tid(0), tid(1), tid(2)]
    assert after[tid(0)] == before[tid(0)] and after[tid(2)]["last_result"]["loss"] == 0.25


def test_a_large_base_is_compacted_aside_and_a_restore_sees_every_trial(tmp_path, monkeypatch):
    """The driver's snapshots with background compaction: the step appends and goes on; the
    next snapshot after the new base landed starts its journal; a restore from the files
    at each point has every trial as the snapshots left them."""
    monkeypatch.setattr("hpctune.storage.journal_writer.COMPACT_MIN_BYTES", 0)
    monkeypatch.setattr("hpctune.storage.journal_writer.BACKGROUND_MIN_BYTES", 0)
    rig = make_rig(tmp_path, grid(3))
    rig.step()  # the first base
    writer = rig.ctl.parts.snapshots.writer
    writer.min_bytes = 1 << 40  # no compaction is due until the snapshot this test means
    rig.ctl.save()
    rig.job(0).start().report(loss=0.5)
    rig.step()
    writer.min_bytes = 0
    rig.ctl.save()  # due: appended, and the base rewritten aside up to the snapshot before
    assert writer._merge is not None and journal_lines(rig.exp)[-1]["kind"] == "run"
    writer._merge.join()
    merged = json.loads(rig.exp.state_path.read_bytes())["generation"]
    assert read_trial_state(rig.exp).trials[tid(0)]["last_result"]["loss"] == 0.5
    rig.job(2).start().report(loss=0.25)
    rig.step()
    rig.ctl.save()  # the new generation's journal starts, then this snapshot's lines
    # (this save may start the next compaction, whose base can land before the line below)
    assert journal_lines(rig.exp)[0]["generation"] == merged == writer.generation
    if writer._merge is not None:
        writer._merge.join()
    state = read_trial_state(rig.exp)
    assert list(state.trials) == [tid(0), tid(1), tid(2)]
    assert state.trials[tid(0)]["last_result"]["loss"] == 0.5
    assert state.trials[tid(2)]["last_result"]["loss"] == 0.25
    table = {t.trial_id: t.to_dict()["status"] for t in rig.ctl.parts.table.all}
    assert {k: t["status"] for k, t in state.trials.items()} == table


def test_the_end_of_a_run_appends_every_change_and_rewrites_nothing_in_the_step(tmp_path, monkeypatch):
    """The last snapshot looks at every trial (one edited after it ended too) and appends what
    changed: no rewrite of a large base in the driver's last step; a background compaction
    under way is waited for, so that its journal starts and no half-written base stays."""
    rig = make_rig(tmp_path, grid(2))
    rig.step()
    rig.ctl.save()
    base = rig.exp.state_path.read_bytes()
    rig.job(0).start().report(loss=0.5).complete()
    rig.step()
    rig.ctl.save()
    assert tid(0) not in rig.ctl.parts.table.live
    rig.ctl.parts.table.trials[tid(0)].experiment_tag = "edited"  # neither live nor marked dirty
    rig.ctl.save("finished")
    assert rig.exp.state_path.read_bytes() == base
    kinds = [line["kind"] for line in journal_lines(rig.exp)]
    assert kinds[0] == "header" and kinds[-1] == "run" and "header" not in kinds[1:]
    state = read_trial_state(rig.exp)
    assert state.trials[tid(0)]["last_result"]["loss"] == 0.5
    assert state.trials[tid(0)]["experiment_tag"] == "edited"

    monkeypatch.setattr("hpctune.storage.journal_writer.COMPACT_MIN_BYTES", 0)
    monkeypatch.setattr("hpctune.storage.journal_writer.BACKGROUND_MIN_BYTES", 0)
    merge = journal_writer.merge_base

    def slow_merge(*args, **kwargs):  # still running at the last snapshot
        time.sleep(0.5)
        return merge(*args, **kwargs)

    monkeypatch.setattr(journal_writer, "merge_base", slow_merge)
    rig = make_rig(tmp_path / "two", grid(2))
    rig.step()
    rig.ctl.save()
    rig.job(0).start().report(loss=0.5)
    rig.step()
    rig.ctl.save()  # due: the base is rewritten aside
    writer = rig.ctl.parts.snapshots.writer
    assert writer._merge is not None
    rig.job(0).report(loss=0.25)
    rig.step()
    rig.ctl.save("finished")
    assert writer._merge is None  # waited for, and its generation's journal started
    assert journal_lines(rig.exp)[0]["generation"] == json.loads(rig.exp.state_path.read_bytes())["generation"]
    assert read_trial_state(rig.exp).trials[tid(0)]["last_result"]["loss"] == 0.25
    assert not list(rig.exp.root.glob(".state.json.*"))


def test_save_trials_counts_what_it_wrote(tmp_path):
    rig = make_rig(tmp_path, grid(3))
    assert save_trials(rig.ctl.parts) == 0  # first: the whole base, of no trials yet
    rig.step()  # three trials launched (and a snapshot: they were written)
    save_trials(rig.ctl.parts)  # the offsets past the launch records, read after that snapshot
    assert save_trials(rig.ctl.parts) == 0
    rig.job(2).start()
    rig.step()
    assert save_trials(rig.ctl.parts) == 1


# -- restore from any point -----------------------------------------------------------------------
def test_a_restore_reads_base_and_journal(tmp_path):
    rig = two_running(tmp_path)  # saved: a base, then changes appended
    rig.job(0).report(loss=0.25)
    rig.step()
    rig.ctl.save()
    assert any(line["kind"] == "trial" for line in journal_lines(rig.exp))
    state = load_driver_state(rig.exp)
    assert "trials" in state and state["journal_seq"] == rig.ctl.parts.snapshots.seq
    new = restored(rig)
    assert new.trial(0).last_result["loss"] == 0.25 and new.trial(1).status is rig.trial(1).status
    base = rig.exp.state_path.read_bytes()
    before = journal_lines(rig.exp)
    new.ctl.save()  # the restored driver's first snapshot: appended to the files it read
    assert rig.exp.state_path.read_bytes() == base
    lines = journal_lines(rig.exp)
    assert lines[: len(before)] == before and lines[-1] == {**lines[-1], "kind": "run", "seq": state["journal_seq"] + 1}
    assert new.ctl.parts.snapshots.seq == state["journal_seq"] + 1
    after = read_trial_state(rig.exp)
    assert {k: t["status"] for k, t in after.trials.items()} == {
        t.trial_id: t.status.value for t in new.ctl.parts.table.all}
    assert after.trials[tid(0)]["last_result"]["loss"] == 0.25


def test_journal_lines_after_the_driver_state_are_not_replayed(tmp_path):
    """The driver died between appending snapshot N's trials and writing driver-state N: the
    restore pairs driver-state N-1 with the journal up to N-1; the logs give the rest."""
    rig = two_running(tmp_path)
    pickled = rig.exp.driver_state_path.read_bytes()
    seq = pickle.loads(pickled)["journal_seq"]
    rig.job(0).complete()
    rig.step()
    rig.ctl.save()
    rig.exp.driver_state_path.write_bytes(pickled)  # as if the second write never happened
    state = load_driver_state(rig.exp)
    assert state["journal_seq"] == seq
    assert {t["trial_id"]: t["status"] for t in state["trials"]}[tid(0)] == "RUNNING"
    new = restored(rig)
    assert new.trial(0).status is TrialStatus.TERMINATED  # its log says it completed
    new.ctl.save()  # appended after snapshot `seq`: the lines of the lost snapshot are cut away
    runs = [line["seq"] for line in journal_lines(rig.exp) if line["kind"] == "run"]
    assert runs[-1] == seq + 1 and len(runs) == len(set(runs))  # one snapshot a number
    assert read_trial_state(rig.exp).trials[tid(0)]["status"] == "TERMINATED"
    assert load_driver_state(rig.exp)["journal_seq"] == seq + 1


def test_a_torn_journal_line_is_reported_by_a_restore(tmp_path, capsys):
    rig = two_running(tmp_path)
    with open(journal_path(rig.exp), "ab") as f:
        f.write(b'{"kind": "trial", "se')
    new = restored(rig)
    assert sorted(new.ctl.trials) == [tid(0), tid(1)]
    assert "its last line is incomplete" in capsys.readouterr().err


def test_a_missing_base_with_a_driver_state_is_a_clear_error(tmp_path):
    rig = two_running(tmp_path)
    rig.exp.state_path.unlink()
    with pytest.raises(ExperimentStateError, match="state.json is missing.*run them again"):
        load_driver_state(rig.exp)


def test_an_experiment_of_an_hpctune_before_the_journal_restores(tmp_path):
    rig = two_running(tmp_path)
    state = load_driver_state(rig.exp)
    old = {k: v for k, v in state.items() if k not in ("journal_seq", "state_problems")}
    rig.exp.driver_state_path.write_bytes(pickle.dumps(old))
    rig.exp.state_path.write_text(json.dumps({"trials": old["trials"], "searcher_finished": False}))
    journal_path(rig.exp).unlink()
    assert load_driver_state(rig.exp)["trials"] == old["trials"]
    assert [t.trial_id for t in snapshot_trials(rig.exp)] == [tid(0), tid(1)]
    new = restored(rig)
    assert new.trial(0).status is rig.trial(0).status
    new.ctl.save()  # from now on: base + journal
    assert json.loads(rig.exp.state_path.read_text())["format"] == "hpctune-state"


# -- what the CLI reads ---------------------------------------------------------------------------
def test_a_display_reads_the_records_without_their_metric_analysis(exp):
    analysed = trial(0, metric_analysis={"loss": {"last": 0.5}}, last_result={"loss": 0.5})
    JournalWriter(exp).compact(1, [analysed, trial(1, metric_analysis={"x": {"n": 1}})], RUN)
    line = exp.state_path.read_text().splitlines()[1]
    assert line.index('"metric_analysis"') > line.index('"last_result"')  # written last
    view = read_trial_state(exp, view=True)
    assert "metric_analysis" not in view.trials[tid(0)] and view.trials[tid(0)]["last_result"] == {"loss": 0.5}
    assert read_trial_state(exp).trials[tid(0)]["metric_analysis"] == {"loss": {"last": 0.5}}  # a restore


def test_a_marker_inside_a_value_reads_the_record_whole(exp):
    odd = trial(0, config={"a": 1, "metric_analysis": 2}, metric_analysis={"loss": {"n": 1}})
    JournalWriter(exp).compact(1, [odd], RUN)
    assert read_trial_state(exp, view=True).trials[tid(0)]["config"] == {"a": 1, "metric_analysis": 2}


def test_only_trials_with_control_characters_are_scrubbed_and_none_reach_the_terminal(exp, capsys):
    from hpctune.cli.main import main

    writer = JournalWriter(exp)
    writer.compact(1, [trial(0, config={"x": "\x1b[31m"}), trial(1)], RUN)
    writer.append(2, [trial(2, error="boom\x07")], RUN)
    exp.write_experiment({"metric": "loss", "mode": "min"})
    state = read_trial_state(exp, view=True)
    assert state.escaped == {tid(0), tid(2)}
    for argv in (["status", str(exp.root), "--no-squeue"], ["trials", str(exp.root)]):
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert "\x1b" not in out and "\x07" not in out and "\\x1b" in out


def test_best_reads_the_trial_the_summary_names_alone(tmp_path, capsys, monkeypatch):
    from hpctune.cli.main import main

    rig = make_rig(tmp_path, grid(3))
    rig.step()
    for i, loss in enumerate((0.5, 0.25, 0.75)):
        rig.job(i).start().report(loss=loss)
    rig.step()
    rig.ctl.save()
    rig.job(1).report(loss=0.125)  # the best trial's newer record is in the journal
    rig.step()
    rig.ctl.save()
    assert main(["best", str(rig.exp.root), "--json"]) == 0
    fast = json.loads(capsys.readouterr().out)
    assert fast["trial_id"] == tid(1) and fast["value"] == 0.125
    assert main(["best", str(rig.exp.root), "--json", "--metric", "loss", "--mode", "min"]) == 0
    assert json.loads(capsys.readouterr().out) == fast  # the same as reading every trial
    monkeypatch.setattr("hpctune.cli.inspect.load_trials", lambda exp: pytest.fail("read every trial"))
    assert main(["best", str(rig.exp.root)]) == 0


def test_one_trial_is_found_in_the_base_and_in_the_journal(exp):
    writer = JournalWriter(exp)
    writer.compact(1, [trial(0), trial(1)], RUN)
    assert read_one_trial(exp, tid(1))["status"] == "RUNNING"
    writer.append(2, [trial(1, status="TERMINATED"), trial(2)], RUN)
    assert read_one_trial(exp, tid(1))["status"] == "TERMINATED" and read_one_trial(exp, tid(2)) is not None
    with open(journal_path(exp), "ab") as f:
        f.write(json.dumps({"kind": "trial", "seq": 3, "trial": trial(1, status="ERROR")}).encode()[:-5])
    assert read_one_trial(exp, tid(1))["status"] == "TERMINATED"  # the torn line is left out
    assert read_one_trial(exp, "t_09999") is None


def test_the_summary_tally_follows_best_trial_as_trials_change():
    from hpctune.core.metrics import best_trial
    from hpctune.storage.summary import SummaryTally
    from hpctune.tune.experiment.trial import Trial

    trials = [Trial(tid(i), {}, "", f"/x/{i}") for i in range(4)]
    tally = SummaryTally("loss", "min")
    tally.update(trials)
    assert tally.best() is None and tally.summary("running", {})["by_status"] == {"PENDING": 4}
    for t, loss in zip(trials, (0.5, 0.25, 0.25, float("nan")), strict=True):
        t.record_result({"loss": loss})
    tally.update(trials)
    assert tally.best() is trials[1] is best_trial(trials, "loss", "min")  # the first on ties; NaN skipped
    trials[1].record_result({"loss": 0.75})  # its last report is worse now
    trials[0].start(0)
    tally.update([trials[0], trials[1]])
    assert tally.best() is trials[2] is best_trial(trials, "loss", "min")
    assert tally.summary("running", {})["by_status"] == {"PENDING": 3, "RUNNING": 1}
    assert SummaryTally("loss", "max").best() is None


def test_the_summary_tally_agrees_with_a_full_count_through_random_changes():
    import random
    from collections import Counter

    from hpctune.core.metrics import best_trial
    from hpctune.storage.summary import SummaryTally
    from hpctune.tune.experiment.trial import Trial, TrialStatus

    rng = random.Random(11)
    for mode in ("min", "max"):
        trials = [Trial(tid(i), {}, "", f"/x/{i}") for i in range(40)]
        tally = SummaryTally("loss", mode)
        tally.update(trials[:10])
        for _ in range(300):
            changed = rng.sample(trials[: rng.randrange(10, 41)], rng.randrange(1, 6))
            for t in changed:
                t.status = rng.choice(list(TrialStatus))
                if rng.random() < 0.7:
                    t.record_result({"loss": rng.choice([0.5, 0.25, 1.0, float("nan"), rng.random()])})
            tally.update(changed)
            seen = sorted((t for t in trials if t.trial_id in tally.index), key=lambda t: tally.index[t.trial_id])
            assert tally.best() is best_trial(seen, "loss", mode)
            counts = Counter(t.status.value for t in seen)
            assert tally.summary("running", {})["by_status"] == dict(counts)


def test_a_restore_after_a_cut_off_compaction_writes_a_new_base(tmp_path):
    """A compaction cut off after its new base left the older journal: the restored driver
    does not append to it (readers ignore a journal of another base) but compacts."""
    rig = two_running(tmp_path)
    rig.job(0).report(loss=0.25)
    rig.step()
    rig.ctl.save()
    lines = journal_path(rig.exp).read_text().splitlines()
    header = json.loads(lines[0])
    journal_path(rig.exp).write_text("\n".join([json.dumps({**header, "generation": "older"}), *lines[1:]]) + "\n")
    new = restored(rig)
    new.job(1).report(loss=0.125)
    new.step()
    new.ctl.save()
    assert journal_lines(rig.exp)[0]["generation"] == json.loads(rig.exp.state_path.read_bytes())["generation"]
    assert read_trial_state(rig.exp).trials[tid(1)]["last_result"]["loss"] == 0.125
