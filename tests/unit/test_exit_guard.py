"""The worker's exit guard ends before the worker does (on Slurm), so that no process of the
job outlives its main one: Slurm's step teardown would otherwise wait a second to kill it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from hpctune.worker.exit_guard import start_guard, stop_guard
    from hpctune.core.parent_death import set_parent_death_signal
    if sys.argv[1] == "local":  # what the local backend asks for: a signal when the driver dies
        set_parent_death_signal(signal.SIGTERM)
        os.setpgid(0, 0)
    pid = start_guard(3.0)
    stop_guard(pid)
    try:
        os.kill(pid, 0)
        alive = os.waitpid(pid, os.WNOHANG) == (0, 0)
    except (ProcessLookupError, ChildProcessError):
        alive = False
    print("alive" if alive else "gone")
    if alive:
        os.kill(pid, signal.SIGKILL)
""")


def run(mode: str) -> str:
    return subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True,
                          timeout=30, check=True).stdout.strip()


def test_on_slurm_the_guard_is_gone_before_the_worker_exits():
    assert run("slurm") == "gone"


def test_on_the_local_backend_the_guard_stays_to_end_the_trainables_children():
    assert run("local") == "alive"


PARENT = textwrap.dedent("""
    import functools, signal, subprocess
    from hpctune.core.parent_death import parent_death_signal, set_parent_death_signal
    set_parent_death_signal(signal.SIGUSR1)
    assert parent_death_signal() == signal.SIGUSR1, parent_death_signal()
    child = subprocess.Popen(["sleep", "60"], preexec_fn=functools.partial(set_parent_death_signal, signal.SIGKILL))
    print(child.pid)
""")


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")  # a zombie has ended
    except FileNotFoundError:
        return False


def test_a_child_that_asked_for_the_parent_death_signal_ends_with_its_parent():
    pid = int(subprocess.run([sys.executable, "-c", PARENT], capture_output=True, text=True,
                             timeout=30, check=True).stdout)
    deadline = time.monotonic() + 10
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _running(pid):
        os.kill(pid, signal.SIGKILL)
        raise AssertionError("the child outlived its parent")
