"""Reading the logs in slices: a driver far behind parses a bounded part of each backlog at a
time (``LogTail.peek(max_bytes=...)``, ``events.SLICE_BYTES``), and still hands every event on
once, in the order of the times the workers wrote them, across logs and across steps."""

import json

import pytest

from hpctune.controller import events
from hpctune.controller.events import Reading, read_new_events
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.result_log import LogTail, ResultLog, read_events
from tests.unit.fake_backend import FakeBackend
from tests.unit.test_controller import make_rig, tid

CAP = 2000  # bytes: a few result lines


# -- LogTail.peek(max_bytes) ----------------------------------------------------------------------
def _held(tail: LogTail) -> int:
    """The bytes of the log the events parsed and not consumed yet come from."""
    return tail._read_to - tail.offset if tail.has_pending else 0


def _drain(tail: LogTail, cap: int) -> tuple[list[dict], list[int]]:
    """Everything the tail gives, slice by slice (each consumed whole); the bytes held after each peek."""
    seen, held = [], []
    for _ in range(1000):
        pending = tail.peek(max_bytes=cap)
        held.append(_held(tail))
        seen += [e for e, _ in pending]
        tail.consume(len(pending))
        if not tail.more_left:
            return seen, held
    raise AssertionError("the tail never reached the end of its log")


@pytest.mark.parametrize("keep_open", [True, False])
def test_a_capped_tail_reads_a_long_log_in_slices_each_event_once(tmp_path, keep_open):
    path = tmp_path / "result.jsonl"
    logged = [{"i": i, "pad": "x" * 100} for i in range(200)]  # about 22 kB
    ResultLog(path).append_many(logged)
    tail = LogTail(path, keep_open=keep_open)
    first = tail.peek(max_bytes=CAP)
    line = len(json.dumps(logged[0])) + 1
    assert 0 < len(first) <= CAP // line and tail.more_left
    again = tail.peek(max_bytes=CAP)  # nothing consumed: at most the line that crosses the cap more
    assert again[: len(first)] == first and len(again) <= len(first) + 1 and tail.more_left
    seen, held = _drain(tail, CAP)
    assert seen == logged
    assert len(held) > 5 and max(held) <= CAP + line
    assert tail.offset == path.stat().st_size and not tail.more_left


def test_a_line_longer_than_the_cap_is_read_whole(tmp_path):
    path = tmp_path / "result.jsonl"
    logged = [{"i": 0}, {"i": 1, "pad": "y" * 5 * CAP}, {"i": 2}]
    ResultLog(path).append_many(logged)
    tail = LogTail(path, keep_open=True)
    seen, _ = _drain(tail, CAP)
    assert seen == logged and tail.bad_lines == 0


def test_a_capped_tail_leaves_a_line_still_being_written(tmp_path):
    path = tmp_path / "result.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2}\n{"a": 3')
    tail = LogTail(path, keep_open=True)
    assert [e["a"] for e, _ in tail.peek(max_bytes=CAP)] == [1, 2] and not tail.more_left
    tail.consume(2)
    with open(path, "ab") as f:
        f.write(b"}\n")
    assert [e["a"] for e, _ in tail.peek(max_bytes=CAP)] == [3]


def test_a_slice_of_bad_lines_does_not_stop_the_tail(tmp_path):
    """A slice without one event (torn lines only) still moves on to what follows."""
    path = tmp_path / "result.jsonl"
    path.write_bytes(b"not json\n" * 1000 + b'{"a": 1}\n')
    tail = LogTail(path)
    seen, held = _drain(tail, 100)
    assert seen == [{"a": 1}] and tail.bad_lines == 1000 and len(held) >= 90  # in slices
    assert tail.offset == path.stat().st_size


# -- read_new_events --------------------------------------------------------------------------------
def _interleaved_rig(tmp_path, monkeypatch):
    """Three running trials whose logs interleave in time: trial 0's log many slices long, trial
    1's a few, trial 2's two results, one of them longer than a slice. Returns the rig and the (trial, iteration) of each result in the
    order written (the order of their times)."""
    monkeypatch.setattr(events, "SLICE_BYTES", CAP)
    rig = make_rig(tmp_path, {"x": 1}, num_samples=3,
                   backend=FakeBackend(ExperimentDir(tmp_path / "exp"), poll_interval_s=3600.0))
    rig.step()
    for i in range(3):
        rig.job(i).start()
    rig.step()
    written = []
    for n in range(120):
        written.append((tid(0), rig.job(0).report(loss=float(n), pad="x" * 150).iteration))
        if n % 7 == 3:
            written.append((tid(1), rig.job(1).report(loss=float(n)).iteration))
        if n in (5, 90):  # the second one a line longer than a slice
            written.append((tid(2), rig.job(2).report(loss=float(n), pad="z" * (n // 30) * CAP).iteration))
    return rig, written


def _longest_line(rig) -> int:
    return max(len(line) for t in range(3)
               for line in rig.exp.result_log_path(tid(t)).read_bytes().splitlines(keepends=True))


def _handled(rig) -> list[tuple[str, int]]:
    return [(c[1], c[2]) for c in rig.scheduler.calls if c[0] == "result"]


def _watch_held(rig) -> list[int]:
    """Bytes of each log parsed and not yet handled, after each of its reads."""
    held = []
    for tail in rig.ctl.table.tails.values():
        def peek(*args, tail=tail, peek=tail.peek, **kwargs):
            pending = peek(*args, **kwargs)
            held.append(_held(tail))
            return pending
        tail.peek = peek
    return held


def test_steps_behind_handle_every_event_once_in_time_order_slice_by_slice(tmp_path, monkeypatch):
    rig, written = _interleaved_rig(tmp_path, monkeypatch)
    held = _watch_held(rig)
    steps = 0
    while len(_handled(rig)) < len(written) and steps < 200:
        rig.step()  # no ring after the first: the logs read in part are read again all the same
        steps += 1
    assert _handled(rig) == written  # each once, none lost, in the order of their times
    assert steps > 5  # the backlog went in slices, not in one step
    assert max(held) <= CAP + _longest_line(rig)  # never more than a slice (and the line that crosses it)
    rig.step(3)
    assert _handled(rig) == written


@pytest.mark.parametrize("reading", [Reading.TO_THE_END, Reading.RESTORE])
def test_a_reading_to_the_end_reads_every_slice_in_one_call(tmp_path, monkeypatch, reading):
    rig, written = _interleaved_rig(tmp_path, monkeypatch)
    held = _watch_held(rig)
    read_new_events(rig.ctl.table, rig.ctl.enactor, reading)
    assert _handled(rig) == written
    assert max(held) <= CAP + _longest_line(rig)
    assert all(not t.has_pending and not t.more_left for t in rig.ctl.table.tails.values())


def test_young_events_of_a_log_read_in_part_wait_and_are_handled_once(tmp_path, monkeypatch):
    """A slice whose events are partly too young: they stay held, the log is read again and
    nothing is handled twice."""
    rig, written = _interleaved_rig(tmp_path, monkeypatch)
    times = sorted(e["time"] for t in range(3) for e in read_events(rig.exp.result_log_path(tid(t)))
                   if "result" in e)
    now = [times[len(times) // 3] + events.ORDER_SETTLE_S]  # a third of the results are settled
    rig.ctl.wall_clock = lambda: now[0]
    for _ in range(60):
        rig.step()
    assert _handled(rig) == written[: len(times) // 3 + 1]
    now[0] = 2e9
    for _ in range(200):
        rig.step()
    assert _handled(rig) == written
