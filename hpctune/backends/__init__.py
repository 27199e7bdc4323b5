"""Execution backends: Slurm (the real thing) and local processes (the embedded default)."""

from hpctune.backends.base import Backend, JobState

__all__ = ["Backend", "JobState"]
