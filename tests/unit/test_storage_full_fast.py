"""A full disk without root: an over-quota error (EDQUOT) is a full disk like ENOSPC, the result
log keeps no half record when a write runs out of space (a fake ``os.write`` with a byte budget
for that one file: no filesystem to mount), and a driver on a full disk cancels its jobs
(through the backend interface, recorded by the fake backend).

``tests/e2e/test_disk_full.py`` does the same on a real small tmpfs where mounting is allowed."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from hpctune.controller.storage_full import stop_for_full_storage
from hpctune.errors import StorageFullError
from hpctune.storage.atomic import is_storage_full
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.result_log import ResultLog, read_events
from hpctune.tune.experiment.trial import TrialStatus
from tests.unit.test_controller import grid, make_rig, start_all


@pytest.mark.parametrize(("code", "full"), [(errno.ENOSPC, True), (errno.EDQUOT, True), (errno.EROFS, True),
                                            (errno.EIO, False), (errno.EFBIG, False), (errno.EACCES, False)])
def test_which_errors_mean_a_full_disk(code, full):
    assert is_storage_full(OSError(code, os.strerror(code))) is full


class DiskWithRoomFor:
    """``os.write`` that lets ``room`` more bytes into ``path``, then fails with ``code`` (a
    short write first, as a real full disk does); every other file is written normally."""

    def __init__(self, path: Path, room: int, code: int):
        self.path, self.room, self.code = str(path), room, code
        self.real = os.write

    def __call__(self, fd: int, data) -> int:
        if os.readlink(f"/proc/self/fd/{fd}") != self.path:
            return self.real(fd, data)
        if self.room <= 0:
            raise OSError(self.code, os.strerror(self.code))
        written = self.real(fd, bytes(data[: self.room]))
        self.room -= written
        return written


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT], ids=["ENOSPC", "EDQUOT"])
def test_the_result_log_keeps_no_half_record_when_the_disk_fills(tmp_path, monkeypatch, code):
    exp = ExperimentDir(tmp_path / "exp")
    exp.create()
    path = exp.result_log_path("t1")
    path.parent.mkdir()
    log = ResultLog(path)
    log.append({"event": "result", "schema": 1, "result": {"n": 1}})
    size = path.stat().st_size
    monkeypatch.setattr(os, "write", DiskWithRoomFor(path, room=100, code=code))
    with pytest.raises(StorageFullError) as raised:  # 100 bytes of it fit, then the disk is full
        log.append({"event": "result", "schema": 1, "result": {"blob": "x" * 20000}})
    message = str(raised.value)
    assert f"the filesystem holding {path} is full (or read-only)" in message
    assert f"`hpctune resume {exp.root}`" in message
    assert raised.value.errno == code
    assert path.stat().st_size == size  # the 100 bytes that fitted were cut back
    monkeypatch.undo()  # space freed
    log.append({"event": "result", "schema": 1, "result": {"n": 2}})
    assert [e["result"]["n"] for e in read_events(path)] == [1, 2]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT], ids=["ENOSPC", "EDQUOT"])
def test_a_driver_on_a_full_disk_cancels_its_jobs_and_stops(tmp_path, code):
    """Three trials running, then a write of the driver fails: every job is cancelled in one
    call (they cannot write either), the trials wait to be resumed from their checkpoints, and
    ``fit()`` raises the one clear error."""
    rig = make_rig(tmp_path, grid(3))
    rig.step()
    start_all(rig, 0, 1, 2)
    rig.step()
    failing_step = rig.ctl.step

    def step() -> None:
        failing_step()
        raise OSError(code, os.strerror(code), str(rig.exp.state_path))

    rig.ctl.step = step
    with pytest.raises(StorageFullError):
        rig.ctl.run()
    assert rig.backend.cancels == [["100_0", "100_1", "100_2"]]
    assert [(t.status, t.job_id, t.awaiting_restart) for t in rig.ctl.trial_list] == [
        (TrialStatus.PENDING, None, True)] * 3
    assert [t.cancelled_jobs for t in rig.ctl.trial_list] == [["100_0"], ["100_1"], ["100_2"]]
    assert rig.exp.read_summary()["status"] == "error: disk full"


def test_keep_jobs_on_interrupt_keeps_them_on_a_full_disk_too(tmp_path):
    rig = make_rig(tmp_path, grid(2), keep_jobs_on_interrupt=True)
    rig.step()
    start_all(rig, 0, 1)
    rig.step()
    stop_for_full_storage(rig.ctl.parts, OSError(errno.ENOSPC, "No space left on device"))
    assert rig.backend.cancels == []
    assert [t.job_id for t in rig.ctl.trial_list] == ["100_0", "100_1"]
