"""The detached driver on the lab: it requeues itself when Slurm warns of its time limit (the
USR1 of ``--signal=B:USR1@...``), and ``hpctune resume --detach`` continues an experiment whose
foreground driver was killed; either way every trial runs exactly once."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hpctune.cli.main import main
from tests.conftest import run, unique_name, wait_for
from tests.e2e.state import trials_of
from tests.e2e.test_cli_slurm import events, experiment, summary

pytestmark = pytest.mark.slurm


@pytest.fixture
def storage(tmp_path, monkeypatch):
    monkeypatch.setenv("HPCTUNE_STORAGE_PATH", str(tmp_path / "res"))
    monkeypatch.setenv("HPCTUNE_BACKEND", "slurm")
    return tmp_path / "res"


def reporting(root: Path) -> bool:
    return any(t["last_result"] for t in trials_of(root))


def assert_each_trial_ran_once(root: Path, trials: int, steps: int) -> None:
    trial_dirs = sorted((root / "trials").iterdir())
    assert len(trial_dirs) == trials
    for trial_dir in trial_dirs:
        kinds = [e["event"] for e in events(trial_dir)]
        iterations = [e["result"]["training_iteration"] for e in events(trial_dir) if e["event"] == "result"]
        assert kinds.count("start") == 1 and kinds.count("complete") == 1, (trial_dir, kinds)
        assert iterations == list(range(1, steps + 1)), (trial_dir, iterations)
    assert summary(root)["by_status"] == {"TERMINATED": trials}


def test_time_limit_warning_makes_the_driver_requeue_itself(tmp_path, storage, capsys):
    name = unique_name("usr1")
    assert main(["submit", "--detach", "--name", name, str(experiment(tmp_path, 3, 12, 1.0, 3))]) == 0
    root = storage / name
    driver = json.loads((root / "submit.json").read_text())["driver_job_id"]
    wait_for(lambda: reporting(root), timeout=90, interval=0.5, what="first results")
    # what Slurm sends DRIVER_SIGNAL_LEAD_S before the driver job's time limit
    run(["scancel", "--batch", "--signal=USR1", driver], check=True)
    wait_for(lambda: summary(root).get("status") == "finished", timeout=150, interval=1,
             what="the self-requeued driver to finish the experiment")
    log = (root / "driver.log").read_text()
    assert f"time limit near: requeueing job {driver}" in log, log[-3000:]
    assert "restart 1" in log and "resuming with Tuner.restore" in log, log[-3000:]
    assert_each_trial_ran_once(root, 3, 12)


def test_resume_detach_continues_a_killed_foreground_driver(tmp_path, storage, capsys):
    name = unique_name("resdet")
    path = experiment(tmp_path, 3, 12, 1.0, 3)
    foreground = subprocess.Popen([sys.executable, "-m", "hpctune.cli.main", "submit", "--name", name, str(path)],
                                  cwd=tmp_path, env=os.environ.copy(), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
    root = storage / name
    try:
        wait_for(lambda: reporting(root), timeout=90, interval=0.5, what="first results")
    finally:
        foreground.send_signal(signal.SIGKILL)
        foreground.wait()
    assert summary(root).get("status") == "running"  # as a killed driver leaves it
    assert main(["resume", name, "--detach"]) == 0
    assert "Submitted driver job" in capsys.readouterr().out
    wait_for(lambda: summary(root).get("status") == "finished", timeout=150, interval=1,
             what="the detached driver to finish the experiment")
    assert "resuming with Tuner.restore" in (root / "driver.log").read_text()
    assert_each_trial_ran_once(root, 3, 12)
