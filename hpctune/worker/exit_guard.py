"""A watchdog process beside each worker: it ends the worker when Python itself cannot.

After a SIGTERM (a cancel, a stop, a report timeout, a preemption) the worker has
``stop_grace_s`` to finish; its own timer (``Session.start_stop_watchdog``) is Python code,
which never runs while the trainable is stuck in C code that holds the GIL, and a trainable
that set SIGTERM to ``SIG_IGN`` never even sees the signal. So the worker forks this guard
before it loads the trainable. The guard learns of a SIGTERM two ways: it gets the signal
itself (a cancel signals the whole job: the local backend's process group, Slurm's
``scancel`` every process of the job), and the worker's C-level signal handler writes the
signal's number to a pipe the guard reads (``signal.set_wakeup_fd``), which works while the
GIL is held. ``stop_grace_s`` (+``MARGIN_S``) later, a worker still there is killed.

On the local backend (the worker leads its own process group and asked the kernel for a
signal when the driver dies, ``PR_SET_PDEATHSIG``) that signal becomes SIGKILL, which no
trainable can ignore, and once the worker is gone the guard kills the rest of its process
group: nothing the trial started outlives it or its driver.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time

from hpctune.core.parent_death import parent_death_signal, set_parent_death_signal

#: the guard's bound is stop_grace_s plus this, so that the worker's own timer goes first
MARGIN_S = 0.5
#: how often the guard looks at its flags (a signal handler only sets them)
TICK_S = 0.25
#: what the guard gets when the worker dies
_WORKER_GONE = signal.SIGUSR2


def start_guard(grace_s: float) -> int | None:
    """Fork the guard (call it in the worker's main thread, before the trainable is loaded and
    before any other thread starts); its pid, or None where there is no ``fork``."""
    if not hasattr(os, "fork") or not hasattr(signal, "set_wakeup_fd"):
        return None
    local = parent_death_signal() != 0 and os.getpgid(0) == os.getpid()
    if local:
        set_parent_death_signal(signal.SIGKILL)  # the driver died: end at once, whatever the trainable does
    worker = os.getpid()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the guard
        try:
            os.close(write_fd)
            _guard(worker, read_fd, grace_s, local)
        finally:
            os._exit(0)
    os.close(read_fd)
    os.set_blocking(write_fd, False)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    os.register_at_fork(after_in_child=lambda: _forget(write_fd))  # the trainable's own children
    return pid


def stop_guard(pid: int | None) -> None:
    """The worker is about to exit: end its guard first and reap it, so that nothing of the
    job outlives its main process. A process left behind, even for a moment, costs every job
    end on Slurm about a second: the step's teardown kills what remains, then sleeps a second
    before it looks again (measured on the lab: scancel to the next job running, 1.7 s with
    the guard left to end by itself, 0.05 s without). On the local backend the guard stays:
    it ends the trainable's own children once the worker is gone."""
    if pid is None or parent_death_signal() != 0:
        return
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def _forget(write_fd: int) -> None:
    """In a child the trainable forks (a data loader): its signals are not the worker's."""
    with contextlib.suppress(ValueError, OSError):
        signal.set_wakeup_fd(-1)
        os.close(write_fd)


class _Flags:
    term = False
    gone = False


def _guard(worker: int, read_fd: int, grace_s: float, local: bool) -> None:
    """The guard's loop: wait for a SIGTERM or the worker's end; kill what stays too long."""
    flags = _Flags()
    signal.signal(signal.SIGTERM, lambda *_: setattr(flags, "term", True))
    signal.signal(_WORKER_GONE, lambda *_: setattr(flags, "gone", True))
    for name in ("SIGINT", "SIGUSR1", "SIGHUP"):
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    set_parent_death_signal(_WORKER_GONE)
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)  # stderr stays: the guard's one message goes to the job's log
    deadline: float | None = None
    while not flags.gone and os.getppid() == worker:
        if flags.term and deadline is None:
            deadline = time.monotonic() + grace_s + MARGIN_S
        if deadline is not None and time.monotonic() >= deadline:
            _end_worker(worker, grace_s, local)
            return
        read_fd = _read_signals(read_fd, flags)
    if local:
        _kill_group()


def _read_signals(read_fd: int, flags: _Flags) -> int:
    """Wait a tick for the worker's signal numbers; -1 once the pipe is closed."""
    if read_fd < 0:
        time.sleep(TICK_S)
        return read_fd
    poller = select.poll()  # not select(): a trainable that opened 1,024 files makes the pipe's
    poller.register(read_fd, select.POLLIN)  # descriptor one that select() refuses
    if poller.poll(TICK_S * 1000):
        data = os.read(read_fd, 256)
        if not data:
            os.close(read_fd)
            return -1
        flags.term = flags.term or signal.SIGTERM in data
    return read_fd


def _end_worker(worker: int, grace_s: float, local: bool) -> None:
    with contextlib.suppress(OSError):
        os.write(2, f"hpctune: the trial did not end within stop_grace_s={grace_s:g} s of SIGTERM "
                    "(stuck in C code, or SIGTERM ignored): killed (raise SlurmConfig(stop_grace_s="
                    "...) for a longer cleanup).\n".encode())
    with contextlib.suppress(OSError):
        os.kill(worker, signal.SIGKILL)
    if local:
        _kill_group()


def _kill_group() -> None:
    """The rest of the worker's process group (the trainable's children), the guard last."""
    with contextlib.suppress(OSError):
        os.killpg(os.getpgid(0), signal.SIGKILL)
