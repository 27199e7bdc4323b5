"""The one place where hpctune runs Slurm commands: counted, rate-aware, with good errors."""

from __future__ import annotations

import re
import subprocess
import time
from collections import Counter

from hpctune.backends.base import JobState
from hpctune.errors import ConfigError, SlurmCommandError

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


_JOB_ID = re.compile(r"\d+(_\d+)?(\+\d+)?", re.ASCII)


def validate_job_id(text: str) -> str:
    """``text`` if it is a Slurm job id (``123``, ``123_4``, ``123+1``), else ConfigError.

    Job ids come back from files (state.json); one like ``--user=root`` must never reach
    a Slurm command line as an option.
    """
    if not isinstance(text, str) or not _JOB_ID.fullmatch(text):
        raise ConfigError(
            f"{text!r} is not a Slurm job id (digits, optionally _<task> or +<component>, e.g. "
            "12345_7), so hpctune will not pass it to a Slurm command. Fix: check the experiment's "
            "state.json for a damaged or edited job id, or cancel the job yourself with scancel.")
    return text


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

    def job_states(self, selector: list[str], check: bool = True) -> dict[str, JobState]:
        """``squeue`` for the jobs that ``selector`` names (e.g. ``["-j", "12,13"]``), one line
        per array task: ``{job id: JobState}``. Empty when the call fails and ``check`` is off."""
        proc = self.run(["squeue", "-h", "-r", *selector, "-o", "%i|%T|%r|%N"], check=check)
        if proc.returncode != 0:
            return {}
        states = {}
        for line in proc.stdout.splitlines():
            parts = line.strip().split("|")
            if len(parts) == 4:
                reason = "" if parts[2] in ("None", "(null)") else parts[2]
                states[parts[0]] = JobState(parts[1], reason, parts[3])
        return states

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
