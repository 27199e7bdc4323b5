"""What the controller needs from an execution backend."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class JobReport:
    """A job as the scheduler sees it: Slurm state, pending reason, node."""

    state: str
    reason: str = ""
    node: str = ""


class Backend(Protocol):
    """Turns trial launches into jobs and reports on them; holds no tuning policy."""

    name: str
    poll_interval_s: float
    #: False when jobs end with the driver (local processes): a restored driver relaunches them
    jobs_survive_driver: bool

    def launch(self, trial_ids: list[str], resources: dict[str, Any], throttle: int | None) -> list[str]:
        """Start one job per trial (one array on Slurm); returns job ids in trial order."""

    def submit_room(self, queued: int) -> int | None:
        """How many more jobs the scheduler accepts from this user now (None: no limit)."""

    def recorded_launches(self) -> dict[str, str]:
        """{trial_id: job id} of the newest launch of each trial that the backend itself
        recorded (a restored driver re-attaches to launches its snapshot missed)."""

    def queued(self) -> set[str]:
        """Ids of the jobs still waiting to start (asked when an experiment stops; starts nothing)."""

    def poll(self) -> dict[str, JobReport]:
        """States of every job of this backend still known to the scheduler (one query)."""

    def reconcile(self) -> None:
        """Act on what the last ``poll`` saw (the controller calls it after each poll)."""

    def poll_ready(self) -> bool:
        """May a poll go now? (False defers it: on Slurm, while it would take a command kept for
        sbatch and scancel.)"""

    def cancel(self, job_ids: list[str]) -> None:
        """Cancel jobs (one call for all)."""

    def final_states(self, job_ids: list[str]) -> dict[str, str]:
        """Best-known end state of jobs that left the queue (may be empty without accounting)."""

    def log_paths(self, job_id: str) -> tuple[str, str]:
        """(stdout, stderr) paths of a job."""

    def command_counts(self) -> dict[str, int]:
        """How many scheduler commands were issued, by command."""

    def close(self) -> None:
        """Release what the backend holds (local processes are cancelled)."""
