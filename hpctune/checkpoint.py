"""Checkpoints: a directory of files, persisted into the trial directory atomically."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from hpctune.storage.secure import copy_tree_private, dir_mode_for

CHECKPOINT_PREFIX = "checkpoint_"


class Checkpoint:
    """A reference to a directory holding a checkpoint (Ray Train's ``Checkpoint``)."""

    def __init__(self, path: str | os.PathLike):
        self.path = str(Path(path).resolve())

    @classmethod
    def from_directory(cls, path: str | os.PathLike) -> Checkpoint:
        return cls(path)

    def to_directory(self, path: str | os.PathLike | None = None) -> str:
        """Copy the checkpoint's files to ``path`` (a new temporary directory by default)."""
        target = Path(path) if path is not None else Path(tempfile.mkdtemp(prefix="checkpoint-"))
        shutil.copytree(self.path, target, dirs_exist_ok=True)
        return str(target)

    @contextlib.contextmanager
    def as_directory(self) -> Iterator[str]:
        """The checkpoint as a local directory (already local on a shared filesystem)."""
        yield self.path

    def __repr__(self) -> str:
        return f"Checkpoint(path={self.path!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Checkpoint) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)


def checkpoint_dir_name(iteration: int) -> str:
    return f"{CHECKPOINT_PREFIX}{iteration:06d}"


def persist_checkpoint(source: str | os.PathLike, trial_dir: Path, iteration: int) -> Path:
    """Copy ``source`` into ``trial_dir/checkpoint_<iteration>``: temp dir, fsync, rename.

    A reader never sees a partial checkpoint: the final name appears only once every
    file is written. An existing checkpoint with the same name is replaced. The copy is
    private like the trial directory (0700/0600, or 0750/0640 when shared), whatever the
    modes of the source; the temp directory's name is unpredictable (``mkdtemp``).
    """
    final = trial_dir / checkpoint_dir_name(iteration)
    if Path(source).resolve() == final.resolve():
        return final
    tmp = Path(tempfile.mkdtemp(dir=trial_dir, prefix=f".tmp_{final.name}."))
    try:
        os.chmod(tmp, dir_mode_for(trial_dir))
        copy_tree_private(source, tmp, fsync=True)
        if final.exists():
            old = tempfile.mkdtemp(dir=trial_dir, prefix=f".old_{final.name}.")
            os.replace(final, old)  # onto the empty temp dir: the name is never missing for long
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def latest_checkpoint(trial_dir: Path) -> Path | None:
    """The newest complete checkpoint directory of a trial, if any."""
    found = sorted(p for p in trial_dir.glob(f"{CHECKPOINT_PREFIX}*") if p.is_dir())
    return found[-1] if found else None


def checkpoints_to_delete(checkpoints: list[tuple[str, float | None]], num_to_keep: int | None,
                          order: str = "max", by_score: bool = False) -> list[str]:
    """Names of checkpoints beyond ``num_to_keep``; never the latest one.

    ``checkpoints`` are (name, score) in the order they were written. Without a score
    attribute the oldest go first; with one, the worst scores go first (a checkpoint
    without a score counts as worst).
    """
    if num_to_keep is None or len(checkpoints) <= num_to_keep:
        return []
    latest = checkpoints[-1][0]
    if by_score:
        sign = 1 if order == "max" else -1
        ranked = sorted(checkpoints, key=lambda c: float("-inf") if c[1] is None else sign * c[1])
    else:
        ranked = list(checkpoints)
    excess = len(checkpoints) - num_to_keep
    doomed = [name for name, _ in ranked if name != latest]
    return doomed[:excess]


def discard_checkpoints(trial_dir: Path) -> None:
    """Remove a trial's checkpoints so that it restarts from scratch."""
    for path in trial_dir.glob(f"{CHECKPOINT_PREFIX}*"):
        shutil.rmtree(path, ignore_errors=True)
