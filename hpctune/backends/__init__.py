"""Execution backends: Slurm (the real thing) and local processes (the embedded default)."""

from hpctune.backends.base import Backend, JobReport

__all__ = ["Backend", "JobReport"]
