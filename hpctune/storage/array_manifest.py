"""The array manifest: which trial each task of a Slurm array runs (``jobs/array_<uid>.trials``).

The Slurm backend writes it before its ``sbatch``; each array task reads the line its
``SLURM_ARRAY_TASK_ID`` picks (``python -m hpctune.worker EXP_DIR --manifest FILE``), and a
restored driver reads it whole to re-attach to the jobs it submitted. Version 2 starts with a
header line naming its version; version 1 (hpctune before manifests had one) is the trial
ids alone, one a line, and is still read: an array queued before an upgrade starts.
"""

from __future__ import annotations

from pathlib import Path

from hpctune.errors import ExperimentStateError
from hpctune.storage.atomic import write_bytes_atomic
from hpctune.storage.events import check_version

#: the version this hpctune writes
ARRAY_MANIFEST_VERSION = 2
_HEADER = "#hpctune-array-manifest v"


def write_array_manifest(path: Path, trial_ids: list[str]) -> None:
    """Write the manifest of an array whose task ``i`` runs ``trial_ids[i]``."""
    lines = [f"{_HEADER}{ARRAY_MANIFEST_VERSION}", *trial_ids]
    write_bytes_atomic(path, ("\n".join(lines) + "\n").encode(), fsync=False)


def read_array_manifest(path: Path) -> list[str]:
    """The trial ids of an array, task 0 first (either version); a manifest of a newer
    hpctune raises SchemaError."""
    lines = path.read_text().split("\n")
    if lines and lines[0].startswith(_HEADER):
        version = lines[0][len(_HEADER):]
        if not version.isdigit():
            raise ExperimentStateError(f"{path}: unreadable header {lines[0]!r}; submit again.")
        check_version(int(version), ARRAY_MANIFEST_VERSION, path, "array manifest version")
        lines = lines[1:]
    return [line.strip() for line in lines if line.strip()]


def trial_of_task(path: Path, task_id: str | int) -> str:
    """The trial that array task ``task_id`` runs (ExperimentStateError when it has none)."""
    trials = read_array_manifest(path)
    index = int(task_id)
    if not 0 <= index < len(trials):
        raise ExperimentStateError(f"{path} lists {len(trials)} trials: array task {task_id} has "
                                   "none. The manifest was changed after submission; submit again.")
    return trials[index]
