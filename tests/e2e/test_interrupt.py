"""Ctrl+C on the driver: state saved, jobs cancelled (or kept), and the experiment resumes."""

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hpctune import tune
from hpctune.storage.result_log import read_events
from tests.conftest import REPO_ROOT, run, unique_name, wait_for
from tests.e2e import trainables
from tests.e2e.state import trials_of

DRIVER = """
import sys
sys.path.insert(0, {repo!r})
from hpctune import tune
from tests.e2e import trainables
grid = tune.Tuner(
    trainables.checkpointed_counter,
    param_space={{"x": tune.grid_search(list(range(4))), "iterations": 8, "sleep": 0.5}},
    tune_config=tune.TuneConfig(max_concurrent_trials=2),
    run_config=tune.RunConfig(name={name!r}, storage_path={storage!r}, verbose=0,
                              keep_jobs_on_interrupt={keep!r},
                              slurm=tune.SlurmConfig(poll_interval_s=0.5)),
).fit()
print("RESULTS", len(grid))
"""


@pytest.mark.slurm
@pytest.mark.parametrize("keep", [False, True], ids=["cancel", "keep"])
def test_ctrl_c_saves_state_and_resumes(tmp_path, monkeypatch, keep):
    monkeypatch.setenv("HPCTUNE_BACKEND", "slurm")
    name = unique_name("int")
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(DRIVER.format(repo=str(REPO_ROOT), storage=str(tmp_path),
                                                    keep=keep, name=name)))
    driver = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    exp = tmp_path / name

    def running():
        trials = trials_of(exp)
        return any(t["num_results"] >= 2 for t in trials)

    wait_for(running, timeout=60)
    driver.send_signal(signal.SIGINT)
    out, err = driver.communicate(timeout=60)
    assert driver.returncode == 0, err
    assert "RESULTS 4" in out and "interrupted" in err
    summary = json.loads((exp / "summary.json").read_text())
    assert summary["status"] == "interrupted"

    def queued():
        return run(["squeue", "-h", "-n", f"hpctune-{name}", "-o", "%i"]).stdout.split()

    if keep:
        assert queued(), "the jobs should have kept running"
    else:
        wait_for(lambda: not queued(), timeout=30, what="cancelled jobs to leave the queue")
    grid = tune.Tuner.restore(str(exp), trainables.checkpointed_counter).fit()
    assert grid.num_terminated == 4, [str(e) for e in grid.errors]
    assert sorted(r.metrics["n"] for r in grid) == [8, 8, 8, 8]
    for result in grid:
        log = read_events(Path(result.path) / "result.jsonl")
        starts = [i for i, e in enumerate(log) if e["event"] == "start"]
        # kept: re-attached to the jobs that kept running, none submitted again;
        # cancelled: a trial that was running runs once more, from its checkpoint
        assert len(starts) == 1 if keep else len(starts) in (1, 2), (result.trial_id, log)
        last_run = log[starts[-1]:]
        resumed = [e["result"]["n"] for e in last_run if e["event"] == "result"]
        assert resumed == list(range(last_run[0]["restored_iteration"] + 1, 9)), log
