"""What hpctune needs from the filesystem under its experiments, checked.

hpctune keeps one driver per experiment with a file lock and appends results under
``flock``; it writes snapshots with fsync and an atomic rename; it opens its files with
``O_NOFOLLOW``. On a shared filesystem that does not support locks (Lustre mounted
without ``-o flock``, NFS without a lock daemon, some FUSE filesystems) an experiment
would fail half-way, so ``check_storage`` probes a storage path before an experiment is
created there, and ``run_checks`` (``hpctune doctor``) checks everything, one result each.

The checks are plain functions returning ``CheckResult``s; nothing here runs Slurm.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from hpctune.errors import StorageError

OK, WARNING, FAILED = "ok", "warning", "FAILED"
LOW_SPACE_BYTES = 1 << 30
MOUNTS = Path("/proc/mounts")
PROBE_PREFIX = ".hpctune-probe-"
LOCK_FIX = ("use a filesystem with working locks: NFS with lockd (not mounted with `nolock`), "
            "Lustre mounted with `-o flock`, GPFS, or a local path; point RunConfig(storage_path=...), "
            "--storage-path or $HPCTUNE_STORAGE_PATH at it (`hpctune doctor PATH` checks a path)")
_LOCAL_DISK = ("local disk: the compute nodes see it only if this machine exports it; fine for "
               "the local backend")
_NFS = ("NFS: locks need the lock daemon (NFSv3 lockd) or NFSv4's own locking; mounted with "
        "`nolock` or `local_lock=` they hold on this node only")
FS_NOTES = {
    "nfs": _NFS, "nfs4": _NFS,
    "lustre": "Lustre: locks need `-o flock` on every node (`localflock` locks per node only)",
    "gpfs": "GPFS (IBM Storage Scale): locks work across nodes",
    "beegfs": "BeeGFS: locks hold across nodes only with tuneUseGlobalFileLocks=true",
    "ceph": "CephFS: locks work across clients",
    "tmpfs": "tmpfs: in this machine's memory, gone at reboot; the compute nodes do not see it",
    "overlay": "overlay (a container's own filesystem): the compute nodes do not see it",
    "ext4": _LOCAL_DISK, "xfs": _LOCAL_DISK, "btrfs": _LOCAL_DISK, "zfs": _LOCAL_DISK,
}
#: file systems worth a warning even when every probe passes
WARN_TYPES = ("tmpfs", "overlay")


@dataclass(frozen=True)
class CheckResult:
    """One check: its name, ``ok``/``warning``/``FAILED``, what was found, and the fix."""

    name: str
    status: str
    detail: str
    fix: str = ""

    @property
    def failed(self) -> bool:
        return self.status == FAILED

    def line(self) -> str:
        """``ok       locks       ...`` with the fix after a warning or a failure."""
        fix = f" Fix: {self.fix}." if self.fix and self.status != OK else ""
        return f"{self.status:<8} {self.name:<11} {self.detail}{fix}"


# -- where a path lives --------------------------------------------------------------------
def existing_dir(path: str | Path) -> Path:
    """``path`` if it is a directory, else its nearest existing ancestor (what would hold it)."""
    path = Path(path).expanduser().absolute()
    while not path.is_dir() and path != path.parent:
        path = path.parent
    return path


def mount_of(path: str | Path, mounts: Path | None = None) -> tuple[str, str]:
    """(filesystem type, mount point) of ``path``, from /proc/mounts; ("unknown", "/") without it."""
    real = os.path.realpath(path)
    best = ("unknown", "/")
    try:
        lines = (mounts or MOUNTS).read_text().splitlines()
    except OSError:
        return best
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), parts[1])
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best[1]):  # the deepest (and latest) mount wins
            best = (parts[2], point)
    return best


def fs_note(fstype: str) -> str:
    """What hpctune users should know about a filesystem type."""
    if fstype.startswith("fuse"):
        kind = fstype.partition(".")[2] or "fuse"
        return (f"FUSE ({kind}): locks, fsync and rename are whatever its daemon implements; "
                "the checks below tell")
    return FS_NOTES.get(fstype, f"{fstype}: no notes on this type; the checks below tell")


# -- the checks --------------------------------------------------------------------------
@contextmanager
def probe_file(directory: Path) -> Iterator[str]:
    """A new empty file in ``directory`` (unpredictable name, created exclusively), removed after."""
    fd, path = tempfile.mkstemp(dir=directory, prefix=PROBE_PREFIX)
    os.close(fd)
    try:
        yield path
    finally:
        with suppress(OSError):
            os.unlink(path)


def check_location(path: str | Path) -> CheckResult:
    """Whether the storage path exists (it is created when missing) and where it lives."""
    path = Path(path).expanduser().absolute()
    fstype, point = mount_of(existing_dir(path))
    where = f"{fstype} mounted on {point}"
    if path.is_dir():
        return CheckResult("location", OK, f"{path} ({where})")
    if path.exists():
        return CheckResult("location", FAILED, f"{path} exists and is not a directory",
                           "choose a directory as the storage path")
    return CheckResult("location", OK, f"{path} does not exist yet (hpctune creates it); checked "
                       f"{existing_dir(path)} ({where}), which would hold it")


def check_fstype(path: str | Path) -> CheckResult:
    """The filesystem type, with a note on what it means for hpctune."""
    fstype, point = mount_of(existing_dir(path))
    status = WARNING if fstype in WARN_TYPES else OK
    fix = "put experiments on the shared filesystem the compute nodes mount" if status == WARNING else ""
    return CheckResult("filesystem", status, f"{fstype} on {point}: {fs_note(fstype)}", fix)


def check_writable(directory: Path) -> CheckResult:
    """A file can be created and removed in ``directory``."""
    try:
        with probe_file(directory):
            pass
    except OSError as exc:
        return CheckResult("writable", FAILED, f"cannot create a file in {directory}: {_why(exc)}",
                           "choose a storage path you can write to, or fix its permissions")
    return CheckResult("writable", OK, f"created and removed a file in {directory}")


def check_locks(directory: Path, other_process: bool = True) -> CheckResult:
    """An exclusive ``flock`` is granted, and a second one (from a child process, or from a
    second open of the file here) is refused while it is held."""
    fstype, _ = mount_of(directory)
    try:
        with probe_file(directory) as path, open(path, "r+b") as held:  # NFS locks need write access
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            second = _child_lock(path) if other_process else _second_lock(path)
    except OSError as exc:
        return CheckResult("locks", FAILED, lock_failure(directory, fstype, exc), LOCK_FIX)
    if second != "refused":
        return CheckResult("locks", FAILED, f"locks do not exclude on {directory} ({fstype}): a "
                           f"second exclusive flock was {second} while the first was held", LOCK_FIX)
    who = "another process" if other_process else "a second open of the file"
    return CheckResult("locks", OK, f"flock works on {directory}: {who} was refused the held lock "
                       "(on this node; other nodes are not tested)")


def lock_failure(directory: Path, fstype: str, exc: OSError) -> str:
    """The problem, in words: locks do not work on ``directory``, and what flock said."""
    return f"locks do not work on {directory} ({fstype} filesystem): flock failed with {_why(exc)}"


def _second_lock(path: str) -> str:
    with open(path, "r+b") as again:
        try:
            fcntl.flock(again, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return "refused"
        return "granted"


_CHILD = """import fcntl, sys
try:
    fcntl.flock(open(sys.argv[1], "r+b"), fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("granted")
except BlockingIOError:
    print("refused")
except OSError as exc:
    print("failed (" + exc.strerror + ")")
"""


def _child_lock(path: str) -> str:
    if not sys.executable:
        return _second_lock(path)
    proc = subprocess.run([sys.executable, "-c", _CHILD, path], capture_output=True, text=True,
                          timeout=60, check=False)
    return proc.stdout.strip() or f"not tested (the child process said: {proc.stderr.strip()[-200:]})"


def check_fsync_rename(directory: Path) -> CheckResult:
    """A file can be written, fsync'ed and atomically renamed over another (how snapshots are saved)."""
    try:
        with probe_file(directory) as target, probe_file(directory) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"hpctune")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
            with open(target, "rb") as f:
                if f.read() != b"hpctune":
                    return CheckResult("fsync", FAILED, f"a renamed file in {directory} lost its contents",
                                       "use another filesystem for experiments")
    except OSError as exc:
        return CheckResult("fsync", FAILED, f"fsync or rename failed in {directory}: {_why(exc)}",
                           "use a filesystem with fsync and atomic rename (any POSIX one)")
    return CheckResult("fsync", OK, "fsync and atomic rename work")


def check_nofollow(directory: Path) -> CheckResult:
    """``open(O_NOFOLLOW)`` refuses a symbolic link (hpctune's guard against planted links)."""
    try:
        with probe_file(directory) as target:
            link = f"{target}.link"
            try:
                os.symlink(target, link)
            except OSError as exc:
                return CheckResult("nofollow", OK, f"no symbolic links here ({_why(exc)}), so none "
                                   "can be planted")
            try:
                os.close(os.open(link, os.O_RDONLY | os.O_NOFOLLOW))
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    return CheckResult("nofollow", OK, "O_NOFOLLOW refuses symbolic links")
                raise
            finally:
                os.unlink(link)
    except OSError as exc:
        return CheckResult("nofollow", FAILED, f"the O_NOFOLLOW probe failed: {_why(exc)}",
                           "use another filesystem for experiments")
    return CheckResult("nofollow", FAILED, "open(O_NOFOLLOW) followed a symbolic link: a link "
                       "planted in an experiment could redirect hpctune's writes",
                       "use another filesystem for experiments")


def check_free_space(directory: Path, warn_below: int = LOW_SPACE_BYTES) -> CheckResult:
    """Free space for the user; a warning under ``warn_below`` bytes (1 GiB)."""
    free = shutil.disk_usage(directory).free
    text = f"{free / (1 << 30):.1f} GiB free on {directory}"
    if free < warn_below:
        return CheckResult("free space", WARNING, text + f" (under {warn_below / (1 << 30):.1f} GiB)",
                           "free some space or choose another storage path: checkpoints need room")
    return CheckResult("free space", OK, text)


def run_checks(path: str | Path, other_process: bool = True) -> list[CheckResult]:
    """Every filesystem check of a storage path, in order; the writing ones only if it is writable."""
    directory = existing_dir(path)
    results = [check_location(path), check_fstype(path), check_writable(directory)]
    if results[-1].failed:
        return results
    return results + [check_locks(directory, other_process), check_fsync_rename(directory),
                      check_nofollow(directory), check_free_space(directory)]


def check_storage(path: str | Path) -> None:
    """Refuse a storage path (or experiment directory) where hpctune cannot work: call before
    anything of an experiment is written. A quick probe: writable, and ``flock`` grants one
    exclusive lock and refuses a second. Raises StorageError naming the problem and the fix."""
    directory = existing_dir(path)
    for result in (check_writable(directory), check_locks(directory, other_process=False)):
        if result.failed:
            raise StorageError(f"Cannot keep experiments in {path}: {result.detail}. Fix: {result.fix}.")


def _why(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0, "")
    return f"{exc.strerror or exc} ({name})" if name else str(exc)
