"""The `hpctune` command line: every command's parsing, output and error messages.

Experiments come from a tiny local-backend run (finished) and from files written
directly in the documented layout (a running experiment with Slurm job ids).
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hpctune import tune
from hpctune.cli.cancel import CANCEL_REASON
from hpctune.cli.main import main
from hpctune.storage.experiment import ExperimentDir
from tests.unit.cli_env import cli_env, run  # noqa: F401 - cli_env is autouse

REPO = Path(__file__).resolve().parents[2]

TRAINABLE = '''
from hpctune import tune

def objective(config):
    for step in range(2):
        tune.report({"score": config["a"] * 10 + step})
'''

SCRIPT = '''
import sys
from hpctune import tune
from train import objective

tuner = tune.Tuner(objective, param_space={"a": tune.grid_search([1, 2])},
                   tune_config=tune.TuneConfig(metric="score", mode="min"),
                   run_config=tune.RunConfig(verbose=0))
print("script args:", sys.argv[1:])
print("partition:", tuner.slurm_config.partition)
tuner.fit()
'''


def objective(config):
    tune.report({"score": config["a"]})


@pytest.fixture
def experiment_file(tmp_path):
    (tmp_path / "train.py").write_text(TRAINABLE)
    path = tmp_path / "exp.toml"
    path.write_text('trainable = "train.py:objective"\nmetric = "score"\nmode = "min"\n'
                    "[param_space]\na = {grid_search = [3, 1, 2]}\n")
    return path


@pytest.fixture
def finished(capsys, experiment_file):
    """A finished 3-trial experiment named 'done', run with the local backend."""
    code, out, err = run(capsys, "submit", "--name", "done", str(experiment_file))
    assert code == 0, err
    return Path(out.splitlines()[0].split("experiment ", 1)[1])


def write_running(root: Path) -> Path:
    """A running experiment as a detached driver leaves it: 2 running, 1 pending, 1 done."""
    exp = root / "live"
    (exp / "jobs").mkdir(parents=True)
    trials = []
    for i, (status, state, reason) in enumerate([("RUNNING", "RUNNING", ""), ("RUNNING", "RUNNING", ""),
                                                  ("PENDING", "PENDING", "Priority"),
                                                  ("TERMINATED", "", "")]):
        trial_id = f"abc_{i:05d}"
        job = f"900_{i}"
        (exp / "trials" / trial_id).mkdir(parents=True)
        (exp / "trials" / trial_id / "params.json").write_text(json.dumps({"lr": i / 10}))
        events = [{"event": "start", "slurm_job_id": "800_0"}, {"event": "start", "slurm_job_id": job}]
        (exp / "trials" / trial_id / "result.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
        (exp / "jobs" / f"{job}_0_log.out").write_text(f"hello from {job}\n")
        (exp / "jobs" / "800_0_0_log.out").write_text("first attempt\n")
        trials.append({"trial_id": trial_id, "config": {"lr": i / 10}, "experiment_tag": str(i),
                       "path": str(exp / "trials" / trial_id), "resources": {"cpu": 1, "gpu": 1},
                       "status": status, "job_id": job, "job_state": state, "job_reason": reason,
                       "node": "n1" if state == "RUNNING" else "",
                       "last_result": {"loss": 1 - i / 10, "training_iteration": i} if i != 2 else {}})
    (exp / "state.json").write_text(json.dumps({"trials": trials}))
    (exp / "experiment.json").write_text(json.dumps({"metric": "loss", "mode": "min"}))
    (exp / "submit.json").write_text(json.dumps({"driver_job_id": "899"}))
    (exp / "summary.json").write_text(json.dumps({
        "status": "running", "num_trials": 4, "by_status": {"RUNNING": 2, "PENDING": 1, "TERMINATED": 1},
        "metric": "loss", "mode": "min", "best": {"trial_id": "abc_00003", "value": 0.7},
        "driver": {"pid": 1, "host": "elsewhere", "slurm_job_id": "899"},
        "slurm_commands": {"sbatch": 1, "squeue": 40}, "updated": time.time()}))
    return exp


@pytest.fixture
def recorded_slurm(monkeypatch):
    """SlurmCommands.run recorded instead of run; squeue answers with canned states."""
    calls = []

    def fake_run(self, args, check=True):
        calls.append(list(args))
        out = "900_2|PENDING|QOSMaxJobsPerUserLimit|\n900_0|RUNNING|None|n2\n" if args[0] == "squeue" else ""
        return subprocess.CompletedProcess(args, 0, out, "")

    monkeypatch.setattr("hpctune.backends.slurm_commands.SlurmCommands.run", fake_run)
    return calls


# -- general -------------------------------------------------------------------------------
def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and "hpctune 0.1.0" in capsys.readouterr().out
    code, out, _ = run(capsys)
    assert code == 2 and "submit" in out and "status" in out
    for module in ("hpctune.cli", "hpctune.cli.main"):
        proc = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True, text=True)
        assert proc.returncode == 0 and proc.stdout.strip() == "hpctune 0.1.0"


def test_driver_modules_old_and_new_print_their_usage():
    for module in ("hpctune.cli.driver", "hpctune.cli.driver"):  # old scripts run cli_driver
        proc = subprocess.run([sys.executable, "-m", module], capture_output=True, text=True)
        assert proc.returncode == 2 and "usage: python -m hpctune.cli.driver" in proc.stderr


def test_profiles_command(capsys):
    code, out, _ = run(capsys, "profiles")
    assert code == 0 and "preemptible" in out and "multinode" in out
    code, out, _ = run(capsys, "profiles", "preemptible")
    assert code == 0 and "partition = 'preempt'" in out and "requeue = True" in out
    code, _, err = run(capsys, "profiles", "nosuch")
    assert code == 1 and "Unknown profile 'nosuch'" in err and "gpu" in err


# -- submit -------------------------------------------------------------------------------------
def test_submit_errors(capsys, tmp_path, experiment_file):
    code, _, err = run(capsys, "submit", "missing.toml")
    assert code == 1 and "No such file" in err and "missing.toml" in err
    code, _, err = run(capsys, "submit", "--profile", "nosuch", str(experiment_file))
    assert code == 1 and "Unknown profile 'nosuch'" in err and "preemptible" in err
    bad = tmp_path / "bad.toml"
    bad.write_text('trainable = "train.py:objective"\n[param_space]\nlr = {loguniform = "fast"}\n')
    code, _, err = run(capsys, "submit", str(bad))
    assert code == 1 and "param_space.lr: expected a table like {loguniform = [1e-4, 1e-1]}" in err
    (tmp_path / "notes.txt").write_text("x")
    code, _, err = run(capsys, "submit", "notes.txt")
    assert code == 1 and "expected a Python script" in err
    code, _, err = run(capsys, "submit", "--sbatch", "noequals", str(experiment_file))
    assert code == 1 and "KEY=VALUE" in err
    with pytest.raises(SystemExit):
        main(["submit", "--time-min", "soon", str(experiment_file)])


def test_dry_run_prints_driver_and_trial_scripts_with_overrides(capsys, experiment_file):
    code, out, err = run(capsys, "submit", "--dry-run", "--detach", "--profile", "gpu",
                         "--partition", "urgent", "--time-min", "7", "--max-concurrent", "2",
                         "--sbatch", "reservation=ml", "--driver-partition", "debug",
                         "--name", "dry", str(experiment_file))
    assert code == 0, err
    driver, trials = out.split("# ---- trials")
    assert "#SBATCH --job-name=hpctune-driver-dry" in driver
    assert "#SBATCH --requeue" in driver and "#SBATCH --cpus-per-task=1" in driver
    assert "#SBATCH --partition=debug" in driver and "#SBATCH --signal=B:USR1@120" in driver
    assert "-m hpctune.cli.driver " in driver and "module load cuda" in driver
    assert "#SBATCH --array=0-1%2" in trials and "#SBATCH --gres=gpu:1" in trials  # 2 pool tasks
    assert "-m hpctune.pool" in trials
    assert "#SBATCH --partition=urgent" in trials and "#SBATCH --time=7" in trials
    assert "#SBATCH --reservation=ml" in trials and "#SBATCH --cpus-per-task=2" in trials
    assert not (Path("results") / "dry").exists()


def test_dry_run_of_a_script_and_script_only_rules(capsys, tmp_path, experiment_file):
    (tmp_path / "run.py").write_text(SCRIPT)
    code, out, err = run(capsys, "submit", "--dry-run", "--partition", "urgent", "--gpus", "1",
                         "run.py", "--epochs", "3")
    assert code == 0, err
    assert "script args: ['--epochs', '3']" in out
    assert "#SBATCH --partition=urgent" in out and "#SBATCH --gres=gpu:1" in out
    assert "#SBATCH --array=0-1%2" in out
    code, _, err = run(capsys, "submit", "--num-samples", "3", "run.py")
    assert code == 1 and "--num-samples applies to experiment files" in err
    code, _, err = run(capsys, "submit", str(experiment_file), "--oops")
    assert code == 1 and "Put hpctune's options before the file" in err


def test_submit_experiment_file_in_the_foreground(capsys, finished):
    assert (finished / "summary.json").exists()
    summary = json.loads((finished / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["num_trials"] == 3
    assert summary["best"]["config"] == {"a": 1}
    code, _, err = run(capsys, "submit", "--name", "done", "exp.toml")
    assert code == 1 and "already holds an experiment" in err and "hpctune resume done" in err


def test_submit_script_in_the_foreground_pins_the_experiment(capsys, tmp_path):
    (tmp_path / "train.py").write_text(TRAINABLE)
    (tmp_path / "run.py").write_text(SCRIPT)
    code, out, err = run(capsys, "submit", "--name", "scripted", "--partition", "urgent", "run.py", "x")
    assert code == 0, err
    assert "script args: ['x']" in out
    assert "partition: urgent" in out  # the CLI option reached the script's Tuner
    summary = json.loads((tmp_path / "results" / "scripted" / "summary.json").read_text())
    assert summary["num_trials"] == 2 and summary["status"] == "finished"
    outside = tune.Tuner(objective, param_space={"a": 1})  # the overrides ended with the script
    assert outside.slurm_config.partition is None and outside.run_config.name is None


def test_resume_a_finished_experiment(capsys, finished):
    code, out, err = run(capsys, "resume", "done")
    assert code == 0, err
    assert "3 trials: 3 terminated" in out
    code, _, err = run(capsys, "resume", "nosuch")
    assert code == 1 and "No experiment 'nosuch'" in err


# -- ls / status -------------------------------------------------------------------------------------
def test_ls(capsys, tmp_path, finished):
    write_running(tmp_path / "results")
    queued = tmp_path / "results" / "waiting"
    queued.mkdir()
    (queued / "submit.json").write_text(json.dumps({"driver_job_id": "1234"}))
    code, out, _ = run(capsys, "ls")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert "finished" in rows["done"] and "score=11" in rows["done"] and "3T" in rows["done"]
    assert "running" in rows["live"] and "loss=0.7" in rows["live"] and "Slurm job 899" in rows["live"]
    assert "queued (driver job 1234)" in rows["waiting"]
    code, out, _ = run(capsys, "ls", str(tmp_path / "xdg"))
    code, _, err = run(capsys, "ls", str(tmp_path / "nothing-here"))
    assert code == 1 and "does not exist" in err


def test_stale_running_experiment_is_flagged(capsys, tmp_path):
    exp = write_running(tmp_path / "results")
    summary = json.loads((exp / "summary.json").read_text())
    summary["updated"] = time.time() - 600
    (exp / "summary.json").write_text(json.dumps(summary))
    code, out, _ = run(capsys, "ls")
    assert "running? (no update for 10m)" in out


def test_status_of_a_running_experiment_asks_squeue_once(capsys, tmp_path, recorded_slurm):
    write_running(tmp_path / "results")
    code, out, err = run(capsys, "status", "live")
    assert code == 0, err
    assert [c[0] for c in recorded_slurm] == ["squeue"] and "900" in recorded_slurm[0]
    assert "Number of trials: 4 (2 RUNNING, 1 PENDING, 1 TERMINATED)" in out
    assert "PENDING (QOSMaxJobsPerUserLimit)" in out
    assert "Slurm commands issued by the driver: 1 sbatch, 40 squeue" in out
    assert "driver: Slurm job 899 on elsewhere" in out
    assert "Current best trial: abc_00003 with loss=0.7" in out
    recorded_slurm.clear()
    code, out, _ = run(capsys, "status", "live", "--no-squeue", "--max-rows", "2")
    assert recorded_slurm == [] and "PENDING (Priority)" not in out and "more trials" in out


def test_status_of_a_finished_experiment_and_unknown_names(capsys, finished, recorded_slurm):
    code, out, _ = run(capsys, "status", str(finished))
    assert code == 0 and "Experiment finished" in out and "3 TERMINATED" in out
    assert recorded_slurm == []
    code, _, err = run(capsys, "status", "dome")
    assert code == 1 and "No experiment 'dome'" in err and "Did you mean: done" in err


# -- trials / best -------------------------------------------------------------------------------------
def test_trials_table_sort_filter_columns_output(capsys, tmp_path, finished):
    code, out, _ = run(capsys, "trials", "done")
    header = out.splitlines()[0].split()
    assert code == 0 and header[:3] == ["trial_id", "status", "job_id"]
    assert "config/a" in header and "score" in header
    code, out, _ = run(capsys, "trials", "done", "--sort", "score", "--desc", "--columns", "config/a,score")
    assert [line.split()[0] for line in out.splitlines()[2:]] == ["3", "2", "1"]
    code, out, _ = run(capsys, "trials", "done", "--filter", "score < 20", "--filter", "status == TERMINATED",
                       "--columns", "config/a", "--output", "picked.csv")
    assert [line.strip() for line in out.splitlines()[2:-1]] == ["1"]
    assert out.splitlines()[-1] == "Output saved at: picked.csv"
    assert (tmp_path / "picked.csv").read_text().splitlines() == ["config/a", "1"]
    run(capsys, "trials", "done", "--columns", "trial_id,score", "--sort", "score", "--output", "all.json")
    assert [r["score"] for r in json.loads((tmp_path / "all.json").read_text())] == [11, 21, 31]
    code, out, _ = run(capsys, "trials", "done", "--limit", "1")
    assert "(2 more rows" in out


@pytest.mark.parametrize("argv, message", [
    (["--columns", "scor"], "--columns: unknown column 'scor'; did you mean score"),
    (["--sort", "nope"], "--sort: unknown column 'nope'"),
    (["--filter", "scor > 1"], "--filter: unknown column 'scor'"),
    (["--filter", "score ~ 1"], 'expected "<column> <op> <value>"'),
    (["--output", "x.parquet"], "use a .csv or .json file name"),
])
def test_trials_errors(capsys, finished, argv, message):
    code, _, err = run(capsys, "trials", "done", *argv)
    assert code == 1 and message in err


def test_best(capsys, finished):
    code, out, _ = run(capsys, "best", "done")
    assert code == 0 and "score=11 (min)" in out and 'Config: {"a": 1}' in out and "Checkpoint: none" in out
    code, out, _ = run(capsys, "best", "done", "--mode", "max", "--json")
    record = json.loads(out)
    assert record["config"] == {"a": 3} and record["value"] == 31 and record["metrics"]["training_iteration"] == 2
    code, _, err = run(capsys, "best", "done", "--metric", "acc")
    assert code == 1 and "No trial reported a finite `acc`" in err and "score" in err


def test_best_needs_a_metric(capsys, tmp_path):
    exp = write_running(tmp_path / "results")
    for name in ("summary.json", "experiment.json"):
        (exp / name).unlink()
    code, _, err = run(capsys, "best", "live")
    assert code == 1 and "--metric NAME --mode min|max" in err


# -- logs / cancel -------------------------------------------------------------------------------------
def test_logs_across_jobs_and_the_driver_log(capsys, tmp_path):
    exp = write_running(tmp_path / "results")
    code, out, _ = run(capsys, "logs", "live", "1")
    assert code == 0
    assert out.index("800_0_0_log.out") < out.index("first attempt") < out.index("900_1_0_log.out")
    assert "hello from 900_1" in out and ".err" not in out  # one log per job: stderr is in the .out
    assert out.count("==> ") == 2
    code, out, _ = run(capsys, "logs", "live", "abc_00001", "--stream", "err")
    assert "900_1_0_log.out" in out and "hello from 900_1" in out  # stderr: the merged log
    (exp / "jobs" / "800_0_0_log.err").write_text("an older hpctune's stderr\n")
    code, out, _ = run(capsys, "logs", "live", "abc_00001", "--stream", "err")
    assert "800_0_0_log.err" in out and "800_0_0_log.out" not in out and "an older hpctune's stderr" in out
    (exp / "driver.log").write_text("driver says hi\n")
    code, out, _ = run(capsys, "logs", "live", "driver")
    assert "driver says hi" in out
    code, _, err = run(capsys, "logs", "live", "7")
    assert code == 1 and "matches no trial" in err and "abc_00000" in err


def test_logs_of_a_local_trial(capsys, finished):
    code, out, _ = run(capsys, "logs", "done", "0")
    assert code == 0 and "jobs/local-" in out


def test_cancel_everything_is_one_scancel(capsys, tmp_path, recorded_slurm):
    exp = write_running(tmp_path / "results")
    code, out, _ = run(capsys, "cancel", "live")
    assert code == 0
    assert recorded_slurm == [["scancel", "899", "900_0", "900_1", "900_2"]]
    assert "Cancelling 3 trial(s)" in out
    control = ExperimentDir(exp).read_control("abc_00000")
    assert control.is_stop and not control.final and control.reason == CANCEL_REASON
    assert not (exp / "trials" / "abc_00003" / "control.json").exists()


def test_cancel_some_trials(capsys, tmp_path, recorded_slurm, finished):
    write_running(tmp_path / "results")
    code, out, _ = run(capsys, "cancel", "live", "1", "abc_00002")
    assert recorded_slurm == [["scancel", "900_1", "900_2"]]
    code, out, _ = run(capsys, "cancel", "done")
    assert "Nothing to cancel" in out and len(recorded_slurm) == 1


def test_cli_default_storage_is_the_configs():
    """cli.common keeps its own copy (``hpctune ls`` does not import hpctune.config)."""
    from hpctune.cli.common import DEFAULT_STORAGE
    from hpctune.config import DEFAULT_STORAGE as CONFIG_DEFAULT

    assert DEFAULT_STORAGE == CONFIG_DEFAULT


def test_ls_imports_only_its_command(tmp_path):
    """`hpctune ls` imports the module of its command alone, and none of the heavy ones."""
    code = ("import sys; from hpctune.cli.main import main; main(['ls', sys.argv[1]]); "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('hpctune'))))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                         check=True).stdout.splitlines()[-1].split()
    for heavy in ("hpctune.cli.submit", "hpctune.cli.trials", "hpctune.config", "hpctune.display.reporter",
                  "hpctune.storage.journal", "hpctune.tune.experiment.trial", "hpctune.backends.slurm_limits"):
        assert heavy not in out
    assert "hpctune.cli.inspect" in out
