"""A new trial's files, created in as few metadata operations as a parallel filesystem allows.

Creating a trial through the general paths cost the driver 19 metadata operations
(``bench/trial_metadata.py``): stats of the directory and its parent, an open and an fstat to
check its mode, a temporary ``params.json`` and the stat of its directory for its mode, an
unlink of a ``params.pkl`` that was never there, a read of the log and of the old
``trial.json`` for a record nobody wrote, two stats, an open and an fstat to append the
record, the change feed's shard, and the driver's tail opening the log again. At 2,000 running
60 s trials the driver creates 33 trials a second: hundreds of operations a second on a
metadata server that the whole machine shares (bench/README.md, "Metadata per trial").

While the driver creates a trial (``ExperimentDir.new_trial``) whose directory this creation
made (``NewDirs``: one ``mkdir``; its mode checked on the descriptor until ``mkdir`` alone gives it):

* its first ``params.json`` (and ``params.pkl``) is created in place (``O_EXCL``: one open, no
  temporary file and no rename) in the mode the directory's policy gives (known: no stat).
  A reader listing ``trials/`` meanwhile (``ResultGrid``, ``hpctune``) could see it half
  written, but it reads the log first and leaves out a directory without a ``meta`` record
  (``storage/replay``): the record is written after the config, so a trial that has one has
  its whole config, and no job reads the config before the trial is launched. A later write
  of the config (PBT's ``initial_config``) replaces the file in one rename as before; a
  ``params.pkl`` is removed only when this creation wrote one;
* the trial's record (``storage/trial_meta``) is kept in memory: the directory had no log and
  no ``trial.json``, and nothing but the driver writes the record, so nothing is read back;
* the log is created by the first ``meta`` event (``O_EXCL``: one open) and written without
  its lock (no worker runs before the trial is launched) and without ringing the change feed
  (the driver does nothing with its own ``meta`` events); its descriptor goes to the driver's
  tail (``LogTail.adopt``), which would open the log at its first read otherwise, and which
  starts after these events (read late, they looked like a sign of life from the job).

A directory that was there already (a driver that stopped before its snapshot named the trial
leaves it; an older hpctune's files may be in it) is read and written as any trial's
(``NewTrial.fresh`` False).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Any

from hpctune.storage.atomic import full_storage_is_clear, write_all
from hpctune.storage.secure import (
    PRIVATE_FILE_MODE,
    SHARED_FILE_MODE,
    NewDirs,
    create_private,
    open_private,
)
from hpctune.storage.trial_meta import meta_line


class NewTrial:
    """The files of one trial while the driver creates it; ``fresh``: its directory was made
    by this creation (None until it is made: at the first write)."""

    def __init__(self, trial_id: str, dirs: NewDirs, log_name: str):
        self.trial_id, self._dirs, self._log_name = trial_id, dirs, log_name
        self.fresh: bool | None = None
        self.meta: dict[str, Any] = {}  # the record written so far
        self.wrote_pickle = False  # params.pkl written by this creation
        self._written: set[str] = set()  # files this creation made (a later write replaces)
        self._log: int | None = None
        self._log_size = 0

    @property
    def directory(self) -> Path:
        return self._dirs.parent / self.trial_id

    @property
    def file_mode(self) -> int:
        """The mode of a file in the trial's directory (its policy: 0600, or 0640 when shared)."""
        return SHARED_FILE_MODE if self._dirs.mode & stat.S_IRGRP else PRIVATE_FILE_MODE

    def make_dir(self) -> bool:
        """Make the trial's directory (once); True when this creation made it."""
        if self.fresh is None:
            self.fresh = self._dirs.make(self.trial_id)
        return self.fresh

    def write_first(self, name: str, data: bytes) -> bool:
        """Create file ``name`` in the new directory with ``data`` in place (one open), if this
        creation has not written it yet; False: it did, and the caller replaces it atomically."""
        if not self.make_dir() or name in self._written:
            return False
        path = self.directory / name
        with full_storage_is_clear(path):
            fd = create_private(path, os.O_WRONLY, self.file_mode)
            try:
                write_all(fd, data)
            finally:
                os.close(fd)
        self._written.add(name)
        return True

    def write_meta(self, meta: dict[str, Any]) -> None:
        """Append the trial's whole record to its new log, created by the first one."""
        path = self.directory / self._log_name
        with full_storage_is_clear(path):
            if self._log is None:
                self._log = open_private(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, self.file_mode)
            line = meta_line(self.trial_id, meta)
            write_all(self._log, line)
        self._log_size += len(line)
        self.meta = dict(meta)

    def take_log(self) -> tuple[int, int] | None:
        """The new log's descriptor, now the caller's to close, and the bytes written to it
        (None: no record written)."""
        fd, self._log = self._log, None
        return None if fd is None else (fd, self._log_size)

    def close(self) -> None:
        if self._log is not None:
            with contextlib.suppress(OSError):
                os.close(self._log)
            self._log = None
