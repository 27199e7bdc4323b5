"""The per-trial result log: append-only JSON lines under a file lock, tailed by byte offset.

Writers (the worker) append one complete line per event while holding an exclusive
``flock`` on the log file. Readers (the driver, the CLI) keep a byte offset and never
parse a trailing line that has no newline yet: a line is either complete or not seen.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hpctune.errors import StorageError
from hpctune.storage.atomic import OpenFd, full_storage_is_clear, write_all
from hpctune.storage.changes import ChangeBell
from hpctune.storage.events import CHECKPOINT, RESULT
from hpctune.storage.secure import open_private

#: what flock says on a filesystem without working locks (Lustre without -o flock, ...)
_NO_LOCKS = {errno.ENOSYS, errno.ENOLCK, errno.EOPNOTSUPP}


class ResultLog:
    """Appends events to ``result.jsonl``; safe with several writer processes and threads.

    The lock is ``flock`` on the log's own descriptor, kept open by the writer: the same
    kernel lock ``filelock`` takes, at 4 us per append instead of filelock's 70-80 us
    (it re-opens and re-resolves a lock file each time), which bounded how fast a trial
    could report (bench/throughput.py).
    """

    def __init__(self, path: str | Path, bell: ChangeBell | None = None):
        self.path, self.bell = Path(path), bell
        self._fd: int | None = None
        self._threads = threading.Lock()  # flock does not exclude threads sharing one fd

    def append(self, event: dict[str, Any], fsync: bool = False) -> None:
        self.append_many([event], fsync=fsync)

    def append_many(self, events: list[dict[str, Any]], fsync: bool = False) -> None:
        """Append events as complete lines; ``fsync`` for events that must survive a node crash."""
        data = encode_events(events)
        with self._locked() as fd:
            _append_lines(fd, data, fsync)
        self._ring()

    def append_first(self, event: dict[str, Any], same: Callable[[dict[str, Any]], bool],
                     since: int = 0, fsync: bool = True) -> int | None:
        """Append ``event`` unless the log, from byte ``since`` on, already holds an event for
        which ``same`` is true, checked under the lock: several writers that may report the
        same thing (the ranks of one trial) leave one record. Returns the log's size after the
        append (everything before it has been checked: a writer that asks again may start
        there), or None when such an event was there already."""
        data = encode_events([event])
        with self._locked() as fd:
            size = os.fstat(fd).st_size
            logged, _ = parse_events(os.pread(fd, max(0, size - since), since), since)
            if any(same(e) for e, _ in logged):
                return None
            size = _append_lines(fd, data, fsync)
        self._ring()
        return size

    def _ring(self) -> None:
        """Tell the driver this log grew (``storage/changes``), after the lock is let go."""
        if self.bell is not None:
            self.bell.ring()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[int]:
        """The log's descriptor, held under the thread lock and the exclusive ``flock``; a full
        filesystem raises ``StorageFullError``."""
        with self._threads, full_storage_is_clear(self.path):
            fd = self._open()
            self._lock(fd)
            try:
                yield fd
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def size(self) -> int:
        """The log's length in bytes (0 before its first event): where a reader of what follows starts."""
        try:
            return os.stat(self.path).st_size
        except FileNotFoundError:
            return 0

    def _lock(self, fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            if exc.errno not in _NO_LOCKS:
                raise
            from hpctune.storage.fs_check import LOCK_FIX, lock_failure, mount_of  # only on failure

            directory = self.path.parent
            raise StorageError(f"{lock_failure(directory, mount_of(directory)[0], exc)}. "
                               f"Fix: {LOCK_FIX}.") from exc

    def _open(self) -> int:
        if self._fd is None:
            # never through a planted symlink; created 0600 (0640 when shared), whatever the umask
            self._fd = open_private(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
        return self._fd

    def close(self) -> None:
        if self.bell is not None:
            self.bell.close()
        with self._threads:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def encode_events(events: list[dict[str, Any]]) -> bytes:
    """``events`` as the complete lines a writer appends to a log."""
    return "".join(json.dumps(e, default=_jsonable) + "\n" for e in events).encode()


def _append_lines(fd: int, data: bytes, fsync: bool) -> int:
    """Append ``data`` (whole lines) to the locked log; returns the log's size after it.

    A line torn by a killed writer is sealed with a newline first, so it stays one bad line
    instead of swallowing the next event; if the write fails the log is cut back to where it
    was, so this writer leaves no torn line either."""
    start = os.fstat(fd).st_size
    if start and os.pread(fd, 1, start - 1) != b"\n":
        data = b"\n" + data
    try:
        write_all(fd, data)
    except BaseException:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, start)
        raise
    if fsync:
        os.fsync(fd)
    return start + len(data)


def _jsonable(value: Any) -> Any:
    """Make numpy scalars and other simple objects JSON-serialisable."""
    for attr in ("tolist", "item"):
        if hasattr(value, attr):
            return getattr(value, attr)()
    return str(value)


class LogTail:
    """Reads the events appended to a result log since the last call.

    ``offset`` is where a reader resuming later must start: ``read_new`` moves it past
    everything it returns; ``peek`` returns new events with their end offsets without
    moving it, and ``consume(n)`` moves it past the first ``n`` of them once handled.
    ``peek(max_bytes=...)`` reads only part of a long backlog: the events it holds span
    about ``max_bytes`` of the log, and ``more_left`` says whether it stopped short of the end.

    With ``keep_open`` (the driver's tails) the log is opened once and read with ``pread``
    from where the last read ended: no stat and no open per read, which on a parallel
    filesystem is load on the metadata server. Logs are only ever appended to, never
    replaced, so the descriptor stays the log's. Without descriptors to spare (EMFILE) it
    reads the old way, a stat and an open each time.
    """

    def __init__(self, path: str | Path, offset: int = 0, keep_open: bool = False):
        self.path = Path(path)
        self.offset = offset
        self.bad_lines = 0
        self._read_to = offset
        self._pending: list[tuple[dict[str, Any], int]] = []
        #: the last ``peek`` stopped at its ``max_bytes``: the log holds more than was read
        self.more_left = False
        self._keep_open = keep_open
        self._file: OpenFd | None = None  # kept open; closed with the tail or when collected

    def read_new(self) -> list[dict[str, Any]]:
        """Complete events after ``offset``; advances past them."""
        events = [event for event, _ in self.peek()]
        self.consume(len(self._pending))
        return events

    def peek(self, max_bytes: int | None = None) -> list[tuple[dict[str, Any], int]]:
        """(event, offset after it) of every complete event not consumed yet.

        With ``max_bytes`` it reads only until the events not consumed yet span about that many
        bytes of the log (whole lines; a single longer line is read whole), and nothing when
        they span that much already: a reader far behind holds a bounded slice, not the whole
        backlog. ``more_left`` then says whether the log may hold more (the read stopped at the
        cap, or did not read); without ``max_bytes`` everything is read and it is False."""
        if max_bytes is None:
            limit = None
        else:
            limit = max_bytes - (self._read_to - self.offset if self._pending else 0)
            if limit <= 0:
                self.more_left = True  # the slice held is full: read on once it is consumed
                return list(self._pending)
        data, self.more_left = self._read_open(limit) if self._keep_open else self._read_once(limit)
        end = data.rfind(b"\n")
        if end >= 0:
            events, bad = parse_events(data[: end + 1], self._read_to)
            self._pending += events
            self.bad_lines += bad
            self._read_to += end + 1
        return list(self._pending)

    @property
    def has_pending(self) -> bool:
        """Events were read but not consumed yet (they wait for the next step)."""
        return bool(self._pending)

    def _read_once(self, limit: int | None) -> tuple[bytes, bool]:
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            return b"", False
        if size <= self._read_to:
            return b"", False
        with open(self.path, "rb") as f:
            return _read_lines(f.fileno(), self._read_to, limit)

    def _read_open(self, limit: int | None) -> tuple[bytes, bool]:
        if self._file is None:
            try:
                self._file = OpenFd(os.open(self.path, os.O_RDONLY | os.O_CLOEXEC))
            except FileNotFoundError:
                return b"", False  # no event yet
            except OSError as exc:
                if exc.errno not in (errno.EMFILE, errno.ENFILE):
                    raise
                self._keep_open = False  # out of descriptors: stat and open per read
                return self._read_once(limit)
        return _read_lines(self._file.fileno(), self._read_to, limit)

    def adopt(self, fd: int, skip: int = 0) -> None:
        """Read the log through ``fd``, a descriptor of it that its creator holds already (the
        driver, which wrote a new trial's first events): no open of its own; the tail owns
        ``fd`` from now on. A tail that has read nothing yet starts at ``skip``: the creator's
        own events (a driver that read its ``meta`` events late would take them for a sign of
        life from the trial's job)."""
        self.close()
        self._file, self._keep_open = OpenFd(fd), True
        if self._read_to == self.offset == 0 and not self._pending:
            self._read_to = self.offset = skip

    def consume(self, count: int) -> None:
        """Mark the first ``count`` peeked events handled."""
        if count <= 0:
            return
        done, self._pending = self._pending[:count], self._pending[count:]
        self.offset = done[-1][1] if self._pending else self._read_to

    def close(self) -> None:
        """Let go of the kept-open log (the trial ended); a later read opens it again."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None


#: a tail reads its log in pieces of this size
_TAIL_CHUNK = 1 << 20


def _read_lines(fd: int, position: int, limit: int | None) -> tuple[bytes, bool]:
    """The bytes of ``fd`` from ``position`` on: to the end, or about ``limit`` of them (read on
    to the end of a line longer than that); and whether it stopped at ``limit`` before the end."""
    chunks, read = [], 0
    while limit is None or read < limit:
        want = _TAIL_CHUNK if limit is None else min(_TAIL_CHUNK, limit - read)
        chunk = os.pread(fd, want, position + read)
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)
        read += len(chunk)
    whole, step = any(b"\n" in c for c in chunks), max(limit, 1024)
    while not whole:  # not one whole line yet: the line that crosses ``limit`` is read whole
        chunk = os.pread(fd, step, position + read)
        if not chunk:
            return b"".join(chunks), False
        end = chunk.find(b"\n")
        chunks.append(chunk if end < 0 else chunk[: end + 1])  # that line, not the next ones
        read += len(chunk)
        whole, step = end >= 0, min(2 * step, _TAIL_CHUNK)
    return b"".join(chunks), True


def allow_open_logs() -> None:
    """Raise this process's soft limit on open files to its hard limit: the driver keeps the
    log of every trial that runs open (``LogTail(keep_open=True)``), thousands at scale."""
    import resource  # POSIX only, like the rest of the driver

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY
                                                        else max(soft, 1 << 20), hard))


def parse_events(data: bytes, start: int) -> tuple[list[tuple[dict[str, Any], int]], int]:
    """The events in ``data`` (complete lines read from byte ``start`` of a log) as (event,
    offset after it), and how many lines were not events (torn by a killed writer, or not JSON)."""
    events, bad = [], 0
    position = start
    for line in data.split(b"\n")[:-1]:
        position += len(line) + 1
        if not line:
            continue
        try:
            event = json.loads(line)
        except (ValueError, RecursionError):  # not JSON (not UTF-8 either), or nested absurdly
            event = None
        if isinstance(event, dict):
            events.append((event, position))
        else:
            bad += 1
    return events, bad


def read_events(path: str | Path) -> list[dict[str, Any]]:
    """All complete events of a log, from the start."""
    return LogTail(path).read_new()


def checkpoint_results(path: str | Path) -> dict[str, dict[str, Any]]:
    """Each checkpoint a trial's log names, with the result that goes with it: the one reported
    with it or, for a copy a PBT exploit installed, the donor's result that came with the copy
    (its ``exploited`` event). Where a name comes back (a rerun, a second exploit), the latest wins."""
    found: dict[str, dict[str, Any]] = {}
    for event in read_events(path):
        name, result = event.get(CHECKPOINT), event.get(RESULT)
        if name and isinstance(result, dict):
            found[name] = result
    return found
