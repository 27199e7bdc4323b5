"""Shared helpers of the benchmark scripts: storage, peak memory, Slurm command counts."""

from __future__ import annotations

import json
import os
import resource
import tempfile
from pathlib import Path


def storage_dir(prefix: str) -> str:
    """A fresh directory on this machine's filesystem for the benchmark's experiment."""
    return tempfile.mkdtemp(prefix=f"hpctune-bench-{prefix}-")


def peak_rss_mb() -> float:
    """The driver's peak resident memory (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def slurm_command_counts(experiment_path: str | os.PathLike) -> dict[str, int]:
    """The Slurm commands the driver issued, as its state snapshot recorded them."""
    state = json.loads((Path(experiment_path) / "state.json").read_text())
    return state.get("backend_commands", {})
