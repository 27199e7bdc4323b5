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
    """The driver's peak resident memory in MiB: this process image's high-water mark.

    ``/proc/self/status``'s ``VmHWM`` belongs to the address space, which ``exec`` replaces;
    ``ru_maxrss`` survives ``exec``, so a benchmark started from a large parent (pytest after
    the rest of the suite: 602 MB) would report the parent's size at ``fork`` instead of its own.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def slurm_command_counts(experiment_path: str | os.PathLike) -> dict[str, int]:
    """The Slurm commands the driver issued, as its state snapshot recorded them."""
    state = json.loads((Path(experiment_path) / "state.json").read_text())
    return state.get("backend_commands", {})
