"""The worker's exit guard ends before the worker does (on Slurm), so that no process of the
job outlives its main one: Slurm's step teardown would otherwise wait a second to kill it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import ctypes, os, signal, sys
    from hpctune.worker.exit_guard import start_guard, stop_guard
    if sys.argv[1] == "local":  # what the local backend asks for: a signal when the driver dies
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)
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
