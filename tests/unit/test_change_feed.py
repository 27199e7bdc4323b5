"""The change feed (which logs grew), kept-open log tails, and the Slurm poll cadence: what keeps
the driver's load on the filesystem and on slurmctld independent of the number of trials."""

import os

from hpctune.backends.base import JobReport
from hpctune.backends.slurm import QUICK_POLL_S, SlurmBackend
from hpctune.config import SlurmConfig
from hpctune.controller.events import Reading
from hpctune.storage import changes
from hpctune.storage.changes import CHANGES_DIR, ChangeBell, ChangeFeed, create_feed, shard_name
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.result_log import LogTail, ResultLog
from tests.unit.fake_backend import FakeBackend
from tests.unit.test_controller import make_rig, tid


def test_each_append_names_its_trial_once_in_the_feed(tmp_path):
    exp = ExperimentDir(tmp_path / "exp")
    exp.create()
    create_feed(exp.root)
    feed = ChangeFeed(exp.root)
    assert feed.take() == set()
    for trial_id in ("t_1", "t_2"):
        exp.trial_dir(trial_id).mkdir()
    log = exp.result_log("t_1")
    log.append({"a": 1})
    log.append_many([{"a": 2}, {"a": 3}])
    exp.result_log("t_2").append({"a": 1})
    assert feed.take() == {"t_1", "t_2"}
    assert feed.take() == set()  # taken once
    log.append({"a": 4})
    assert feed.take() == {"t_1"}
    feed.close()


def test_a_feed_that_does_not_exist_is_no_error(tmp_path):
    """An experiment written before the feed existed: the worker's ring is silent, the driver
    reads every submitted log at its polls."""
    (tmp_path / "t").mkdir()
    log = ResultLog(tmp_path / "t" / "result.jsonl", ChangeBell(tmp_path, "t"))
    log.append({"a": 1})
    log.append({"a": 2})
    assert ChangeFeed(tmp_path).take() == set()
    assert len(LogTail(log.path).read_new()) == 2


def test_the_driver_empties_a_shard_in_place_and_loses_no_ring(tmp_path, monkeypatch):
    monkeypatch.setattr(changes, "COMPACT_BYTES", 64)
    create_feed(tmp_path)
    feed = ChangeFeed(tmp_path)
    bell = ChangeBell(tmp_path, "trial_00001")  # kept open across the compaction
    shard = tmp_path / CHANGES_DIR / shard_name("trial_00001")
    for _ in range(10):
        bell.ring()
    assert feed.take() == {"trial_00001"}
    assert shard.stat().st_size == 0  # emptied, not replaced: the writer's descriptor still counts
    bell.ring()
    assert shard.stat().st_size == len("trial_00001\n")
    assert feed.take() == {"trial_00001"}


def test_a_partial_ring_waits_for_its_newline(tmp_path):
    create_feed(tmp_path)
    feed = ChangeFeed(tmp_path)
    shard = tmp_path / CHANGES_DIR / shard_name("t_7")
    with open(shard, "ab") as f:
        f.write(b"t_")
    assert feed.take() == set()
    with open(shard, "ab") as f:
        f.write(b"7\n")
    assert feed.take() == {"t_7"}


def test_shards_are_private_and_spread_by_id(tmp_path):
    create_feed(tmp_path)
    names = os.listdir(tmp_path / CHANGES_DIR)
    assert len(names) == changes.SHARDS
    assert all((tmp_path / CHANGES_DIR / n).stat().st_mode & 0o077 == 0 for n in names)
    assert len({shard_name(f"trial_{i:05d}") for i in range(200)}) == changes.SHARDS


def test_a_kept_open_tail_reads_what_follows_without_reopening(tmp_path):
    path = tmp_path / "result.jsonl"
    tail = LogTail(path, keep_open=True)
    assert tail.read_new() == []  # no log yet
    log = ResultLog(path)
    log.append({"a": 1})
    assert tail.read_new() == [{"a": 1}]
    fd = tail._file.fileno()
    log.append_many([{"a": 2}, {"a": 3}])
    assert tail.read_new() == [{"a": 2}, {"a": 3}]
    assert tail._file.fileno() == fd
    tail.close()
    log.append({"a": 4})
    assert tail.read_new() == [{"a": 4}]  # reopened where it was


def test_a_kept_open_tail_reads_a_log_longer_than_one_piece(tmp_path):
    path = tmp_path / "result.jsonl"
    events = [{"i": i, "pad": "x" * 1000} for i in range(3000)]  # about 3 MB
    ResultLog(path).append_many(events)
    assert LogTail(path, keep_open=True).read_new() == events


def test_young_events_are_read_again_without_a_new_ring(tmp_path):
    """An event younger than the settle horizon waits a step; its log is read again in the
    next step although nothing rang for it."""
    rig = make_rig(tmp_path, space={"x": 1},
                   backend=FakeBackend(ExperimentDir(tmp_path / "exp"), poll_interval_s=60.0))
    rig.step()
    rig.job(0).start()
    now = [0.0]  # the driver's wall clock stands before the events: they are too young
    rig.ctl.wall_clock = lambda: now[0]
    rig.step()
    assert rig.trial(0).started_at is None
    now[0] = 2e9
    rig.step()  # no ring in between
    assert rig.trial(0).started_at is not None


def test_between_polls_only_named_logs_are_read(tmp_path):
    rig = make_rig(tmp_path, space={"x": 1}, num_samples=3,
                   backend=FakeBackend(ExperimentDir(tmp_path / "exp"), poll_interval_s=60.0))
    rig.step()
    for i in range(3):
        rig.job(i).start()
    rig.ctl.changes.take()  # rings lost: nobody is named
    rig.job(1).report(loss=1.0)
    read = []
    for trial_id, tail in rig.ctl.table.tails.items():
        peek = tail.peek
        tail.peek = lambda *a, peek=peek, trial_id=trial_id: read.append(trial_id) or peek(*a)
    rig.ctl.table.mark_changed(rig.ctl.changes.take())
    from hpctune.controller.events import read_new_events
    read_new_events(rig.ctl.table, rig.ctl.enactor, Reading.CHANGED, lambda: 2e9)
    assert read == [tid(1)]


class _Squeue:
    """Answers ``job_states`` with what the test sets; counts the calls."""

    def __init__(self):
        self.states, self.calls, self.counts = {}, 0, {}

    def job_states(self, **_):
        self.calls += 1
        return {job: JobReport(state) for job, state in self.states.items()}


def test_polls_back_off_to_the_steady_interval_and_come_back_after_a_change(tmp_path):
    squeue = _Squeue()
    backend = SlurmBackend(tmp_path / "exp", SlurmConfig(), commands=squeue)
    assert backend.steady_poll_s == 30.0
    assert backend.poll_interval_s == QUICK_POLL_S
    squeue.states = {"1_0": "RUNNING"}
    backend.poll()  # a change: soon again
    waits = []
    for _ in range(6):
        backend.poll()  # nothing new
        waits.append(backend.poll_interval_s)
    assert waits == [4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    squeue.states = {}  # the job left the queue
    backend.poll()
    assert backend.poll_interval_s == QUICK_POLL_S
    backend.poll()
    backend.cancel([])
    assert backend.poll_interval_s == QUICK_POLL_S


def test_a_steady_interval_below_the_quick_one_is_kept(tmp_path):
    backend = SlurmBackend(tmp_path / "exp", SlurmConfig(poll_interval_s=1.0), commands=_Squeue())
    backend.poll()
    backend.poll()
    assert backend.poll_interval_s == 1.0


def test_a_poll_does_not_read_the_logs_of_jobs_still_queued(tmp_path):
    """A queued job has written nothing; a job that started rang the feed."""
    rig = make_rig(tmp_path, space={"x": 1}, num_samples=2,
                   backend=FakeBackend(ExperimentDir(tmp_path / "exp"), poll_interval_s=0.0))
    rig.step()  # launched and polled: both queued
    rig.job(1).start()
    rig.ctl.changes.take()  # its ring lost: the poll still reads it (Slurm says RUNNING)
    read = []
    for trial_id, tail in rig.ctl.table.tails.items():
        peek = tail.peek
        tail.peek = lambda *a, peek=peek, trial_id=trial_id: read.append(trial_id) or peek(*a)
    rig.step()  # a poll: job 0 is still queued
    rig.step()
    assert tid(0) not in read and tid(1) in read
