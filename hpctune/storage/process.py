"""Which process drives an experiment, recorded so that it can be told from a later one.

The driver's record (in ``summary.json``) holds, besides the pid and host, the process's
boot-relative start time (field 22 of ``/proc/<pid>/stat``), the boot id and the command
line, so that ``hpctune cancel`` signals that very process and never an unrelated one that
got the same pid later.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

PROC = Path("/proc")
BOOT_ID_FILE = PROC / "sys" / "kernel" / "random" / "boot_id"
#: pid -> (start time, boot id, command line) of this process; read once per process
_IDENTITY: dict[int, dict[str, Any]] = {}


def driver_record() -> dict[str, Any]:
    """This process as the experiment's driver: pid, host, Slurm job, and what identifies it."""
    pid = os.getpid()
    if pid not in _IDENTITY:
        _IDENTITY.clear()  # a forked child is another process
        _IDENTITY[pid] = {"start_time": process_start_time(pid), "boot_id": boot_id(),
                          "cmdline": process_cmdline(pid)}
    return {"pid": pid, "host": socket.gethostname(),
            "slurm_job_id": os.environ.get("SLURM_JOB_ID"), **_IDENTITY[pid]}


def process_start_time(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot (field 22 of /proc/<pid>/stat); None if
    there is no such process (or no /proc)."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # field 2, the command name, is in parentheses and may hold spaces or ')': split after the last
    fields = text[text.rfind(")") + 2:].split()
    try:
        return int(fields[19])  # fields[0] is field 3 (the state), so field 22 is fields[19]
    except (IndexError, ValueError):
        return None


def process_cmdline(pid: int) -> list[str] | None:
    """The command line of ``pid`` (from /proc/<pid>/cmdline), or None if it cannot be read."""
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0")[:-1]]


def process_ignores(pid: int, signum: int) -> bool:
    """Whether ``pid`` ignores ``signum`` (its SigIgn mask in /proc/<pid>/status): a process
    started from a background shell (``cmd &``, ``nohup``) may have inherited SIG_IGN."""
    try:
        status = (PROC / str(pid) / "status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


def boot_id() -> str | None:
    """This boot's id: a start time is only comparable within one boot."""
    try:
        return BOOT_ID_FILE.read_text().strip()
    except OSError:
        return None


def recorded_driver_pid(driver: dict[str, Any]) -> tuple[int | None, str]:
    """(pid, "") if the process recorded in ``driver`` runs now on this host, else (None, why not).

    The pid must be alive *and* have the recorded start time, boot and command line: a pid
    from a stale record (the driver died, the pid was reused) or a forged one is refused.
    """
    pid = driver.get("pid")
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 1:
        return None, f"the recorded pid {pid!r} is not a process id"
    if driver.get("host") != socket.gethostname():
        return None, f"it ran on {driver.get('host')}, not on this host"
    if driver.get("start_time") is None or driver.get("cmdline") is None:
        return None, "the record has no start time or command line to check the pid against"
    start = process_start_time(pid)
    if start is None:
        return None, f"no process {pid} runs now"
    if driver.get("boot_id") not in (None, boot_id()) or start != driver.get("start_time"):
        return None, f"process {pid} is another process that started later with the same pid"
    if process_cmdline(pid) != driver.get("cmdline"):
        return None, f"process {pid} runs another command than the driver did"
    return pid, ""
