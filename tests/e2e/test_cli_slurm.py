"""`hpctune` against the Slurm lab: a detached driver that survives a requeue, array splitting,
cancel. Each test writes its own trainable and experiment file under tmp_path."""

import json
from pathlib import Path

import pytest

from hpctune.cli.main import main
from tests.conftest import run, squeue_states, unique_name, wait_for
from tests.e2e.state import state_of, trials_of

pytestmark = pytest.mark.slurm

TRAINABLE = '''
import time
from hpctune import tune

def slow(config):
    for step in range(config["steps"]):
        time.sleep(config["sleep"])
        tune.report({"loss": config["x"] / (step + 1)})
'''


@pytest.fixture
def storage(tmp_path, monkeypatch):
    monkeypatch.setenv("HPCTUNE_STORAGE_PATH", str(tmp_path / "res"))
    monkeypatch.setenv("HPCTUNE_BACKEND", "slurm")
    return tmp_path / "res"


def experiment(tmp_path: Path, trials: int, steps: int, sleep: float, concurrent: int,
               reuse_actors: bool | None = None) -> Path:
    """An experiment file; ``reuse_actors=False``: one Slurm job per trial (None: the default,
    a worker pool)."""
    (tmp_path / "train_slow.py").write_text(TRAINABLE)
    path = tmp_path / "exp.toml"
    path.write_text(f'''trainable = "train_slow.py:slow"
metric = "loss"
mode = "min"
max_concurrent_trials = {concurrent}
{"" if reuse_actors is None else f"reuse_actors = {str(reuse_actors).lower()}"}
[param_space]
x = {{grid_search = {list(range(1, trials + 1))}}}
steps = {steps}
sleep = {sleep}
[slurm]
time_min = 5
poll_interval_s = 0.5
''')
    return path


def events(trial_dir: Path) -> list[dict]:
    lines = (trial_dir / "result.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def summary(root: Path) -> dict:
    try:
        return json.loads((root / "summary.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}


def test_detached_driver_is_requeued_and_the_experiment_completes_once(tmp_path, storage, capsys):
    name = unique_name("req")
    assert main(["submit", "--detach", "--name", name, str(experiment(tmp_path, 6, 20, 1.0, 6))]) == 0
    root = storage / name
    driver = json.loads((root / "submit.json").read_text())["driver_job_id"]
    capsys.readouterr()

    def reporting():
        trials = trials_of(root)
        return any(t["last_result"] for t in trials)

    wait_for(reporting, timeout=90, interval=0.5, what="first results")
    assert main(["status", name]) == 0
    shown = capsys.readouterr().out
    assert "Experiment running" in shown and f"driver: Slurm job {driver}" in shown
    assert "RUNNING" in shown and "Slurm commands issued by the driver:" in shown

    run(["scontrol", "requeue", driver], check=True)
    wait_for(lambda: summary(root).get("status") == "finished", timeout=150, interval=1,
             what="the requeued driver to finish the experiment")
    log = (root / "driver.log").read_text()
    assert "restart 1" in log and "resuming with Tuner.restore" in log, log[-3000:]
    after_restart = log.split("resuming with Tuner.restore", 1)[1]
    assert "RUNNING" in after_restart.split("== Status ==\n")[0], log[-3000:]  # re-attached to live jobs
    trial_dirs = sorted((root / "trials").iterdir())
    assert len(trial_dirs) == 6
    for trial_dir in trial_dirs:
        kinds = [e["event"] for e in events(trial_dir)]
        iterations = [e["result"]["training_iteration"] for e in events(trial_dir) if e["event"] == "result"]
        assert kinds.count("start") == 1 and kinds.count("complete") == 1, (trial_dir, kinds)
        assert iterations == list(range(1, 21)), (trial_dir, iterations)
    assert summary(root)["by_status"] == {"TERMINATED": 6}
    assert main(["ls"]) == 0 and "finished" in capsys.readouterr().out


def test_arrays_are_split_to_the_max_array_size(tmp_path, storage, capsys):
    path = experiment(tmp_path, 7, 1, 0.0, 7, reuse_actors=False)  # arrays of one job per trial
    name = unique_name("split")
    assert main(["submit", "--max-array-size", "3", "--name", name, str(path)]) == 0
    state = state_of(storage / name)  # the base and the journal, as hpctune reads them
    jobs = [t["job_id"].split("_") for t in state["trials"]]  # in trial order
    arrays = sorted({array for array, _ in jobs}, key=int)
    assert [(arrays.index(array), int(task)) for array, task in jobs] == [
        (i // 3, i % 3) for i in range(7)]  # arrays of 3, 3 and 1
    assert [t["status"] for t in state["trials"]] == ["TERMINATED"] * 7
    capsys.readouterr()
    assert main(["status", name]) == 0
    assert "3 sbatch" in capsys.readouterr().out


def test_cancel_stops_the_driver_and_every_trial_with_one_scancel(tmp_path, storage, capsys):
    name = unique_name("stopme")
    assert main(["submit", "--detach", "--name", name, str(experiment(tmp_path, 4, 60, 1.0, 4,
                                                                      reuse_actors=False))]) == 0
    root = storage / name
    driver = json.loads((root / "submit.json").read_text())["driver_job_id"]

    def submitted():
        trials = trials_of(root)
        if not trials:
            return None
        return [t["job_id"] for t in trials if t["job_id"]]

    job_ids = wait_for(submitted, timeout=90, interval=0.5, what="trial jobs")
    capsys.readouterr()
    assert main(["cancel", name]) == 0
    assert f"scancel {driver} " in capsys.readouterr().out

    array = job_ids[0].split("_")[0]

    def gone():
        states = {**squeue_states(driver), **squeue_states(array)}
        active = ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING")
        return states if all(s not in active for s in states.values()) else None

    states = wait_for(gone, timeout=60, interval=0.5,
                      what="the driver and trial jobs to leave the queue")
    # the driver and the trials' array (its 4 tasks, or one record while none had started)
    # ended by the cancel, none by finishing (60 s each)
    assert {job.split("_")[0] for job in states} == {driver, array}, states
    assert set(states.values()) == {"CANCELLED"}, states
