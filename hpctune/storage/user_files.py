"""Per-trial files for people (result.json, progress.csv, TensorBoard events): how the
driver's loggers (``hpctune.tune.logger``) write and read them back.

Every file is created private (the directory's policy mode, no symlink followed) and either
appended to or replaced atomically, so a reader never sees half a rewrite.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
from collections import OrderedDict
from pathlib import Path

from hpctune.storage.atomic import OpenFd, write_all, write_bytes_atomic
from hpctune.storage.secure import file_mode_for, open_private

_APPEND = os.O_WRONLY | os.O_CREAT | os.O_APPEND
_TAIL_BLOCK = 1 << 16


def append_bytes(path: str | Path, data: bytes) -> None:
    """Append ``data`` to ``path`` (created private if missing) in as few writes as it takes."""
    fd = open_private(path, _APPEND)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)


class OpenAppends:
    """Files the driver appends to again and again (a logger's file of each running trial),
    kept open between appends: an open (and the stat of its directory) per batch of results
    would be metadata load that grows with the running trials. At most ``max_open`` stay open
    (the least recently used are closed; default: a quarter of the process's file limit).
    Every trial directory has the experiment's mode, so the mode of a new file is looked up
    once. Nothing open survives pickling."""

    def __init__(self, max_open: int | None = None):
        self.max_open = max_open
        self._files: OrderedDict[Path, OpenFd] = OrderedDict()  # closed when collected, too
        self._mode: int | None = None

    def append(self, path: Path, data: bytes) -> None:
        file = self._files.pop(path, None)
        if file is None:
            file = OpenFd(self._open(path))  # no FileIO: its fstat is a metadata operation
        self._files[path] = file  # the most recently used last
        write_all(file.fileno(), data)

    def _open(self, path: Path) -> int:
        limit = self.max_open or max(16, resource.getrlimit(resource.RLIMIT_NOFILE)[0] // 4)
        while len(self._files) >= limit:
            self._close(next(iter(self._files)))
        if self._mode is None:
            self._mode = file_mode_for(path.parent)
        try:
            return open_private(path, _APPEND, self._mode)
        except OSError as exc:
            if exc.errno not in (errno.EMFILE, errno.ENFILE) or not self._files:
                raise
            self.close_all()  # out of descriptors: give back ours and try once more
            return open_private(path, _APPEND, self._mode)

    def close(self, path: Path) -> None:
        """Close ``path`` if it is open (the trial ended, or the file is about to be replaced)."""
        if path in self._files:
            self._close(path)

    def close_all(self) -> None:
        for path in list(self._files):
            self._close(path)

    def _close(self, path: Path) -> None:
        with contextlib.suppress(OSError):
            self._files.pop(path).close()

    def __getstate__(self) -> dict:
        return {"max_open": self.max_open}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state.get("max_open"))


def replace_bytes(path: str | Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (readers see the old file or the new one)."""
    write_bytes_atomic(path, data, fsync=False)


def read_text(path: str | Path) -> str | None:
    """The whole file as text; None if it does not exist."""
    try:
        fd = open_private(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    with open(fd, encoding="utf-8", newline="") as f:
        return f.read()


def first_and_last_line(path: str | Path) -> tuple[str, str] | None:
    """The first and the last complete line of ``path`` (without newlines), read from both
    ends without reading the middle; None if the file is missing or holds no complete line."""
    try:
        fd = open_private(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    with open(fd, "rb") as f:
        first = f.readline()
        if not first.endswith(b"\n"):
            return None
        size = f.seek(0, os.SEEK_END)
        tail, start = b"", size
        while start > 0 and tail.count(b"\n") < 2:
            start = max(0, start - _TAIL_BLOCK)
            f.seek(start)
            tail = f.read(size - start)
        complete = tail[: tail.rfind(b"\n")]  # a line still being written is not a line yet
        last = complete.rsplit(b"\n", 1)[-1]
        return first[:-1].decode("utf-8", "replace"), last.decode("utf-8", "replace")
