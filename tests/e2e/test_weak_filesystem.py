"""A shared filesystem whose file locks do not work: hpctune refuses it at start, clearly.

The weak filesystem is real: a tiny passthrough FUSE filesystem (mfusepy over libfuse3,
mounted here as root) whose ``flock`` answers ENOSYS, as Lustre mounted without
``-o flock`` does. Its control twin has no ``flock`` operation at all, so the kernel keeps
the locks on this node and they work: the same commands must succeed there, which shows
that the refusal is about locks and not about FUSE.

What hpctune did on the weak mount before ``check_storage`` (measured): the driver started
(filelock fell back to a soft lock with a warning), every worker died on its first
``ResultLog.append`` with ``OSError: [Errno 38] Function not implemented``, and the
experiment "finished" with exit code 0, all trials ERROR, its directory fully written.

Skipped, with the reason, only when FUSE is unavailable (no /dev/fuse, no mfusepy or
libfuse, mounting not permitted); with CI=true that is a failure. Every mount is unmounted
(fusermount3 -u, else umount, else umount -l) and its daemon ended, also when a test fails.

Run as a script, this file is the filesystem's daemon:
``python test_weak_filesystem.py SOURCE MOUNTPOINT enosys|kernel``.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

FSNAME = "hpctune-weakfs"
FSTYPE = f"fuse.{FSNAME}"
LOCK_FIX = "Lustre mounted with `-o flock`"

TRAINABLE = '''
from hpctune import tune

def objective(config):
    tune.report({"score": config["a"]})
'''

PLAIN_SCRIPT = '''
import sys
from hpctune import tune
from train import objective

tuner = tune.Tuner(objective, param_space={"a": tune.grid_search([1, 2])},
                   run_config=tune.RunConfig(name="plain", storage_path=sys.argv[1], verbose=0))
tuner.fit()
'''


# -- the filesystem (runs in its own process) ---------------------------------------------------------
def serve(source: str, mountpoint: str, locks: str) -> None:
    """Mount ``source`` at ``mountpoint`` until unmounted; ``locks``: enosys or kernel."""
    import mfusepy as fuse

    def real(path: str) -> str:
        return os.path.join(source, path.lstrip("/"))

    class Passthrough(fuse.Operations):
        use_ns = True

        def getattr(self, path, fh=None):
            st = os.lstat(real(path))
            return {k: getattr(st, k) for k in ("st_atime_ns", "st_ctime_ns", "st_mtime_ns", "st_gid",
                                                 "st_mode", "st_nlink", "st_size", "st_uid")}

        def readdir(self, path, fh):
            return [".", "..", *os.listdir(real(path))]

        def open(self, path, flags):
            return os.open(real(path), flags)

        def create(self, path, mode, fi=None):
            return os.open(real(path), os.O_RDWR | os.O_CREAT | os.O_EXCL, mode)

        def read(self, path, size, offset, fh):
            return os.pread(fh, size, offset)

        def write(self, path, data, offset, fh):
            return os.pwrite(fh, data, offset)

        def release(self, path, fh):
            os.close(fh)

        def flush(self, path, fh):
            return 0

        def fsync(self, path, datasync, fh):
            os.fsync(fh)

        def truncate(self, path, length, fh=None):
            os.truncate(real(path), length)

        def unlink(self, path):
            os.unlink(real(path))

        def rename(self, old, new):
            os.rename(real(old), real(new))

        def mkdir(self, path, mode):
            os.mkdir(real(path), mode)

        def rmdir(self, path):
            os.rmdir(real(path))

        def chmod(self, path, mode):
            os.chmod(real(path), mode)

        def chown(self, path, uid, gid):
            os.chown(real(path), uid, gid)

        def utimens(self, path, times=None):
            os.utime(real(path), ns=times)

        def symlink(self, target, source_path):
            os.symlink(source_path, real(target))

        def readlink(self, path):
            return os.readlink(real(path))

        def statfs(self, path):
            sv = os.statvfs(real(path))
            return {k: getattr(sv, k) for k in ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail",
                                                 "f_ffree", "f_files", "f_flag", "f_frsize", "f_namemax")}

    class NoLocks(Passthrough):
        def flock(self, path, fh, op):  # what Lustre without `-o flock` answers
            raise fuse.FuseOSError(errno.ENOSYS)

    operations = NoLocks() if locks == "enosys" else Passthrough()
    fuse.FUSE(operations, mountpoint, foreground=True, nothreads=True, fsname=FSNAME, subtype=FSNAME)


if __name__ == "__main__":
    serve(*sys.argv[1:4])
    sys.exit(0)

# -- the tests ----------------------------------------------------------------------------------------
import pytest  # noqa: E402 - the daemon above must not need pytest

from hpctune.errors import ConfigError  # noqa: E402
from hpctune.storage.fs_check import check_storage  # noqa: E402


def fuse_problem() -> str | None:
    """Why FUSE cannot be used here, or None."""
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse (the kernel has no FUSE, or the container hides it)"
    if importlib.util.find_spec("mfusepy") is None:
        return "mfusepy is not installed (pip install -e '.[test]')"
    try:
        import mfusepy  # noqa: F401 - loads libfuse
    except (OSError, ImportError) as exc:
        return f"libfuse cannot be loaded ({exc}): apt-get install fuse3"
    return None


def unavailable(reason: str) -> None:
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(f"FUSE is needed in CI: {reason}", pytrace=False)
    pytest.skip(f"FUSE unavailable: {reason}")


def is_mounted(mountpoint: Path) -> bool:
    escaped = str(mountpoint).replace(" ", "\\040")
    return any(line.split()[1] == escaped for line in Path("/proc/mounts").read_text().splitlines())


def unmount(mountpoint: Path) -> None:
    """fusermount3 -u, else umount, else a lazy umount: the mount must go."""
    commands = [["fusermount3", "-u"], ["fusermount", "-u"], ["umount"], ["umount", "-l"]]
    for command in commands:
        if not is_mounted(mountpoint):
            return
        if shutil.which(command[0]):
            subprocess.run([*command, str(mountpoint)], capture_output=True, timeout=30, check=False)


@contextlib.contextmanager
def mounted(base: Path, locks: str) -> Iterator[tuple[Path, Path]]:
    """(backing directory, mount point) of a passthrough mount; always unmounted afterwards."""
    source, mountpoint = base / f"source-{locks}", base / f"mnt-{locks}"
    source.mkdir()
    mountpoint.mkdir()
    log = base / f"daemon-{locks}.log"
    with open(log, "w") as out:
        daemon = subprocess.Popen([sys.executable, __file__, str(source), str(mountpoint), locks],
                                  stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while not is_mounted(mountpoint) and daemon.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if not is_mounted(mountpoint):
            said = log.read_text().strip().splitlines()
            unavailable(f"mounting failed: {said[-1] if said else f'daemon exit {daemon.poll()}'}")
        yield source, mountpoint
    finally:
        unmount(mountpoint)
        if daemon.poll() is None:
            daemon.terminate()
        try:
            daemon.wait(timeout=10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        assert not is_mounted(mountpoint), f"{mountpoint} is still mounted"


@pytest.fixture(scope="module")
def mounts(tmp_path_factory) -> Iterator[dict[str, tuple[Path, Path]]]:
    """The weak mount ("enosys") and its control ("kernel"), for the whole module."""
    problem = fuse_problem()
    if problem:
        unavailable(problem)
    base = tmp_path_factory.mktemp("weakfs")
    with mounted(base, "enosys") as weak, mounted(base, "kernel") as control:
        yield {"weak": weak, "control": control}


@pytest.fixture
def project(tmp_path) -> Path:
    """A directory with a trainable, an experiment file and a script."""
    (tmp_path / "train.py").write_text(TRAINABLE)
    (tmp_path / "exp.toml").write_text('trainable = "train.py:objective"\nmetric = "score"\n'
                                       'mode = "min"\n[param_space]\na = {grid_search = [1, 2]}\n')
    (tmp_path / "plain.py").write_text(PLAIN_SCRIPT)
    return tmp_path


def hpctune(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "HPCTUNE_BACKEND": "local", "XDG_CONFIG_HOME": str(project / "xdg"),
                   "HPCTUNE_STORAGE_PATH": str(project / "results"), **(env or {})}
    return subprocess.run([sys.executable, "-m", "hpctune.cli", *args], cwd=project, env=environment,
                          capture_output=True, text=True, timeout=180, check=False)


def files_under(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


def test_the_mounts_are_what_the_tests_say(mounts):
    for source, mountpoint in mounts.values():
        (mountpoint / "hello").write_text("passes through")
        assert (source / "hello").read_text() == "passes through"
        (mountpoint / "hello").unlink()
        line = next(ln for ln in Path("/proc/mounts").read_text().splitlines() if ln.split()[1] == str(mountpoint))
        assert line.split()[2] == FSTYPE


def test_the_quick_probe_refuses_the_weak_mount_and_writes_nothing(mounts):
    source, mountpoint = mounts["weak"]
    with pytest.raises(ConfigError) as info:
        check_storage(mountpoint / "results")
    text = str(info.value)
    assert f"locks do not work on {mountpoint} ({FSTYPE} filesystem)" in text
    assert "Function not implemented (ENOSYS)" in text and LOCK_FIX in text and "GPFS" in text
    assert files_under(source) == []
    check_storage(mounts["control"][1] / "results")  # kernel-kept locks work


def test_doctor_reports_the_weak_mount_failed(mounts, project):
    proc = hpctune(project, "doctor", str(mounts["weak"][1]))
    lines = proc.stdout.splitlines()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    locks = next(ln for ln in lines if ln.split()[1:2] == ["locks"])
    assert locks.startswith("FAILED") and "locks do not work" in locks and LOCK_FIX in locks
    assert any(ln.startswith("ok") and FSTYPE in ln for ln in lines)  # the filesystem line
    assert files_under(mounts["weak"][0]) == []
    control = hpctune(project, "doctor", str(mounts["control"][1])).stdout.splitlines()
    assert next(ln for ln in control if ln.split()[1:2] == ["locks"]).startswith("ok")


@pytest.mark.parametrize("argv", [
    ["submit", "--name", "weak", "--storage-path", "{mnt}/results", "exp.toml"],
    ["submit", "plain.py", "{mnt}/results"],  # the script's own RunConfig(storage_path=...)
    ["submit", "--detach", "--backend", "slurm", "--storage-path", "{mnt}/results", "exp.toml"],
], ids=["foreground", "script", "detach"])
def test_submit_refuses_the_weak_mount_before_writing(mounts, project, argv):
    source, mountpoint = mounts["weak"]
    fake = project / "bin"
    fake.mkdir()
    (fake / "sbatch").write_text(f"#!/bin/sh\necho called > {project}/sbatch-called\necho 1\n")
    (fake / "sbatch").chmod(0o755)
    proc = hpctune(project, *[a.format(mnt=mountpoint) for a in argv],
                   env={"PATH": f"{fake}:{os.environ['PATH']}"})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    error = proc.stderr.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("hpctune submit: error: Cannot keep experiments in")
    assert f"locks do not work on {mountpoint} ({FSTYPE} filesystem)" in error[0] and LOCK_FIX in error[0]
    assert files_under(source) == [] and not (project / "sbatch-called").exists()


def test_the_same_experiment_runs_on_the_control_mount(mounts, project):
    source, mountpoint = mounts["control"]
    proc = hpctune(project, "submit", "--name", "fine", "--storage-path", str(mountpoint / "results"), "exp.toml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((source / "results" / "fine" / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["by_status"] == {"TERMINATED": 2}


def test_a_plain_tuner_fit_refuses_the_weak_mount_before_writing(mounts, project):
    source, mountpoint = mounts["weak"]
    proc = subprocess.run([sys.executable, "plain.py", str(mountpoint / "plain-results")], cwd=project,
                          env={**os.environ, "HPCTUNE_BACKEND": "local"}, capture_output=True, text=True,
                          timeout=180, check=False)
    assert proc.returncode != 0 and "locks do not work" in proc.stderr and LOCK_FIX in proc.stderr
    assert files_under(source) == []
