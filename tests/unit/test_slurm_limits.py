"""Cluster limits from scontrol/sacctmgr output, array chunking, and the Slurm call rate limiter."""

import subprocess

import pytest

from hpctune.backends.slurm_limits import (
    ClusterLimits,
    RateLimitedCommands,
    RateLimiter,
    parse_assoc,
)
from hpctune.errors import ConfigError, SlurmCommandError

CONFIG = """Configuration data as of 2024-01-01T00:00:00
AccountingStorageType   = accounting_storage/slurmdbd
MaxArraySize            = 10
MaxJobCount             = 500
"""


class FakeCommands:
    """Answers like SlurmCommands.run from canned outputs; records the calls."""

    def __init__(self, outputs):
        self.outputs = outputs
        self.calls = []

    def run(self, args, check=True):
        self.calls.append(args)
        out = self.outputs.get(args[0])
        if isinstance(out, Exception):
            raise out
        if out is None:
            return subprocess.CompletedProcess(args, 1, "", "failed")
        return subprocess.CompletedProcess(args, 0, out, "")


def test_reads_array_size_job_count_and_user_limits():
    commands = FakeCommands({"scontrol": CONFIG, "sacctmgr": "|\n100|20\n50|\n"})
    limits = ClusterLimits.read(commands, user="alice")
    assert limits == ClusterLimits(max_array_size=10, max_job_count=500, max_submit_jobs=50,
                                   max_jobs=20, accounting=True)
    assert commands.calls == [
        ["scontrol", "show", "config"],
        ["sacctmgr", "-n", "-P", "show", "assoc", "user=alice", "format=MaxSubmitJobs,MaxJobs"]]
    assert limits.describe() == "MaxArraySize=10, MaxJobCount=500, MaxSubmitJobs=50, MaxJobs=20"


def test_failures_are_tolerated_and_accounting_off_skips_sacctmgr():
    no_acct = CONFIG.replace("slurmdbd", "none")
    commands = FakeCommands({"scontrol": no_acct})
    limits = ClusterLimits.read(commands, user="bob")
    assert limits.max_array_size == 10 and limits.max_submit_jobs is None
    assert [c[0] for c in commands.calls] == ["scontrol"]
    missing = FakeCommands({"scontrol": SlurmCommandError(["scontrol"], 127, "", "not found")})
    assert ClusterLimits.read(missing, user="bob") == ClusterLimits()
    assert ClusterLimits.read(FakeCommands({}), user="bob") == ClusterLimits()


def test_array_chunks_and_submit_room():
    limits = ClusterLimits(max_array_size=10, max_job_count=500, max_submit_jobs=8)
    assert limits.array_chunk(None, 100) == 8
    assert limits.array_chunk(3, 100) == 3
    assert limits.array_chunk(None, 2) == 2
    assert ClusterLimits(max_array_size=10).array_chunk(None, 25) == 10
    assert limits.submit_room(5) == 3 and limits.submit_room(20) == 0
    assert ClusterLimits().submit_room(10**6) is None
    assert ClusterLimits().array_chunk(None, 7) == 7


def test_parse_assoc_ignores_empty_cells():
    assert parse_assoc("|\n") == (None, None)
    assert parse_assoc("30|5\n10|\n") == (10, 5)


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_rate_limiter_allows_bursts_then_the_rate():
    clock = FakeClock()
    limiter = RateLimiter(max_calls_per_minute=60, burst=3, clock=clock, sleep=clock.sleep)
    assert [limiter.acquire() for _ in range(3)] == [0, 0, 0]
    assert limiter.acquire() == pytest.approx(1.0)
    clock.now += 10
    assert limiter.acquire() == 0
    calls_in_a_minute = 0
    start = clock.now
    while clock.now - start < 60:
        limiter.acquire()
        calls_in_a_minute += 1
    # the 2 tokens left of the refilled burst, then one a second: no more, and no fewer
    assert calls_in_a_minute == 2 + 60 and clock.now - start == pytest.approx(60.0)


def test_rate_limiter_rejects_nonsense():
    with pytest.raises(ConfigError):
        RateLimiter(max_calls_per_minute=0)


def test_rate_limited_commands_take_a_token_per_call(monkeypatch):
    clock = FakeClock()
    commands = RateLimitedCommands(limiter=RateLimiter(60, 1, clock=clock, sleep=clock.sleep))
    monkeypatch.setattr(subprocess, "run", lambda args, **kw: subprocess.CompletedProcess(args, 0, "", ""))
    for _ in range(3):
        commands.run(["squeue"])
    assert commands.counts["squeue"] == 3
    assert clock.slept == [pytest.approx(1.0), pytest.approx(1.0)]


def test_rate_from_environment(monkeypatch):
    from hpctune.backends.slurm_limits import default_rate

    monkeypatch.setenv("HPCTUNE_MAX_SLURM_CALLS_PER_MIN", "30")
    assert default_rate() == 30
    monkeypatch.setenv("HPCTUNE_MAX_SLURM_CALLS_PER_MIN", "fast")
    with pytest.raises(ConfigError):
        default_rate()


def test_routine_calls_leave_tokens_for_the_calls_that_act(tmp_path):
    from hpctune.backends.slurm import SlurmBackend

    clock = FakeClock()
    limiter = RateLimiter(max_calls_per_minute=60, burst=10, clock=clock, sleep=clock.sleep)
    backend = SlurmBackend(tmp_path / "exp", commands=RateLimitedCommands(limiter=limiter))
    for _ in range(5):  # of a burst of 10, polls leave 4 tokens for the calls that act
        assert backend.poll_ready()
        limiter.acquire()
    assert backend.poll_ready()  # one more poll: 4 tokens stay
    limiter.acquire()
    assert not backend.poll_ready()
    assert [limiter.acquire() for _ in range(4)] == [0, 0, 0, 0]  # sbatch/scancel
    clock.now += 4.5
    assert not backend.poll_ready()
    clock.now += 0.5
    assert backend.poll_ready()
    assert RateLimiter(60, burst=1, clock=clock, sleep=clock.sleep).routine_allowed()  # no room to reserve
