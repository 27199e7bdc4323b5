"""Writes that a reader on the shared filesystem never sees half-done (tmp + fsync + rename).

The temporary file has an unpredictable name and is created with O_EXCL|O_NOFOLLOW, so a
link planted at a guessable name cannot redirect the write; it gets the directory's
policy mode (0600, or 0640 in an experiment shared with the group: see ``secure``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hpctune.errors import StorageFullError
from hpctune.storage.secure import file_mode_for, read_regular_bytes

#: a write failed because the filesystem is full (or over quota) or mounted read-only
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def is_storage_full(exc: BaseException) -> bool:
    """True for an error that says the filesystem is full, over quota or read-only."""
    return isinstance(exc, StorageFullError) or (
        isinstance(exc, OSError) and exc.errno in FULL_ERRNOS)


def storage_full_error(path: str | Path, exc: OSError) -> StorageFullError:
    """The one clear error for a full or read-only filesystem, naming the experiment to resume."""
    if isinstance(exc, StorageFullError):
        return exc
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    return StorageFullError(str(path), str(experiment_of(path)), reason, exc.errno)


def experiment_of(path: str | Path) -> Path:
    """The experiment directory a file of it belongs to (``<exp>/x``, ``<exp>/jobs/x``,
    ``<exp>/trials/<id>/x``); the file's directory for any other path."""
    path = Path(path).absolute()
    for levels in (1, 2, 3):
        parents = path.parents
        if (len(parents) > levels and parents[levels - 1].name in ("trials", "jobs")
                and (parents[levels] / "trials").is_dir()):
            return parents[levels]
    return path.parent


@contextlib.contextmanager
def full_storage_is_clear(path: str | Path) -> Iterator[None]:
    """Turn ENOSPC/EDQUOT/EROFS raised inside the block into a ``StorageFullError`` for ``path``."""
    try:
        yield
    except OSError as exc:
        if is_storage_full(exc):
            raise storage_full_error(path, exc) from exc
        raise


def write_bytes_atomic(path: str | Path, data: bytes, fsync: bool = True, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never a mix
    (``mode``: the file's, when the caller knows its directory's policy already).

    A full or read-only filesystem raises ``StorageFullError`` and leaves the old file and no
    temporary file behind."""
    path = Path(path)
    with full_storage_is_clear(path), replacing(path, fsync, mode) as (fd, _):
        write_all(fd, data)


@contextlib.contextmanager
def replacing(path: str | Path, fsync: bool = True, mode: int | None = None) -> Iterator[tuple[int, Path]]:
    """A new temporary file beside ``path``, as (descriptor, name), for the block to write in full.

    When the block ends the file is synced (``fsync``) and renamed over ``path`` in one step; if
    the block or the sync fails it is removed and ``path`` stays as it was. The name is for a
    writer that can only open files by name (h5py); the file has the directory's policy mode
    (``mode``: that mode, already known: no stat of the directory)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        try:
            os.fchmod(fd, file_mode_for(path.parent) if mode is None else mode)
            yield fd, Path(tmp)
            if fsync:
                os.fsync(fd)  # a full disk shows here at the latest, before the rename
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class OpenFd:
    """A descriptor kept open (a driver's tail of a result log, a logger's file), closed by
    ``close()`` or when collected: ``io.FileIO`` would ``fstat`` it when wrapping it, one
    metadata operation per file on a parallel filesystem."""

    __slots__ = ("fd",)

    def __init__(self, fd: int):
        self.fd = fd

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    def __del__(self) -> None:
        with contextlib.suppress(OSError):
            self.close()


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd``: ``os.write`` may write fewer (a full disk, a
    signal), and a write that makes no progress raises ENOSPC instead of looping forever."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


def write_json_atomic(path: str | Path, obj: Any, fsync: bool = True, indent: int | None = 1,
                      mode: int | None = None) -> None:
    """``obj`` as JSON, written with ``write_bytes_atomic``."""
    write_bytes_atomic(path, json.dumps(obj, indent=indent, default=str).encode(), fsync=fsync, mode=mode)


def rewrite_in_place(path: str | Path, data: bytes) -> None:
    """Last resort on a full filesystem: overwrite an existing small file in place (its own
    blocks are reused, no temporary file is needed). A reader may see it half-written for a
    moment, so this is only for a status line that would otherwise stay wrong."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW)
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_json(path: str | Path, default: Any = None) -> Any:
    """Read a JSON file; ``default`` when it does not exist. Only a regular file of bounded size
    is read, never through a link at ``path`` (``secure.read_regular_bytes``: UnsafeFileError)."""
    try:
        return json.loads(read_regular_bytes(path))
    except FileNotFoundError:
        return default
