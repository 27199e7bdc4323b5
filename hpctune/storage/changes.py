"""The change feed: which trials' result logs grew, so the driver reads only those.

Without it the driver would have to look at every running trial's log every tick: a stat and
an open per running trial per tick, which on Lustre or GPFS is load on the metadata server
that grows with the experiment. Instead each append to a result log is followed by a *ring*:
the trial's id, one line, appended to one of ``SHARDS`` small files in ``.changes/`` (which
one follows from the id, so that concurrent writers spread over them). The driver keeps the
shards open and reads what was appended since its last read (``pread``: no metadata
operation), then reads exactly the logs that were named.

A shard is cut back to empty by the driver, in place and under its ``flock`` (writers ring
under the same lock), once it has read past ``COMPACT_BYTES``: writers keep their
descriptor open, so the file is never replaced. A ring that cannot be written (an old
experiment without ``.changes/``, a full disk) is no error: the driver still reads every
submitted log at its Slurm poll, only later.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import zlib
from collections.abc import Iterable
from pathlib import Path

from hpctune.storage.secure import make_private_dir, open_private

CHANGES_DIR = ".changes"
#: files the rings are spread over (by a hash of the trial id)
SHARDS = 16
#: the driver empties a shard once it has read this far into it
COMPACT_BYTES = 256 * 1024
#: the most the driver reads of one shard at a time
_CHUNK = 1 << 20


def shard_name(trial_id: str) -> str:
    """The shard a trial rings in (stable across processes: crc32, not ``hash``)."""
    return f"{zlib.crc32(trial_id.encode()) % SHARDS:02d}"


def create_feed(root: Path) -> None:
    """Create ``.changes/`` and its shards, private like the root (the driver, at each start;
    idempotent)."""
    directory = root / CHANGES_DIR
    make_private_dir(directory)
    for index in range(SHARDS):
        os.close(open_private(directory / f"{index:02d}", os.O_WRONLY | os.O_APPEND | os.O_CREAT))


class ChangeBell:
    """A writer's side: ``ring()`` after each append to the trial's log. The shard stays open
    (one open per writer process, not per result); it is never created here."""

    def __init__(self, root: Path, trial_id: str):
        self.path = root / CHANGES_DIR / shard_name(trial_id)
        self._line = (trial_id + "\n").encode()
        self._fd: int | None = None
        self._broken = False

    def ring(self) -> None:
        """Name the trial in the feed; silent if the feed cannot take it (see the module doc)."""
        if self._broken:
            return
        try:
            if self._fd is None:
                self._fd = open_private(self.path, os.O_WRONLY | os.O_APPEND)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                os.write(self._fd, self._line)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        except OSError:
            self._broken = self._fd is None  # no feed here: stop trying; a full disk: try again
            return

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


class ChangeFeed:
    """The driver's side: ``take()`` returns the ids rung since the last call.

    Shards are opened once and read from the offset where the last read ended; a trailing
    partial line waits for the next call."""

    def __init__(self, root: Path):
        self.directory = root / CHANGES_DIR
        self._files: dict[int, io.FileIO] = {}  # closed when this feed is (or is collected)
        self._offsets = [0] * SHARDS

    def take(self) -> set[str]:
        """The trial ids named since the last call (each once)."""
        named: set[str] = set()
        for index in range(SHARDS):
            fd = self._fd(index)
            if fd is not None:
                named.update(self._read(index, fd))
        return named

    def _fd(self, index: int) -> int | None:
        shard = self._files.get(index)
        if shard is None:
            try:
                fd = open_private(self.directory / f"{index:02d}", os.O_RDWR)
            except OSError:
                return None  # no feed (an old experiment): the Slurm poll reads every log
            shard = self._files[index] = io.FileIO(fd, "r+")
        return shard.fileno()

    def _read(self, index: int, fd: int) -> Iterable[str]:
        offset = self._offsets[index]
        data = _read_from(fd, offset)
        end = data.rfind(b"\n") + 1
        self._offsets[index] = offset + end
        if self._offsets[index] >= COMPACT_BYTES:
            data = data[:end] + self._compact(index, fd)
            end = len(data)
        return _ids(data[:end])

    def _compact(self, index: int, fd: int) -> bytes:
        """Empty the shard under its lock; returns the whole lines rung since the last read
        (they are taken now, not lost). A partial line cannot be there: rings are written
        whole under the same lock."""
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            rest = _read_from(fd, self._offsets[index])
            os.ftruncate(fd, 0)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
        self._offsets[index] = 0
        return rest

    def close(self) -> None:
        for shard in self._files.values():
            with contextlib.suppress(OSError):
                shard.close()
        self._files.clear()


def _read_from(fd: int, offset: int) -> bytes:
    chunks = []
    while True:
        chunk = os.pread(fd, _CHUNK, offset)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        offset += len(chunk)


def _ids(data: bytes) -> Iterable[str]:
    for line in data.split(b"\n"):
        if line:
            yield line.decode(errors="replace")
