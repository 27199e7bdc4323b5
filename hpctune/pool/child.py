"""One trial run in a clean process of its own, started by a pool task.

``fork`` (the default) copies the pool task's process, which has imported hpctune's
worker and nothing heavier: no trainable, no torch, no CUDA, no thread. The child then
loads the trainable itself, exactly as a one-job-per-trial worker does. ``spawn``
starts ``python -m hpctune.worker`` from scratch (slower by the interpreter's start and
imports: ``bench/pool_start.py``) for sites where a fork is unwelcome.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from hpctune.core.parent_death import set_parent_death_signal
from hpctune.storage.pool_records import RunClaim
from hpctune.storage.secure import make_private_dir, open_private

START_METHODS = ("fork", "spawn")
_RESET = ("SIGTERM", "SIGINT", "SIGUSR1", "SIGUSR2", "SIGCHLD")


@dataclass
class Child:
    """A running trial process of the pool task."""

    claim: RunClaim  #: the run it is (its claim is dropped when it ends)
    trial_id: str
    pid: int
    gpus: tuple[str, ...] = ()
    term_sent_at: float | None = None
    #: when it started (the pool task's clock): its wall time is the trial's share of the task
    started: float = 0.0
    popen: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def seq(self) -> int:
        """Its run's number (``pool-<seq>``)."""
        return self.claim.seq


#: what every trial process imports besides the worker (measured: ~8 ms a trial saved by a fork
#: that finds them loaded); none of them loads a GPU library
PREIMPORTS = ("hpctune.worker", "hpctune.tune.trainable", "cloudpickle", "ctypes", "encodings.idna",
              "uuid", "platform", "logging", "inspect", "tempfile", "sysconfig")


def preimport() -> None:
    """Import what every trial process needs, once, in the pool task (fork copies it)."""
    import importlib

    for name in PREIMPORTS:
        importlib.import_module(name)


def start(method: str, root: Path, trial_id: str, env: dict[str, str],
          logs: tuple[Path, Path], close_fds: tuple[int, ...] = ()) -> tuple[int, subprocess.Popen | None]:
    """Start the trial's process; returns (pid, Popen for spawn)."""
    make_private_dir(logs[0].parent)
    if method == "spawn":
        return _spawn(root, trial_id, env, logs)
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        _child_main(root, trial_id, env, logs, close_fds, parent)
    return pid, None


def _spawn(root: Path, trial_id: str, env: dict[str, str],
           logs: tuple[Path, Path]) -> tuple[int, subprocess.Popen]:
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
    cmd = [sys.executable, "-u", "-m", "hpctune.worker", str(root), "--trial", trial_id]
    with open(open_private(logs[0], flags), "ab") as out, open(open_private(logs[1], flags), "ab") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                start_new_session=True, env={**os.environ, **env},
                                preexec_fn=die_with_parent)
    return proc.pid, proc


def _child_main(root: Path, trial_id: str, env: dict[str, str], logs: tuple[Path, Path],
                close_fds: tuple[int, ...], parent: int) -> None:
    """In the forked child: a clean slate (own session, default signals, own logs), then the
    trial, then ``os._exit`` (the pool task's ``finally`` blocks must not run here)."""
    code = 1
    try:
        os.setsid()
        die_with_parent()
        if os.getppid() != parent:  # the pool task died before the line above took effect
            os._exit(1)
        with contextlib.suppress(ValueError):
            signal.set_wakeup_fd(-1)
        for name in _RESET:
            signal.signal(getattr(signal, name), signal.SIG_DFL)
        for fd in close_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        os.environ.update(env)
        _redirect(logs)
        from hpctune.storage.experiment import ExperimentDir
        from hpctune.worker import run as worker

        code = worker.run_trial(ExperimentDir(root), trial_id)
    except SystemExit as end:
        code = end.code if isinstance(end.code, int) else 1
    except BaseException:  # noqa: BLE001 - the child must always reach os._exit
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def die_with_parent() -> None:
    """In the child: SIGKILL when the pool task dies (Linux), even outside its process group.

    A pool task killed with its allocation (``scancel --signal=KILL``, a lost node) must not
    leave a trial running that the driver hands to another pool task: never two runs at once.
    """
    set_parent_death_signal(signal.SIGKILL)


def _redirect(logs: tuple[Path, Path]) -> None:
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    for fd, path in zip((1, 2), logs, strict=True):
        target = open_private(path, flags)
        os.dup2(target, fd)
        os.close(target)


def signal_child(child: Child, sig: int, group: bool = False) -> None:
    """Send ``sig`` to the trial's process (or its whole process group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(child.pid, sig)
        else:
            os.kill(child.pid, sig)


def reap(child: Child) -> int | None:
    """The child's exit code once it ended (a signal gives 128 + its number), else None."""
    try:
        pid, status = os.waitpid(child.pid, os.WNOHANG)
    except ChildProcessError:
        return 1
    if pid == 0:
        return None
    if child.popen is not None:
        child.popen.returncode = os.waitstatus_to_exitcode(status)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code
