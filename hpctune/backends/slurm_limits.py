"""Cluster citizenship: the limits Slurm imposes on us, and a bound on how often we call it.

``ClusterLimits.read(commands)`` runs at most two commands at start-up:

* ``scontrol show config``: ``MaxArraySize`` (an array's task indices must stay below it, so
  one array holds at most that many trials) and ``MaxJobCount`` (the whole cluster's queue);
* ``sacctmgr -n -P show assoc user=$USER format=MaxSubmitJobs,MaxJobs``, only when
  accounting is enabled: the user's limits on queued and running jobs (each array task
  counts as one job).

Failures are tolerated: a limit that cannot be read is ``None`` (unknown, not enforced).

``RateLimitedCommands`` is a ``SlurmCommands`` that waits for a token before every call:
at most ``DEFAULT_MAX_CALLS_PER_MINUTE`` (120) Slurm commands per minute, bursts of up to
``DEFAULT_BURST`` (20), whatever the number of trials. The driver's own policy keeps it
far below that (one squeue per poll, one sbatch per batch, one scancel per batch of stops);
the limiter is the guarantee. ``$HPCTUNE_MAX_SLURM_CALLS_PER_MIN`` changes the rate.
The calls that act come first: the driver defers a poll (``routine_allowed``) rather than
take one of the last ``ACTION_RESERVE`` tokens, so a stop or a resubmission never waits
behind polls.
"""

from __future__ import annotations

import getpass
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from hpctune.backends.slurm_commands import SlurmCommands, sacctmgr_args, show_args
from hpctune.errors import ConfigError, HpctuneError

DEFAULT_MAX_CALLS_PER_MINUTE = 120
DEFAULT_BURST = 20
RATE_ENV = "HPCTUNE_MAX_SLURM_CALLS_PER_MIN"
#: tokens a routine call (the driver's squeue poll) leaves in the bucket for the calls that
#: act (sbatch, scancel): polls alone may spend the whole rate, and a stop or a resubmission
#: would then wait behind them
ACTION_RESERVE = 4


@dataclass(frozen=True)
class ClusterLimits:
    """Limits that bound how hpctune submits; ``None`` means unknown (not enforced)."""

    max_array_size: int | None = None
    max_job_count: int | None = None
    max_submit_jobs: int | None = None
    max_jobs: int | None = None
    accounting: bool = False

    @classmethod
    def read(cls, commands: SlurmCommands, user: str | None = None) -> ClusterLimits:
        """Read the limits through ``commands`` (two calls at most; errors give ``None``s)."""
        config = _scontrol_config(commands)
        accounting = config.get("AccountingStorageType", "none").split("/")[-1] not in ("none", "")
        submit, running = _assoc_limits(commands, user or getpass.getuser()) if accounting else (None, None)
        return cls(
            max_array_size=_int(config.get("MaxArraySize")),
            max_job_count=_int(config.get("MaxJobCount")),
            max_submit_jobs=submit, max_jobs=running, accounting=accounting,
        )

    def array_chunk(self, configured: int | None, count: int) -> int:
        """How many trials go into one array: ``count``, capped by the configured
        ``SlurmConfig.max_array_size``, MaxArraySize and MaxSubmitJobs."""
        caps = [c for c in (configured, self.max_array_size, self.max_submit_jobs) if c]
        return max(1, min([count, *caps]))

    def submit_room(self, queued: int) -> int | None:
        """How many more jobs (array tasks) may be queued now that ``queued`` are; None: no limit."""
        caps = [c for c in (self.max_submit_jobs, self.max_job_count) if c]
        return max(0, min(caps) - queued) if caps else None

    def describe(self) -> str:
        parts = [f"MaxArraySize={self.max_array_size or '?'}", f"MaxJobCount={self.max_job_count or '?'}"]
        if self.accounting:
            parts += [f"MaxSubmitJobs={self.max_submit_jobs or 'none'}", f"MaxJobs={self.max_jobs or 'none'}"]
        return ", ".join(parts)


def _scontrol_config(commands: SlurmCommands) -> dict[str, str]:
    try:
        proc = commands.run(show_args("config"), check=False)
    except HpctuneError:
        return {}
    return parse_config(proc.stdout) if proc.returncode == 0 else {}


def parse_config(text: str) -> dict[str, str]:
    """``Key = Value`` lines of ``scontrol show config``."""
    found = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            found[key.strip()] = value.strip()
    return found


def _assoc_limits(commands: SlurmCommands, user: str) -> tuple[int | None, int | None]:
    """(MaxSubmitJobs, MaxJobs): the smallest over the user's associations; None when unset."""
    try:
        proc = commands.run(sacctmgr_args(user, "MaxSubmitJobs,MaxJobs"), check=False)
    except HpctuneError:
        return None, None
    if proc.returncode != 0:
        return None, None
    return parse_assoc(proc.stdout)


def parse_assoc(text: str) -> tuple[int | None, int | None]:
    """Parse ``MaxSubmitJobs|MaxJobs`` rows; the tightest limit of each column wins."""
    submit: list[int] = []
    running: list[int] = []
    for line in text.splitlines():
        cells = line.strip().split("|")
        if len(cells) >= 2:
            submit += [v for v in [_int(cells[0])] if v]
            running += [v for v in [_int(cells[1])] if v]
    return (min(submit) if submit else None), (min(running) if running else None)


def _int(value: str | None) -> int | None:
    try:
        return int(str(value).split()[0])
    except (TypeError, ValueError, IndexError):
        return None


class RateLimiter:
    """A token bucket: ``acquire()`` returns at once while tokens last, else waits for one."""

    def __init__(self, max_calls_per_minute: float = DEFAULT_MAX_CALLS_PER_MINUTE,
                 burst: int = DEFAULT_BURST, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if max_calls_per_minute <= 0 or burst < 1:
            raise ConfigError(f"The Slurm call rate is {max_calls_per_minute}/min with bursts of "
                              f"{burst}, but both must be positive (e.g. 120/min, burst 20).")
        self.rate_per_s = max_calls_per_minute / 60.0
        self.burst = burst
        self.clock, self.sleep = clock, sleep
        self.tokens = float(burst)
        self.updated = clock()
        self.waited_s = 0.0

    def acquire(self) -> float:
        """Take one token, sleeping until one is available; returns the seconds waited."""
        self._refill()
        wait = 0.0
        if self.tokens < 1.0:
            wait = (1.0 - self.tokens) / self.rate_per_s
            self.sleep(wait)
            self.waited_s += wait
            self._refill()
        self.tokens = max(0.0, self.tokens - 1.0)
        return wait

    def routine_allowed(self) -> bool:
        """May a routine call (a poll that can wait) take a token now? Only while
        ``ACTION_RESERVE`` tokens would be left for sbatch and scancel."""
        self._refill()
        return self.tokens >= 1.0 + min(ACTION_RESERVE, self.burst - 1)

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate_per_s)
        self.updated = now


def default_rate() -> float:
    """Calls per minute: ``$HPCTUNE_MAX_SLURM_CALLS_PER_MIN`` or the documented default."""
    raw = os.environ.get(RATE_ENV)
    if not raw:
        return DEFAULT_MAX_CALLS_PER_MINUTE
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"${RATE_ENV} is {raw!r}, but must be a number of calls per minute.") from None


class RateLimitedCommands(SlurmCommands):
    """``SlurmCommands`` whose every call (retries included) first takes a limiter token."""

    def __init__(self, timeout_s: float = 60.0, retries: int = 2,
                 limiter: RateLimiter | None = None):
        super().__init__(timeout_s=timeout_s, retries=retries)
        self.limiter = limiter or shared_limiter()

    def _call(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        self.limiter.acquire()
        return super()._call(args)


_shared_limiter: RateLimiter | None = None
_shared_commands: RateLimitedCommands | None = None


def shared_limiter() -> RateLimiter:
    """This process's one rate limit: every ``RateLimitedCommands`` of the process shares it."""
    global _shared_limiter
    if _shared_limiter is None:
        _shared_limiter = RateLimiter(default_rate())
    return _shared_limiter


def shared_commands() -> RateLimitedCommands:
    """The ``SlurmCommands`` of the CLI and the worker (one per process, under the shared limit).

    A driver's ``SlurmBackend`` has its own instance under the same limit, so that the
    commands of each experiment are counted separately."""
    global _shared_commands
    if _shared_commands is None:
        _shared_commands = RateLimitedCommands()
    return _shared_commands
