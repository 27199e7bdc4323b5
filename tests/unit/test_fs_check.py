"""hpctune.storage.fs_check: what hpctune needs from a storage path, checked on tmp_path.

Failures that a healthy tmp_path cannot show (flock not implemented, locks that do not
exclude, O_NOFOLLOW ignored) are simulated by replacing the one system call; the real
weak filesystem (FUSE) is tests/e2e/test_weak_filesystem.py.
"""

import errno
import fcntl
import os
from pathlib import Path

import pytest

from hpctune.errors import ConfigError
from hpctune.storage import fs_check
from hpctune.storage.fs_check import (
    FAILED,
    OK,
    WARNING,
    CheckResult,
    check_fsync_rename,
    check_location,
    check_locks,
    check_nofollow,
    check_storage,
    check_writable,
    existing_dir,
    fs_note,
    mount_of,
    run_checks,
)


def no_flock(fd, op):
    raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))


def test_every_check_passes_on_a_healthy_directory_and_leaves_nothing(tmp_path):
    results = run_checks(tmp_path)
    assert [r.name for r in results] == ["location", "filesystem", "writable", "locks", "fsync",
                                         "nofollow", "free space"]
    assert not [r for r in results if r.failed], [r.line() for r in results]
    locks = next(r for r in results if r.name == "locks")
    assert "another process was refused" in locks.detail  # the child-process probe ran
    assert list(tmp_path.iterdir()) == []  # every probe file removed


def test_a_missing_storage_path_is_checked_where_it_would_be_created(tmp_path):
    target = tmp_path / "a" / "b"
    assert existing_dir(target) == tmp_path
    result = check_location(target)
    assert result.status == OK and "does not exist yet" in result.detail and str(tmp_path) in result.detail
    check_storage(target)
    assert list(tmp_path.iterdir()) == []  # nothing created, not even the storage path
    (tmp_path / "file").write_text("x")
    assert check_location(tmp_path / "file").status == FAILED


def test_flock_not_implemented_fails_every_lock_check(tmp_path, monkeypatch):
    monkeypatch.setattr(fs_check.fcntl, "flock", no_flock)
    result = check_locks(tmp_path, other_process=False)
    assert result.status == FAILED
    assert f"locks do not work on {tmp_path}" in result.detail and "ENOSYS" in result.detail
    assert "Lustre mounted with `-o flock`" in result.fix and "GPFS" in result.fix
    assert "FAILED" in result.line() and "Fix: use a filesystem with working locks" in result.line()
    with pytest.raises(ConfigError) as info:
        check_storage(tmp_path / "experiments")
    text = str(info.value)
    assert "locks do not work" in text and "Function not implemented" in text and "NFS with lockd" in text
    assert list(tmp_path.iterdir()) == []


def test_locks_that_do_not_exclude_are_a_failure(tmp_path, monkeypatch):
    real = fcntl.flock
    monkeypatch.setattr(fs_check.fcntl, "flock", lambda fd, op: real(fd, fcntl.LOCK_UN))  # grants all
    result = check_locks(tmp_path, other_process=False)
    assert result.status == FAILED and "second exclusive flock was granted" in result.detail
    with pytest.raises(ConfigError, match="locks do not exclude"):
        check_storage(tmp_path)


def test_a_directory_that_cannot_be_written(tmp_path):
    result = check_writable(Path("/proc"))  # not writable, not even for root
    assert result.status == FAILED and "cannot create a file in /proc" in result.detail
    assert [r.name for r in run_checks("/proc")][-1] == "writable"  # the rest need a writable dir
    with pytest.raises(ConfigError, match="Cannot keep experiments in /proc"):
        check_storage("/proc")


def test_nofollow_ignored_is_a_failure(tmp_path, monkeypatch):
    assert check_nofollow(tmp_path).status == OK
    real_open = os.open
    monkeypatch.setattr(fs_check.os, "open", lambda path, flags, *a: real_open(path, flags & ~os.O_NOFOLLOW, *a))
    result = check_nofollow(tmp_path)
    assert result.status == FAILED and "followed a symbolic link" in result.detail
    assert list(tmp_path.iterdir()) == []


def test_fsync_failure_and_low_space(tmp_path, monkeypatch):
    assert check_fsync_rename(tmp_path).status == OK
    low = fs_check.check_free_space(tmp_path, warn_below=1 << 62)
    assert low.status == WARNING and "GiB free" in low.detail and "free some space" in low.fix

    def no_fsync(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(fs_check.os, "fsync", no_fsync)
    result = check_fsync_rename(tmp_path)
    assert result.status == FAILED and "EIO" in result.detail
    assert list(tmp_path.iterdir()) == []


def test_filesystem_type_from_the_mount_table(tmp_path, monkeypatch):
    mounts = tmp_path / "mounts"
    mounts.write_text("/dev/sda1 / ext4 rw 0 0\n"
                      "srv:/home /home nfs4 rw 0 0\n"
                      "lfs@tcp:/scratch /scratch lustre rw,noflock 0 0\n"
                      "weak /mnt/my\\040data fuse.sshfs rw 0 0\n"
                      "tmpfs /scratch tmpfs rw 0 0\n")  # mounted later over /scratch: it wins
    assert mount_of("/home/me/results", mounts) == ("nfs4", "/home")
    assert mount_of("/mnt/my data/x", mounts) == ("fuse.sshfs", "/mnt/my data")
    assert mount_of("/scratch/me", mounts) == ("tmpfs", "/scratch")
    assert mount_of("/homework", mounts) == ("ext4", "/")
    assert mount_of("/x", tmp_path / "none") == ("unknown", "/")
    assert "lockd" in fs_note("nfs") and "-o flock" in fs_note("lustre") and "GPFS" in fs_note("gpfs")
    assert fs_note("fuse.sshfs").startswith("FUSE (sshfs)") and "no notes" in fs_note("zonefs")
    monkeypatch.setattr(fs_check, "MOUNTS", mounts)
    assert fs_check.check_fstype(tmp_path).status == OK  # ext4, from the fake table
    with mounts.open("a") as f:
        f.write(f"tmpfs {tmp_path} tmpfs rw 0 0\n")
    result = fs_check.check_fstype(tmp_path / "not-yet")
    assert result.status == WARNING and result.detail.startswith(f"tmpfs on {tmp_path}")


def test_result_lines():
    assert CheckResult("locks", OK, "fine", "never shown").line() == f"{'ok':<8} {'locks':<11} fine"
    assert CheckResult("locks", FAILED, "broken", "do this").line().endswith("broken Fix: do this.")
