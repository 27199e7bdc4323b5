"""The pool's files between the driver and its pool tasks: the manifest and the queue's records,
each typed, versioned, and still read as the previous hpctune wrote them."""

import json
import os
import stat
import time
from pathlib import Path

import pytest

from hpctune.config import SlurmConfig
from hpctune.errors import ConfigError, ExperimentStateError, UnsafeFileError
from hpctune.pool import __main__ as pool_main
from hpctune.storage.events import SchemaError
from hpctune.storage.pool_manifest import (
    MANIFEST_VERSION,
    PoolManifest,
    read_manifest,
    write_manifest,
)
from hpctune.storage.pool_queue import (
    NEXT_RUN_FILE,
    QUEUE_BUCKET,
    QUEUE_VERSION,
    PoolQueue,
    RunClaim,
    RunEnd,
    RunRecord,
    RunWall,
    shape_key,
)
from tests.unit.test_pool import ScriptedSlurm, claim, claimed_seqs, finish

SHAPE = shape_key({"cpu": 1, "gpu": 0})
MANIFEST = PoolManifest(SHAPE, idle_s=10.0, start_method="spawn", time_min=60, signal_lead_s=90, slots=2)
#: what hpctune wrote before the manifest had a version (backends/pool.py at 91ae19e)
POSITIONAL = f"{SHAPE} 10 spawn 60 90 2"


# -- the manifest -----------------------------------------------------------------------------------
def test_every_task_reads_its_line_of_the_manifest(tmp_path):
    path = tmp_path / "a.tasks"
    write_manifest(path, MANIFEST, tasks=3)
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[2])["v"] == MANIFEST_VERSION
    assert [read_manifest(path, i) for i in range(3)] == [MANIFEST] * 3


def test_a_manifest_of_the_previous_hpctune_is_version_1(tmp_path):
    """A pool array queued (or requeued) before an upgrade starts with the new code."""
    path = tmp_path / "a.tasks"
    path.write_text(f"{POSITIONAL}\n{POSITIONAL}\n")
    old = read_manifest(path, 1)
    assert old.version == 1 and old == PoolManifest(**{**MANIFEST.__dict__, "version": 1})


@pytest.mark.parametrize("line, error, match", [
    ('{"v": 3, "shape": "s0000000000"}', SchemaError, "pool manifest 3, this hpctune reads up to 2"),
    (f"{SHAPE} 10 spawn 60", ExperimentStateError, "line 1 of .* is not a pool manifest record"),
    ('{"v": 2, "shape": "../etc"}', ExperimentStateError, "not a pool manifest record"),
    (POSITIONAL.replace("spawn 60", "spawn sixty"), ExperimentStateError, "not a pool manifest record"),
])
def test_a_manifest_line_that_cannot_be_read_says_so(tmp_path, line, error, match):
    path = tmp_path / "a.tasks"
    path.write_text(line + "\n")
    with pytest.raises(error, match=match):
        read_manifest(path, 0)
    with pytest.raises(ExperimentStateError, match="1 task lines, none for task 1"):
        read_manifest(path, 1)


@pytest.mark.parametrize("manifest", ["new", "positional"])
def test_a_pool_task_starts_from_either_manifest(tmp_path, monkeypatch, manifest):
    PoolQueue(tmp_path).ensure()
    PoolQueue(tmp_path).write_shape(SHAPE, {"cpu": 1, "gpu": 0})
    path = tmp_path / "a.tasks"
    if manifest == "new":
        write_manifest(path, MANIFEST, tasks=2)
    else:
        path.write_text(f"{POSITIONAL}\n{POSITIONAL}\n")
    started = []
    monkeypatch.setattr(pool_main, "PoolTask", lambda *args: started.append(args) or _Ran())
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "41")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    before = time.monotonic()
    assert pool_main.main([str(tmp_path), "--manifest", str(path)]) == 0
    (root, task_id, shape, idle_s, method, plan, claim_until), = started
    assert (root, task_id, shape, idle_s, method, plan.slots) == (tmp_path, "41_1", SHAPE, 10.0, "spawn", 2)
    assert claim_until == pytest.approx(before + 60 * 60 - 90 - pool_main.START_MARGIN_S, abs=5)


class _Ran:
    def run(self) -> int:
        return 0


def test_a_restored_pool_backend_knows_the_arrays_of_either_manifest(tmp_path):
    from hpctune.backends.pool import PoolBackend

    queue = PoolQueue(tmp_path)
    queue.ensure()
    for uid, array, text in (("old", "50", POSITIONAL + "\n"), ("new", "51", None)):
        manifest, _, job_id = queue.array_paths(uid)
        if text is None:
            write_manifest(manifest, MANIFEST, tasks=1)
        else:
            manifest.write_text(text)
        job_id.write_text(array + "\n")
    backend = PoolBackend(tmp_path, SlurmConfig(requeue=False), commands=ScriptedSlurm())
    assert backend._arrays == {"50": SHAPE, "51": SHAPE}


# -- the queue's records ----------------------------------------------------------------------------
def queue_with_run(tmp_path: Path) -> PoolQueue:
    queue = PoolQueue(tmp_path)
    queue.ensure()
    queue.write_shape(SHAPE, {"cpu": 1, "gpu": 0})
    queue.reserve(1)
    queue.enqueue(0, "t_00000", SHAPE)
    return queue


def test_queue_records_read_back_with_their_version(tmp_path):
    queue = queue_with_run(tmp_path)
    assert queue.claim_next("7_0", SHAPE) == RunClaim(0, "t_00000", "00000000.7_0.t_00000")
    finish(queue, "7_0", 0, 3)
    assert queue.ended(0) == RunEnd(3, "7_0", trial_id="t_00000")
    queue.write_cap(SHAPE, 4)
    assert queue.read_cap(SHAPE) == 4 and queue.next_seq() == 1
    on_disk = [json.loads(p.read_text()) for p in (tmp_path / "pool").rglob("*.json") if ".cap" in p.name
               or p.parent.name == "ended" or p.name == NEXT_RUN_FILE]
    assert len(on_disk) == 3 and all(record["v"] == QUEUE_VERSION for record in on_disk)


def test_queue_records_of_the_previous_hpctune_are_version_1(tmp_path):
    """What a driver before versioned records wrote: a restored driver and pool tasks go on."""
    queue = old_layout(tmp_path, 1)
    pool = tmp_path / "pool"
    (pool / "runs" / "00000000.json").write_text(json.dumps({"trial_id": "t_00000", "shape": SHAPE}))
    (pool / "ended" / "00000000.json").write_text(json.dumps({"exit": 0, "task": "7_0"}))
    (pool / "shapes" / f"{SHAPE}.cap.json").write_text(json.dumps({"cap": None}))
    assert queue.run(0) == RunRecord("t_00000", SHAPE, version=1)
    assert queue.ended(0) == RunEnd(0, "7_0", version=1)
    assert queue.read_cap(SHAPE) is None


def test_claims_are_one_directory_whatever_runs_and_a_pool_task_directory_is_still_read(tmp_path):
    """A claim is ``claimed/<N>.<task>``: the driver's look at the queue is two listings however
    many pool tasks run. A pool task's own directory (``claimed/<task>/<N>``, the layout of
    hpctune before) is read too: a requeued pool task resumes it, the driver sees it and hands
    it back, and its task finishes it."""
    queue = PoolQueue(tmp_path)
    queue.ensure()
    queue.write_shape(SHAPE, {"cpu": 1, "gpu": 0})
    for seq in range(4):
        queue.enqueue(seq, f"t_{seq:05d}", SHAPE)
    assert [claim(queue, task) for task in ("7_0", "7_1", "7_0")] == [0, 1, 2]
    assert sorted(p.name for p in (tmp_path / "pool" / "claimed").iterdir()) == [
        "00000000.7_0.t_00000", "00000001.7_1.t_00001", "00000002.7_0.t_00002"]
    old = tmp_path / "pool" / "claimed" / "6_3"  # the layout before: a directory per pool task
    old.mkdir()
    queue.claim_next("6_3", SHAPE)
    (tmp_path / "pool" / "claimed" / "00000003.6_3.t_00003").rename(old / "00000003")
    assert queue.view().claimed == {0: "7_0", 1: "7_1", 2: "7_0", 3: "6_3"}
    assert claimed_seqs(queue, "7_0") == [0, 2] and claimed_seqs(queue, "6_3") == [3]
    assert claimed_seqs(queue, "7_1") == [1]
    finish(queue, "7_0", 0, 0, logged_end=True)
    assert queue.hand_back(3, "6_3") and not queue.hand_back(3, "6_3") and queue.dropped(3)
    assert queue.hand_back(2, "7_0", "t_00002") and queue.dropped(2)
    assert queue.view().claimed == {1: "7_1"}
    (tmp_path / "pool" / "claimed" / "notes.txt").write_text("")  # a foreign file is no claim
    assert queue.view().claimed == {1: "7_1"}


def test_the_queue_is_in_buckets_claimed_oldest_first_and_a_run_queued_before_them_goes_first(tmp_path):
    """Queued runs wait in directories of QUEUE_BUCKET runs, so that a claim lists a few names,
    not every queued run; an older bucket a claim found empty goes, the newest stays (the driver
    may be adding to it: removing it raced with ``enqueue``). A run queued directly in the shape's directory (hpctune before) is
    seen by the driver, claimed first, and can be cancelled."""
    queue = PoolQueue(tmp_path)
    queue.ensure()
    queue.write_shape(SHAPE, {"cpu": 1, "gpu": 0})
    shape_dir = tmp_path / "pool" / "queue" / SHAPE
    for seq in range(1, QUEUE_BUCKET + 3):
        queue.enqueue(seq, f"t_{seq:05d}", SHAPE)
    assert sorted(p.name for p in shape_dir.iterdir()) == ["b00000000", f"b{QUEUE_BUCKET:08d}"]
    (shape_dir / "00000000").touch()  # run 0, queued by an hpctune before buckets
    (shape_dir / "b00000000" / "00000099.t_00099").rename(shape_dir / "b00000000" / "ignored")  # no run
    assert sorted(queue.view().queued) == [s for s in range(QUEUE_BUCKET + 3) if s != 99]
    (shape_dir / "b00000000" / "ignored").unlink()
    claimed = [claim(queue, "7_0") for _ in range(3)]
    assert claimed == [0, 1, 2]
    assert queue.cancel(3) and queue.dropped(3)  # out of its bucket
    rest = [claim(queue, "7_1") for _ in range(QUEUE_BUCKET)]
    assert rest == [s for s in range(4, QUEUE_BUCKET + 3) if s != 99] + [None] * 2
    assert [p.name for p in shape_dir.iterdir()] == [f"b{QUEUE_BUCKET:08d}"]  # the older one went
    queue.enqueue(QUEUE_BUCKET + 3, "t_again", SHAPE)
    assert claim(queue, "7_1") == QUEUE_BUCKET + 3
    queue.enqueue(2 * QUEUE_BUCKET, "t_next", SHAPE)  # a new bucket: the emptied one is older now
    assert claim(queue, "7_1") == 2 * QUEUE_BUCKET
    assert claim(queue, "7_1") is None
    assert [p.name for p in shape_dir.iterdir()] == [f"b{2 * QUEUE_BUCKET:08d}"]


def test_buckets_are_claimed_in_number_order_whatever_the_listing_order(tmp_path):
    """Bucket names past 99,999,999 runs get longer; the oldest is the lowest number."""
    queue = PoolQueue(tmp_path)
    queue.ensure()
    queue.write_shape(SHAPE, {"cpu": 1, "gpu": 0})
    for seq in (100_000_000, 5, 99_999_999):
        queue.enqueue(seq, f"t_{seq}", SHAPE)
    assert [claim(queue, "7_0") for _ in range(3)] == [5, 99_999_999, 100_000_000]


def old_layout(tmp_path: Path, runs: int) -> PoolQueue:
    """What hpctune wrote before a run's trial went into its names (QUEUE_VERSION 2): a record
    ``runs/<N>.json`` and an empty marker ``queue/<shape>/b<M>/<N>`` per run, no next-run.json."""
    queue = PoolQueue(tmp_path)
    queue.ensure()
    queue.write_shape(SHAPE, {"cpu": 1, "gpu": 0})
    (tmp_path / "pool" / "runs").mkdir()
    (tmp_path / "pool" / "queue" / SHAPE / "b00000000").mkdir()
    for seq in range(runs):
        record = {"v": 2, "trial_id": f"t_{seq:05d}", "shape": SHAPE}
        (tmp_path / "pool" / "runs" / f"{seq:08d}.json").write_text(json.dumps(record))
        (tmp_path / "pool" / "queue" / SHAPE / "b00000000" / f"{seq:08d}").touch()
    return queue


def test_a_run_of_before_is_claimed_with_the_trial_of_its_record_and_its_record_goes_unless_newest(tmp_path):
    """``next_seq`` counts from the newest record of before, so the newest stays; the others go
    (the common case is decided by one look at the next run's record)."""
    queue = old_layout(tmp_path, 3)
    claims = [queue.claim_next("7_0", SHAPE) for _ in range(3)]
    assert claims[0] == RunClaim(0, "t_00000", "00000000.7_0", legacy=True)
    assert queue.view().claimed == {0: "7_0", 1: "7_0", 2: "7_0"} and queue.view().trials == {}
    finish(queue, "7_0", 1, 0, logged_end=True)
    finish(queue, "7_0", 0, 0, logged_end=True)  # its next run's record is gone: the listing says
    finish(queue, "7_0", 2, 0, logged_end=True)  # the newest: kept
    assert sorted(queue.runs()) == [2] and queue.next_seq() == 3


def test_an_experiment_of_the_hpctune_before_resumes_and_runs(tmp_path):
    """Runs queued, claimed, ended and dropped as the hpctune before names them: a restored
    driver numbers on from them, adopts them, cancels and hands them back; its runs are run."""
    from hpctune.backends.pool import PoolBackend

    queue = old_layout(tmp_path, 6)
    claim(queue, "7_0")  # run 0: ended in a crash
    queue.finish("7_0", queue.claims("7_0")[0], 3)
    claim(queue, "7_0")  # run 1: claimed, its task gone
    claim(queue, "7_0")  # run 2: ended with its end in the log (no file left but its record: newest? no)
    finish(queue, "7_0", 2, 0, logged_end=True)
    os.rename(tmp_path / "pool" / "queue" / SHAPE / "b00000000" / "00000003", tmp_path / "pool" / "dropped" / "00000003")
    os.unlink(tmp_path / "pool" / "queue" / SHAPE / "b00000000" / "00000005")  # a driver died before it
    backend = PoolBackend(tmp_path, SlurmConfig(requeue=False), commands=ScriptedSlurm())
    assert backend._next_seq == 6  # the newest record of before (run 5) counts
    assert backend.recorded_launches() == {"t_00000": "pool-0", "t_00001": "pool-1", "t_00003": "pool-3",
                                           "t_00004": "pool-4"}
    assert queue.ended(0) == RunEnd(3, "7_0", trial_id="t_00000")
    jobs = backend.launch(["t_00002"], {"cpu": 1, "gpu": 0}, throttle=None)
    assert jobs == ["pool-6"] and queue.view().trials == {6: "t_00002"}
    assert queue.hand_back(1, "7_0") and queue.dropped(1)
    assert queue.cancel(4) and queue.dropped_runs() == {1: None, 3: None, 4: None}
    assert queue.claim_next("8_0", SHAPE) == RunClaim(6, "t_00002", "00000006.8_0.t_00002")


def test_the_next_run_number_never_repeats_one_used(tmp_path):
    """``next-run.json`` (written before a launch's markers) keeps the numbers of runs that ended
    and left no file; the numbers in the names count too (a lost next-run.json, runs of before)."""
    queue = PoolQueue(tmp_path)
    assert queue.next_seq() == 0
    queue.ensure()
    queue.write_shape(SHAPE, {"cpu": 1, "gpu": 0})
    queue.reserve(3)
    for seq in range(3):
        queue.enqueue(seq, f"t_{seq:05d}", SHAPE)
    for _ in range(3):
        finish(queue, "7_0", claim(queue, "7_0"), 0, logged_end=True)
    assert not list((tmp_path / "pool" / "claimed").iterdir()) and PoolQueue(tmp_path).next_seq() == 3
    for seq, where in ((3, "queued"), (4, "claimed"), (5, "ended"), (6, "dropped")):
        (tmp_path / "pool" / NEXT_RUN_FILE).unlink(missing_ok=True)
        queue.enqueue(seq, f"t_{seq:05d}", SHAPE)
        if where != "queued":
            claim(queue, "7_1")
        if where == "ended":
            finish(queue, "7_1", seq, 1)
        elif where == "dropped":
            assert queue.hand_back(seq, "7_1", f"t_{seq:05d}")
        assert PoolQueue(tmp_path).next_seq() == seq + 1, where
        if where in ("queued", "claimed"):  # gone again (its end in the log): the next one alone counts
            if where == "queued":
                claim(queue, "7_1")
            finish(queue, "7_1", seq, 0, logged_end=True)
    (tmp_path / "pool" / NEXT_RUN_FILE).write_text(json.dumps({"v": QUEUE_VERSION, "next": "7"}))
    with pytest.raises(ExperimentStateError, match="no run number"):
        queue.next_seq()


def test_a_restored_driver_adopts_runs_from_every_name_that_carries_their_trial(tmp_path):
    """Queued, claimed and dropped names and end records carry the trial: the newest run of
    each trial that reached the queue is its launch (a run that ended with its end in the log is
    the log's to tell)."""
    from hpctune.backends.pool import PoolBackend

    backend = PoolBackend(tmp_path, SlurmConfig(requeue=False), commands=ScriptedSlurm())
    backend.launch(["a", "b", "c", "d", "e", "a"], {"cpu": 1, "gpu": 0}, throttle=None)
    queue = backend.queue
    for _ in range(4):
        claim(queue, "7_0")  # runs 0-3
    finish(queue, "7_0", 0, 0, logged_end=True)  # a: its end in the log; its run 5 is still queued
    finish(queue, "7_0", 1, 1)  # b: crashed, an end record
    assert queue.hand_back(2, "7_0", "c")  # c: its pool task died
    restored = PoolBackend(tmp_path, SlurmConfig(requeue=False), commands=ScriptedSlurm())
    assert restored._next_seq == 6
    assert restored.recorded_launches() == {"a": "pool-5", "b": "pool-1", "c": "pool-2", "d": "pool-3",
                                            "e": "pool-4"}


def test_a_cancel_finds_a_queued_run_in_any_shape_and_a_run_that_ended_needs_none(tmp_path):
    from hpctune.backends.pool import PoolBackend

    backend = PoolBackend(tmp_path, SlurmConfig(requeue=False), commands=ScriptedSlurm())
    backend.launch(["a", "b"], {"cpu": 1, "gpu": 0}, throttle=None)
    backend.launch(["c", "d"], {"cpu": 2, "gpu": 0}, throttle=None)
    queue, other = backend.queue, shape_key({"cpu": 2, "gpu": 0})
    assert claim(queue, "7_0", other) == 2
    finish(queue, "7_0", 2, 0, logged_end=True)
    backend.cancel(["pool-3", "pool-0", "pool-2"])
    assert queue.dropped_runs() == {0: "a", 3: "d"} and queue.view().queued == {1: SHAPE}
    assert not (tmp_path / "pool" / "cancel" / "00000002").exists()  # it ended: no marker left
    assert backend.final_states(["pool-3"]) == {"pool-3": "cancelled before a pool task started it"}


def test_a_launch_is_one_file_per_run_whose_name_is_its_record(tmp_path):
    """A queued run is one file created under its full name (one metadata operation): a pool task
    that lists it sees the whole record or nothing; ``next-run.json`` is one write per launch."""
    from hpctune.backends.pool import PoolBackend

    backend = PoolBackend(tmp_path, SlurmConfig(requeue=False), commands=ScriptedSlurm())
    before = {p for p in tmp_path.rglob("*")}
    backend.launch([f"t_{i:05d}" for i in range(5)], {"cpu": 1, "gpu": 0}, throttle=None)
    queued = sorted(p.name for p in (tmp_path / "pool" / "queue" / SHAPE / "b00000000").iterdir())
    assert queued == [f"{i:08d}.t_{i:05d}" for i in range(5)]
    made = {p.relative_to(tmp_path / "pool").parts[0] for p in set(tmp_path.rglob("*")) - before
            if p.is_file() and "pool" in p.parts}
    assert made == {"queue", "shapes", "arrays", NEXT_RUN_FILE}  # no runs/<N>.json
    assert json.loads((tmp_path / "pool" / NEXT_RUN_FILE).read_text()) == {"v": QUEUE_VERSION, "next": 5}
    assert stat.S_IMODE(os.stat(tmp_path / "pool" / "queue" / SHAPE / "b00000000" / queued[0]).st_mode) == 0o600


@pytest.mark.parametrize("trial_id, error", [("x" * 201, ConfigError), ("../up", UnsafeFileError),
                                              ("a\nb", UnsafeFileError)])
def test_a_trial_id_a_name_cannot_carry_is_refused_before_anything_is_queued(tmp_path, trial_id, error):
    from hpctune.backends.pool import PoolBackend

    backend = PoolBackend(tmp_path, SlurmConfig(requeue=False), commands=ScriptedSlurm())
    with pytest.raises(error, match="trial id"):
        backend.launch(["t_00000", trial_id], {"cpu": 1, "gpu": 0}, throttle=None)
    assert not (tmp_path / "pool").exists()


def test_names_that_are_no_run_are_left_alone(tmp_path):
    queue = queue_with_run(tmp_path)
    bucket = tmp_path / "pool" / "queue" / SHAPE / "b00000000"
    (bucket / "00000001..").touch()  # no trial: not a run
    (tmp_path / "pool" / "claimed" / "00000002.7_0..").touch()
    (tmp_path / "pool" / "claimed" / "00000003.x_y.t").touch()
    assert queue.view().queued == {0: SHAPE} and queue.view().claimed == {}
    assert claim(queue, "7_0") == 0 and claim(queue, "7_0") is None


def test_a_runs_end_carries_its_wall_time_and_a_version_1_end_has_none(tmp_path):
    """The pool's accounting: the pool task's measured wall time of the run (issue 27)."""
    queue = queue_with_run(tmp_path)
    claim(queue, "7_0")
    finish(queue, "7_0", 0, 0, wall_s=12.3456)  # a crash: its end record carries the wall time
    assert queue.ended(0) == RunEnd(0, "7_0", wall_s=12.346, trial_id="t_00000")
    queue.enqueue(1, "t_00001", SHAPE)
    queue.enqueue(2, "t_00002", SHAPE)
    claim(queue, "7_0")
    finish(queue, "7_0", 1, 0, logged_end=True, wall_s=5)  # its end in the log: no record, a wall line
    assert queue.ended(1) is None
    assert queue.run_walls() == {0: RunWall("7_0", 12.346), 1: RunWall("7_0", 5.0)}
    walls = tmp_path / "pool" / "walls" / "7_0.jsonl"
    walls.write_text(walls.read_text() + '{"v": 2, "run": 9, "wall')  # torn: a task killed mid-line
    assert set(queue.run_walls()) == {0, 1}
    (tmp_path / "pool" / "ended" / "00000000.json").write_text(json.dumps({"v": 1, "exit": 0, "task": "7_0"}))
    assert queue.ended(0) == RunEnd(0, "7_0", version=1, wall_s=None)


def test_a_newer_queue_record_is_refused_and_a_broken_run_is_not_started(tmp_path):
    queue = old_layout(tmp_path, 1)
    runs = tmp_path / "pool" / "runs"
    (runs / "00000000.json").write_text(json.dumps({"v": QUEUE_VERSION + 1, "trial_id": "t", "shape": SHAPE}))
    with pytest.raises(SchemaError, match="pool record"):
        queue.run(0)
    for broken in ("{not json", "[]", json.dumps({"shape": SHAPE}), ""):
        (runs / "00000000.json").write_text(broken)
        assert queue.run(0) is None and queue.runs() == {}  # the pool task drops it (test_pool)
    (tmp_path / "pool" / "ended" / "00000000.json").write_text("{}")
    with pytest.raises(ExperimentStateError, match="exit, task"):
        queue.ended(0)
    assert queue.ended_runs() == {}  # a restore skips it
    (tmp_path / "pool" / "ended" / "00000000.json").write_text(json.dumps({"v": QUEUE_VERSION + 1, "exit": 0,
                                                                          "task": "7_0"}))
    with pytest.raises(SchemaError, match="pool record"):
        queue.ended_runs()


def test_a_pool_task_drops_a_run_whose_record_it_cannot_read(tmp_path, capsys):
    from hpctune.pool.slots import SlotPlan
    from hpctune.pool.task import PoolTask

    queue = old_layout(tmp_path, 1)
    (tmp_path / "pool" / "runs" / "00000000.json").write_text("{not json")
    task = PoolTask(tmp_path, "43_0", SHAPE, idle_s=0.0, start_method="fork", plan=SlotPlan(slots=1))
    assert task.run() == 0
    assert queue.ended(0) == RunEnd(1, "43_0") and not task.children
    assert "run 0 has no readable record; dropped" in capsys.readouterr().err


def test_cancelling_many_runs_lists_each_directory_once(tmp_path, monkeypatch):
    """Ctrl+C cancels every live trial: one listing of each shape, of each bucket the runs are in
    and of the claims for all of them, not a listing of the claims per run."""
    from hpctune.backends.pool import PoolBackend

    backend = PoolBackend(tmp_path, SlurmConfig(requeue=False), commands=ScriptedSlurm())
    backend.launch([f"t_{i:05d}" for i in range(300)], {"cpu": 1, "gpu": 0}, throttle=None)
    for _ in range(100):
        claim(backend.queue, "7_0")
    listed = []
    real = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path: listed.append(str(path)) or real(path))
    backend.cancel([f"pool-{i}" for i in range(300)])
    assert len(listed) <= 5, listed  # queue/, the shape, its 2 buckets, claimed/
    assert set(backend.queue.dropped_runs()) == set(range(100, 300))
    assert sorted(int(p.name) for p in (tmp_path / "pool" / "cancel").iterdir()) == list(range(100))
