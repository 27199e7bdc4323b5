"""The pool's files between the driver and its pool tasks: the manifest and the queue's records,
each typed, versioned, and still read as the previous hpctune wrote them."""

import json
import time
from pathlib import Path

import pytest

from hpctune.config import SlurmConfig
from hpctune.errors import ExperimentStateError
from hpctune.pool import __main__ as pool_main
from hpctune.storage.events import SchemaError
from hpctune.storage.pool_manifest import (
    MANIFEST_VERSION,
    PoolManifest,
    read_manifest,
    write_manifest,
)
from hpctune.storage.pool_queue import (
    QUEUE_BUCKET,
    QUEUE_VERSION,
    PoolQueue,
    RunEnd,
    RunRecord,
    RunWall,
    shape_key,
)
from tests.unit.test_pool import ScriptedSlurm

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
    queue.enqueue(0, "t_00000", SHAPE)
    return queue


def test_queue_records_read_back_with_their_version(tmp_path):
    queue = queue_with_run(tmp_path)
    assert queue.run(0) == RunRecord("t_00000", SHAPE) and queue.runs() == {0: RunRecord("t_00000", SHAPE)}
    queue.claim_next("7_0", SHAPE)
    queue.finish("7_0", 0, 3)
    assert queue.ended(0) == RunEnd(3, "7_0")
    queue.write_cap(SHAPE, 4)
    assert queue.read_cap(SHAPE) == 4
    on_disk = [json.loads(p.read_text()) for p in (tmp_path / "pool").rglob("*.json") if ".cap" in p.name
               or p.parent.name in ("runs", "ended")]
    assert len(on_disk) == 3 and all(record["v"] == QUEUE_VERSION for record in on_disk)


def test_queue_records_of_the_previous_hpctune_are_version_1(tmp_path):
    """What a driver before versioned records wrote: a restored driver and pool tasks go on."""
    queue = queue_with_run(tmp_path)
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
    assert [queue.claim_next(task, SHAPE) for task in ("7_0", "7_1", "7_0")] == [0, 1, 2]
    assert sorted(p.name for p in (tmp_path / "pool" / "claimed").iterdir()) == [
        "00000000.7_0", "00000001.7_1", "00000002.7_0"]
    old = tmp_path / "pool" / "claimed" / "6_3"  # the layout before: a directory per pool task
    old.mkdir()
    queue.claim_next("6_3", SHAPE)
    (tmp_path / "pool" / "claimed" / "00000003.6_3").rename(old / "00000003")
    assert queue.view().claimed == {0: "7_0", 1: "7_1", 2: "7_0", 3: "6_3"}
    assert queue.claims("7_0") == [0, 2] and queue.claims("6_3") == [3] and queue.claims("7_1") == [1]
    queue.finish("7_0", 0, 0, logged_end=True)
    assert queue.hand_back(3, "6_3") and not queue.hand_back(3, "6_3") and queue.dropped(3)
    assert queue.hand_back(2, "7_0") and queue.dropped(2)
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
    (shape_dir / "b00000000" / "00000099").rename(shape_dir / "b00000000" / "ignored")  # no run
    assert sorted(queue.view().queued) == [s for s in range(QUEUE_BUCKET + 3) if s != 99]
    (shape_dir / "b00000000" / "ignored").unlink()
    claimed = [queue.claim_next("7_0", SHAPE) for _ in range(3)]
    assert claimed == [0, 1, 2]
    assert queue.cancel(3) and queue.dropped(3)  # out of its bucket
    rest = [queue.claim_next("7_1", SHAPE) for _ in range(QUEUE_BUCKET)]
    assert rest == [s for s in range(4, QUEUE_BUCKET + 3) if s != 99] + [None] * 2
    assert [p.name for p in shape_dir.iterdir()] == [f"b{QUEUE_BUCKET:08d}"]  # the older one went
    queue.enqueue(QUEUE_BUCKET + 3, "t_again", SHAPE)
    assert queue.claim_next("7_1", SHAPE) == QUEUE_BUCKET + 3
    queue.enqueue(2 * QUEUE_BUCKET, "t_next", SHAPE)  # a new bucket: the emptied one is older now
    assert queue.claim_next("7_1", SHAPE) == 2 * QUEUE_BUCKET
    assert queue.claim_next("7_1", SHAPE) is None
    assert [p.name for p in shape_dir.iterdir()] == [f"b{2 * QUEUE_BUCKET:08d}"]


def test_buckets_are_claimed_in_number_order_whatever_the_listing_order(tmp_path):
    """Bucket names past 99,999,999 runs get longer; the oldest is the lowest number."""
    queue = PoolQueue(tmp_path)
    queue.ensure()
    queue.write_shape(SHAPE, {"cpu": 1, "gpu": 0})
    for seq in (100_000_000, 5, 99_999_999):
        queue.enqueue(seq, f"t_{seq}", SHAPE)
    assert [queue.claim_next("7_0", SHAPE) for _ in range(3)] == [5, 99_999_999, 100_000_000]


def test_a_finished_run_keeps_no_record_unless_it_is_the_newest(tmp_path):
    """``next_seq`` counts from the newest record, so the newest stays; the others go (the
    common case is decided by one look at the next run's record)."""
    queue = PoolQueue(tmp_path)
    queue.ensure()
    queue.write_shape(SHAPE, {"cpu": 1, "gpu": 0})
    for seq in range(3):
        queue.enqueue(seq, f"t_{seq:05d}", SHAPE)
        queue.claim_next("7_0", SHAPE)
    queue.finish("7_0", 1, 0, logged_end=True)
    queue.finish("7_0", 0, 0, logged_end=True)  # its next run's record is gone: the listing says
    queue.finish("7_0", 2, 0, logged_end=True)  # the newest: kept
    assert sorted(queue.runs()) == [2] and queue.next_seq() == 3


def test_a_runs_end_carries_its_wall_time_and_a_version_1_end_has_none(tmp_path):
    """The pool's accounting: the pool task's measured wall time of the run (issue 27)."""
    queue = queue_with_run(tmp_path)
    queue.claim_next("7_0", SHAPE)
    queue.finish("7_0", 0, 0, wall_s=12.3456)  # a crash: its end record carries the wall time
    assert queue.ended(0) == RunEnd(0, "7_0", wall_s=12.346)
    queue.enqueue(1, "t_00001", SHAPE)
    queue.enqueue(2, "t_00002", SHAPE)
    queue.claim_next("7_0", SHAPE)
    queue.finish("7_0", 1, 0, logged_end=True, wall_s=5)  # its end in the log: no record, a wall line
    assert queue.ended(1) is None
    assert queue.run_walls() == {0: RunWall("7_0", 12.346), 1: RunWall("7_0", 5.0)}
    walls = tmp_path / "pool" / "walls" / "7_0.jsonl"
    walls.write_text(walls.read_text() + '{"v": 2, "run": 9, "wall')  # torn: a task killed mid-line
    assert set(queue.run_walls()) == {0, 1}
    (tmp_path / "pool" / "ended" / "00000000.json").write_text(json.dumps({"v": 1, "exit": 0, "task": "7_0"}))
    assert queue.ended(0) == RunEnd(0, "7_0", version=1, wall_s=None)


def test_a_newer_queue_record_is_refused_and_a_broken_run_is_not_started(tmp_path):
    queue = queue_with_run(tmp_path)
    runs = tmp_path / "pool" / "runs"
    (runs / "00000000.json").write_text(json.dumps({"v": QUEUE_VERSION + 1, "trial_id": "t", "shape": SHAPE}))
    with pytest.raises(SchemaError, match="pool record"):
        queue.run(0)
    for broken in ("{not json", "[]", json.dumps({"shape": SHAPE})):
        (runs / "00000000.json").write_text(broken)
        assert queue.run(0) is None and queue.runs() == {}  # the pool task drops it (test_pool)
    (tmp_path / "pool" / "ended" / "00000000.json").write_text("{}")
    with pytest.raises(ExperimentStateError, match="exit, task"):
        queue.ended(0)


def test_a_pool_task_drops_a_run_whose_record_it_cannot_read(tmp_path, capsys):
    from hpctune.pool.slots import SlotPlan
    from hpctune.pool.task import PoolTask

    queue = queue_with_run(tmp_path)
    (tmp_path / "pool" / "runs" / "00000000.json").write_text("{not json")
    task = PoolTask(tmp_path, "43_0", SHAPE, idle_s=0.0, start_method="fork", plan=SlotPlan(slots=1))
    assert task.run() == 0
    assert queue.ended(0) == RunEnd(1, "43_0") and not task.children
    assert "run 0 has no readable record; dropped" in capsys.readouterr().err


def test_a_run_record_is_written_in_place_in_the_policy_mode_and_an_empty_one_is_unreadable(tmp_path):
    import os
    import stat

    queue = queue_with_run(tmp_path)
    runs = tmp_path / "pool" / "runs"
    assert stat.S_IMODE(os.stat(runs / "00000000.json").st_mode) == 0o600
    assert [p.name for p in runs.iterdir()] == ["00000000.json"]  # no temporary file left
    (runs / "00000000.json").write_text("")  # a driver killed between the create and the write
    assert queue.run(0) is None and queue.runs() == {}


def test_a_run_record_already_there_is_replaced_whole(tmp_path):
    from hpctune.storage.pool_records import write_new_record

    path = tmp_path / "00000003.json"
    path.write_text(json.dumps({"v": QUEUE_VERSION, "trial_id": "old", "shape": SHAPE, "pad": "x" * 500}))
    write_new_record(path, {"trial_id": "new", "shape": SHAPE}, 0o600)
    assert json.loads(path.read_text()) == {"v": QUEUE_VERSION, "trial_id": "new", "shape": SHAPE}
