"""The one place where hpctune spells and runs Slurm commands: counted, rate-aware, good errors.

Every Slurm command line is built by one function here (``sbatch_args``, ``squeue_args``,
``scancel_args``, ``requeue_args``, ``show_args``, ``ping_args``, ``sacct_args``,
``sinfo_args``, ``sacctmgr_args``, ``sacct_usage_args``, ``sshare_args``) and run by ``SlurmCommands.run``; no other module writes
one (``tests/unit/test_slurm_argv.py`` checks). Job ids are checked before they become
arguments: they come back from files, and one like ``--user=root`` must never reach Slurm as
an option. Stdlib and ``hpctune.errors``/``hpctune.core.ids`` only: the worker imports it in a job.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from hpctune.backends.base import JobReport
from hpctune.core.ids import validate_job_id
from hpctune.errors import SlurmCommandError

_HINTS = [
    ("invalid partition", "check the partitions you may use with `sinfo -s` and set "
     "SlurmConfig(partition=...) (or --partition in your profile)."),
    ("requested node configuration is not available", "no node of the partition has that many "
     "CPUs/GPUs/memory: lower with_resources(...) or pick another partition (see `sinfo -o '%P %c %m %G'`)."),
    ("invalid generic resource", "the partition has no such GPU/GRES: check `sinfo -o '%P %G'` and "
     "with_resources(..., {'gpu': N})."),
    ("invalid job array specification", "the array is larger than the cluster's MaxArraySize: set "
     "SlurmConfig(max_array_size=...) below `scontrol show config | grep MaxArraySize`."),
    ("maxsubmit", "you reached the cluster's limit on queued jobs: lower max_concurrent_trials."),
    ("invalid account", "set SlurmConfig(account=...) to an account you belong to (`sacctmgr show assoc user=$USER`)."),
    ("invalid qos", "set SlurmConfig(qos=...) to a QOS you may use (`sacctmgr show assoc user=$USER format=qos`)."),
    ("time limit", "lower SlurmConfig(time_min=...) to the partition's MaxTime (`sinfo -o '%P %l'`)."),
    ("unable to contact slurm controller", "Slurm's controller does not answer: check `scontrol ping` "
     "(the test lab: scripts/slurm-lab.sh up), or run trials locally with HPCTUNE_BACKEND=local."),
]


#: squeue's columns for ``job_states``: job id, state, pending reason, node
STATE_FIELDS = "%i|%T|%r|%N"


# -- the arguments of each command ---------------------------------------------------------------
def sbatch_args(script: Path) -> list[str]:
    """Submit ``script``; ``--parsable`` prints only ``<job id>[;<cluster>]`` (``submitted_job_id``)."""
    return ["sbatch", "--parsable", str(script)]


def submitted_job_id(stdout: str) -> str:
    """The job id ``sbatch --parsable`` printed, checked (it is written to files and used again)."""
    return validate_job_id(stdout.strip().split(";")[0])


def squeue_args(fields: str, *, jobs: Sequence[str] = (), user: str | None = None,
                name: str | None = None, array_tasks: bool = True) -> list[str]:
    """The queued jobs that ``jobs`` (checked), ``user`` and ``name`` select, one line each in
    ``fields`` (``-o``), without a header; ``array_tasks``: one line per array task (``-r``)."""
    args = ["squeue", "-h", *(["-r"] if array_tasks else [])]
    if jobs:
        args += ["-j", ",".join(validate_job_id(job) for job in jobs)]
    if user:
        args += ["-u", user]
    if name:
        args += ["-n", name]
    return [*args, "-o", fields]


def scancel_args(job_ids: Sequence[str]) -> list[str]:
    """Cancel ``job_ids`` (each checked) in one call."""
    return ["scancel", *(validate_job_id(job) for job in job_ids)]


def requeue_args(job_id: str) -> list[str]:
    """Put a running job (checked) back in the queue; it keeps its id and restart count + 1."""
    return ["scontrol", "requeue", validate_job_id(job_id)]


def show_args(entity: str, name: str | None = None, one_line: bool = False) -> list[str]:
    """``scontrol show`` an entity (``config``, ``partition``), or only the one called ``name``;
    ``one_line``: each record on one line (``-o``)."""
    return ["scontrol", "show", entity, *(["-o"] if one_line else []), *([name] if name else [])]


def ping_args() -> list[str]:
    """Ask whether Slurm's controller answers (its output says ``UP``)."""
    return ["scontrol", "ping"]


def sacct_args(job_ids: Sequence[str], fields: str) -> list[str]:
    """Accounting records of ``job_ids`` (each checked): one ``|``-separated line per job
    (``-X``: no steps) with ``fields``, no header."""
    return ["sacct", "-n", "-P", "-X", "-j", ",".join(validate_job_id(job) for job in job_ids),
            "-o", fields]


def sacct_usage_args(job_ids: Sequence[str], fields: str) -> list[str]:
    """What ``job_ids`` (each checked; an array's id names all its tasks) used: one line per
    incarnation of each job (``-D``: a requeued job's earlier runs used allocation too), no
    steps (``-X``), ``fields`` ``|``-separated, no header. One call for a whole experiment."""
    return ["sacct", "-n", "-P", "-X", "-D", "-j", ",".join(validate_job_id(job) for job in job_ids),
            "-o", fields]


def sshare_args(user: str, fields: str) -> list[str]:
    """The user's fair-share (``sshare -U``): one ``|``-separated line per association, no header."""
    return ["sshare", "-n", "-P", "-U", "-u", user, "-o", fields]


def sinfo_args(fields: str, partition: str | None = None) -> list[str]:
    """One line per node (``-N``) in ``fields``, no header; only ``partition``'s when given."""
    return ["sinfo", "-h", "-N", "-o", fields, *(["-p", partition] if partition else [])]


def sacctmgr_args(user: str, fields: str) -> list[str]:
    """The user's associations (limits) with ``fields``, ``|``-separated, no header."""
    return ["sacctmgr", "-n", "-P", "show", "assoc", f"user={user}", f"format={fields}"]


# -- running them ----------------------------------------------------------------------------------
def hint_for(stderr: str) -> str:
    lowered = stderr.lower()
    return next((fix for needle, fix in _HINTS if needle in lowered), "")


class SlurmCommands:
    """Runs sbatch/squeue/sacct/scancel/scontrol; counts each call for citizenship reports."""

    def __init__(self, timeout_s: float = 60.0, retries: int = 2):
        self.timeout_s = timeout_s
        self.retries = retries
        self.counts: Counter[str] = Counter()

    def run(self, args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a Slurm command; transient controller errors are retried with backoff."""
        for attempt in range(self.retries + 1):
            self.counts[args[0]] += 1
            proc = self._call(args)
            if proc.returncode == 0 or not _transient(proc.stderr) or attempt == self.retries:
                break
            time.sleep(1.0 * (attempt + 1))
        if check and proc.returncode != 0:
            raise SlurmCommandError(args, proc.returncode, proc.stdout, proc.stderr, hint_for(proc.stderr))
        return proc

    def job_states(self, *, jobs: Sequence[str] = (), user: str | None = None,
                   name: str | None = None, check: bool = True) -> dict[str, JobReport]:
        """One ``squeue`` for the jobs that ``jobs``, ``user`` and ``name`` select, one line per
        array task: ``{job id: JobReport}``. Empty when the call fails and ``check`` is off."""
        proc = self.run(squeue_args(STATE_FIELDS, jobs=jobs, user=user, name=name), check=check)
        return parse_job_states(proc.stdout) if proc.returncode == 0 else {}

    def _call(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(args, capture_output=True, text=True, timeout=self.timeout_s)
        except FileNotFoundError as exc:
            raise SlurmCommandError(args, 127, "", str(exc),
                                    "run on a Slurm login node, or use backend='local'.") from exc
        except subprocess.TimeoutExpired as exc:
            return subprocess.CompletedProcess(args, 124, "", f"timed out after {exc.timeout} s")


def _transient(stderr: str) -> bool:
    lowered = stderr.lower()
    return any(s in lowered for s in ("socket timed out", "unable to contact slurm controller",
                                      "resource temporarily unavailable", "timed out after"))


def parse_job_states(text: str) -> dict[str, JobReport]:
    """``{job id: JobReport}`` from squeue's ``STATE_FIELDS`` lines (``None`` reasons are blank)."""
    states = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 4:
            reason = "" if parts[2] in ("None", "(null)") else parts[2]
            states[parts[0]] = JobReport(parts[1], reason, parts[3])
    return states
