"""A driver started the way a user may start it from a script, `nohup python train.py <&- &`
(SIGINT, SIGQUIT and SIGHUP ignored, no terminal, stdin closed, no TERM, a narrow COLUMNS,
another working directory): it runs its trials on local workers, and `hpctune cancel`, started
the same way, stops it and its workers (issue 21)."""

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from hpctune.storage.result_log import read_events
from tests.conftest import REPO_ROOT, as_background_job, wait_for
from tests.e2e.state import trials_of

DRIVER = """
import sys
sys.path.insert(0, {repo!r})
from hpctune import tune
from tests.e2e import trainables
grid = tune.Tuner(
    trainables.checkpointed_counter,
    param_space={{"x": tune.grid_search([0, 1]), "iterations": 100, "sleep": 0.2}},
    tune_config=tune.TuneConfig(max_concurrent_trials=2),
    run_config=tune.RunConfig(name="bg", storage_path={storage!r}),
).fit()
print("RESULTS", len(grid))
"""


def worker_pids(exp: Path) -> list[int]:
    """The pids of the workers once every trial has reported, else []."""
    trials = trials_of(exp)
    if len(trials) < 2 or any(t["num_results"] < 1 for t in trials):
        return []
    return [e["pid"] for t in trials for e in read_events(exp / "trials" / t["trial_id"] / "result.jsonl")
            if e["event"] == "start"]


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("sigint_handler", ["hpctune's", "disabled"])
def test_cancel_stops_a_driver_started_as_a_background_job(tmp_path, sigint_handler):
    """hpctune's handler catches SIGINT even though the driver inherited SIG_IGN: a clean stop.
    With TUNE_DISABLE_SIGINT_HANDLER=1 the driver never sees SIGINT: cancel sends SIGTERM."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(DRIVER.format(repo=str(REPO_ROOT), storage=str(tmp_path))))
    env = {"HPCTUNE_BACKEND": "local"}
    if sigint_handler == "disabled":
        env["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    driver = subprocess.Popen([sys.executable, str(script)], cwd=elsewhere, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, **as_background_job(env))
    exp = tmp_path / "bg"
    try:
        workers = wait_for(lambda: worker_pids(exp), timeout=90, what="both trials' first results")
        cancel = subprocess.run([sys.executable, "-m", "hpctune.cli.main", "cancel", str(exp)], cwd=elsewhere,
                                capture_output=True, text=True, timeout=60, **as_background_job())
        out, err = driver.communicate(timeout=60)
    finally:
        driver.kill()
    assert cancel.returncode == 0, cancel.stderr
    if sigint_handler == "disabled":
        assert "ignores SIGINT" in cancel.stdout and "sent SIGTERM" in cancel.stdout, cancel.stdout
        assert driver.returncode == -signal.SIGTERM, err
    else:
        assert f"Interrupted the driver (pid {driver.pid})" in cancel.stdout, cancel.stdout
        assert driver.returncode == 0 and "RESULTS 2" in out, err
        assert json.loads((exp / "summary.json").read_text())["status"] == "interrupted"
    wait_for(lambda: not any(alive(pid) for pid in workers), timeout=30, what="the workers to end")
    assert list(elsewhere.iterdir()) == []  # nothing written to the working directory
