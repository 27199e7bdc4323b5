"""Ray Train's ``Checkpoint``: a reference to a directory of checkpoint files.

What a trainable hands to ``report(..., checkpoint=...)`` and gets back from
``get_checkpoint()``; where checkpoints live in the experiment is ``storage.checkpoints``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


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
