"""The driver at scale, on the simulated cluster (``bench/driver_scale.py``): 10,000 trials with
1,000 running with one array task per trial, and 4,000 with the worker pool. Counts, not timings:
the driver's filesystem metadata operations per running trial in a steady state (strace),
squeue calls a minute while nothing changes, files per trial, and that every trial ran once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: files per finished trial without checkpoints, the default loggers included
FILES_PER_TRIAL = 4
POOL_TRIALS = 4_000


pytestmark = pytest.mark.timeout(900)


def run_scale(*extra: str, trials: int = 10_000) -> dict:
    """``bench/driver_scale.py`` with ``trials`` trials and 1,000 running; its figures."""
    if shutil.which("strace") is None:
        pytest.fail("strace is not installed: scripts/test.sh installs it (apt-get install strace)")
    # the window: from 60 virtual s (after the first wave's starts, which a loaded machine shows
    # the driver late: its polls rightly come sooner while it sees them) to 120 s, before the
    # first ends (130 s); it opens once strace is attached, some virtual seconds later
    args = ["--trials", str(trials), "--running", "1000", "--duration", "130", "--report-every", "30",
            "--speed", "20", "--window-at", "60", "--window", "60", "--json", *extra]
    # a clean environment: nothing the suite's other tests left in os.environ reaches the driver
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "USER")}
    env["PYTHONPATH"] = str(REPO)
    if os.access("/dev/shm", os.W_OK):  # the simulated experiment in memory: counts are the same,
        env["TMPDIR"] = "/dev/shm"      # and creating and removing 10,000 trial directories is fast
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "driver_scale.py"), *args],
                          capture_output=True, text=True, timeout=900, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def scale_run() -> dict:
    return run_scale()


@pytest.fixture(scope="module")
def pool_run() -> dict:
    """The worker pool (the default backend): simulated pool tasks claim runs from its queue.
    4,000 trials, four waves of 1,000 (16 of the queue's buckets): the 10,000 of the array run
    would add a minute to the suite for the same counts."""
    return run_scale("--backend", "pool", trials=POOL_TRIALS)


def test_every_trial_runs_once_and_the_slots_stay_busy(scale_run):
    assert scale_run["finished"] == 10_000
    assert scale_run["slot_utilisation"] >= 0.9, scale_run
    assert scale_run["slurm_calls_per_min"].get("scancel", 0) == 0, scale_run  # nothing was lost


def test_metadata_operations_do_not_grow_with_running_trials(scale_run):
    """Goal: at most one per running trial every 10 s (200 a second at 2,000 running)."""
    assert scale_run["steady_running"][0] >= 900, scale_run
    assert scale_run["metadata_ops_per_running_trial_s"] <= 0.1, scale_run


def test_squeue_twice_a_minute_in_a_steady_state(scale_run):
    """Polls 30 s apart while nothing changes: at most one more poll than whole 30 s in the
    window (a window of 45 s may hold two polls: a rate of 2.7 a minute)."""
    window = scale_run["steady_window_s"]
    assert window >= 40, scale_run  # a window too short to see two polls proves nothing
    gap = scale_run["steady_min_poll_gap_s"]
    assert gap is None or gap >= 29.5, scale_run
    polls = scale_run["steady_slurm_calls_per_min"].get("squeue", 0) * window / 60
    assert round(polls) <= window // 30 + 1, scale_run
    assert scale_run["steady_slurm_calls_per_min"].get("sbatch", 0) == 0, scale_run


def test_files_per_trial_and_the_drivers_footprint(scale_run):
    assert scale_run["files_per_trial"] <= FILES_PER_TRIAL, scale_run
    # a guard against regressions, not the goal of 300 MB at 100,000 trials (not met:
    # every trial's record stays in memory). About 200 MB at 10,000 trials. (It once read 602 MB
    # inside the whole suite: ru_maxrss survives exec and so counted pytest's size at fork;
    # the benchmark reads the process image's own VmHWM now.)
    assert scale_run["peak_rss_mb"] < 1000, scale_run


def test_the_pool_runs_every_trial_once_and_keeps_its_slots_busy(pool_run):
    """Every run is claimed once (a claim is one rename), and pool tasks go from run to run
    without waiting for the driver; the driver's look at the queue is a few listings however
    many pool tasks run (a directory per pool task cost 4 metadata operations per running trial
    and poll), and a finished run leaves no file in the queue."""
    assert pool_run["finished"] == POOL_TRIALS and pool_run["pool_claims"] == POOL_TRIALS, pool_run
    assert pool_run["slot_utilisation"] >= 0.9, pool_run
    assert pool_run["steady_running"][0] >= 900, pool_run
    assert pool_run["metadata_ops_per_running_trial_s"] <= 0.1, pool_run
    assert pool_run["files_per_trial"] <= FILES_PER_TRIAL, pool_run
    # what stays in pool/: each pool task's walls file, the newest run's record, the arrays' files
    assert pool_run["pool_files"] <= pool_run["slurm_tasks"] + 20, pool_run
