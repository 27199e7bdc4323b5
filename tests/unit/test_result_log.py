"""The result log: complete lines only, torn lines sealed, no record lost with many writers."""

import json
import multiprocessing
import threading

from hpctune.storage.result_log import LogTail, ResultLog, checkpoint_results, read_events


def test_tail_reads_only_complete_lines(tmp_path):
    path = tmp_path / "result.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2}\n{"a": 3')  # the last line is still being written
    tail = LogTail(path)
    assert [e["a"] for e in tail.read_new()] == [1, 2]
    assert tail.read_new() == []
    with open(path, "ab") as f:
        f.write(b"}\n")
    assert [e["a"] for e in tail.read_new()] == [3]
    assert tail.offset == path.stat().st_size


def test_each_checkpoint_goes_with_the_latest_result_that_names_it(tmp_path):
    log = ResultLog(tmp_path / "result.jsonl")
    log.append_many([
        {"event": "result", "result": {"training_iteration": 2, "x": "reported"}, "checkpoint": "checkpoint_000002"},
        {"event": "result", "result": {"training_iteration": 3}},  # no checkpoint
        {"event": "exploited", "checkpoint": "checkpoint_000002", "result": {"training_iteration": 2, "x": "donor's"}},
        {"event": "result", "result": {"training_iteration": 4, "x": "four"}, "checkpoint": "checkpoint_000004"},
        {"event": "error", "checkpoint": "checkpoint_000004"},  # names it without a result
    ])
    assert checkpoint_results(log.path) == {"checkpoint_000002": {"training_iteration": 2, "x": "donor's"},
                                            "checkpoint_000004": {"training_iteration": 4, "x": "four"}}
    assert checkpoint_results(tmp_path / "missing.jsonl") == {}


def test_append_seals_a_torn_line(tmp_path):
    path = tmp_path / "result.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2, "tor')  # a writer killed mid-line
    ResultLog(path).append({"a": 3})
    tail = LogTail(path)
    assert [e["a"] for e in tail.read_new()] == [1, 3]
    assert tail.bad_lines == 1


def test_missing_file_reads_as_empty(tmp_path):
    assert LogTail(tmp_path / "nothing.jsonl").read_new() == []


def _writer(path: str, writer_id: int, count: int) -> None:
    log = ResultLog(path)
    for i in range(count):
        log.append({"writer": writer_id, "i": i, "pad": "x" * (i % 50) * 100})


def test_concurrent_writers_lose_and_interleave_nothing(tmp_path):
    path = tmp_path / "result.jsonl"
    writers, count = 4, 300
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(path), w, count)) for w in range(writers)]
    tail = LogTail(path)
    seen = []
    for p in procs:
        p.start()
    while any(p.is_alive() for p in procs):
        seen += tail.read_new()  # read while they write: never a partial line
    for p in procs:
        p.join()
        assert p.exitcode == 0
    seen += tail.read_new()
    assert tail.bad_lines == 0
    for w in range(writers):
        assert [e["i"] for e in seen if e["writer"] == w] == list(range(count))
    assert len(read_events(path)) == writers * count
    for line in path.read_bytes().splitlines():
        json.loads(line)


def test_numpy_values_are_serialised(tmp_path):
    import numpy as np

    path = tmp_path / "result.jsonl"
    ResultLog(path).append({"loss": np.float32(0.5), "step": np.int64(3), "arr": np.arange(2)})
    (event,) = read_events(path)
    assert event == {"loss": 0.5, "step": 3, "arr": [0, 1]}


def test_threads_sharing_one_log_do_not_interleave(tmp_path):
    """The worker's heartbeat thread and its main thread append through one ResultLog."""
    path = tmp_path / "result.jsonl"
    log = ResultLog(path)
    threads = [threading.Thread(target=lambda w=w: [log.append({"w": w, "i": i, "pad": "y" * 5000})
                                                   for i in range(200)]) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = read_events(path)
    assert len(events) == 800
    for w in range(4):
        assert [e["i"] for e in events if e["w"] == w] == list(range(200))
