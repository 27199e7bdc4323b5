"""The `hpctune` command against hostile or damaged files and bad input (issue 16).

* cancel: a driver pid is signalled only if /proc confirms it is that driver; job ids read
  from files are checked before any command; nothing is written when one is forged;
* ls/status/trials/logs: a damaged file gives a row marked unreadable or a one-line error;
* limits: non-positive numbers are refused by the parser;
* submit: a script's own RunConfig(name, storage_path) is honoured, also when detached;
  the detached driver's values are checked (no control character) and quoted.
"""

import json
import os
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest

from hpctune.cli.main import main
from hpctune.storage.process import (
    driver_record,
    process_cmdline,
    process_start_time,
    recorded_driver_pid,
)
from hpctune.storage.summary import experiment_summary
from tests.unit.cli_env import cli_env, run  # noqa: F401 - cli_env is autouse

TRAINABLE = '''
from hpctune import tune

def objective(config):
    tune.report({"score": config["a"] * 10})
'''

OWN_RUN_CONFIG = '''
import sys
from hpctune import tune
from train import objective

print("top of the script ran")
tuner = tune.Tuner(objective, param_space={"a": tune.grid_search([1, 2])},
                   tune_config=tune.TuneConfig(metric="score", mode="min"),
                   run_config=tune.RunConfig(name="own-name", storage_path=sys.argv[1], verbose=0))
tuner.fit()
'''


@pytest.fixture
def slurm_calls(monkeypatch):
    """Slurm commands recorded, not run; sbatch answers job 4242, squeue nothing."""
    calls = []

    def fake_run(self, args, check=True):
        calls.append(list(args))
        return subprocess.CompletedProcess(args, 0, "4242\n" if args[0] == "sbatch" else "", "")

    monkeypatch.setattr("hpctune.backends.slurm_commands.SlurmCommands.run", fake_run)
    return calls


def running_experiment(root: Path, job_ids=("900_0", "900_1"), driver=None, driver_job=None) -> Path:
    """A running experiment in the documented layout: one live trial per job id."""
    exp = root / "live"
    (exp / "jobs").mkdir(parents=True)
    trials = []
    for i, job in enumerate(job_ids):
        trial_id = f"abc_{i:05d}"
        (exp / "trials" / trial_id).mkdir(parents=True)
        trials.append({"trial_id": trial_id, "config": {"a": i}, "experiment_tag": str(i),
                       "status": "RUNNING", "job_id": job, "path": str(exp / "trials" / trial_id)})
    (exp / "state.json").write_text(json.dumps({"trials": trials}))
    (exp / "experiment.json").write_text(json.dumps({"metric": "score", "mode": "min"}))
    if driver_job is not None:
        (exp / "submit.json").write_text(json.dumps({"driver_job_id": driver_job}))
    (exp / "summary.json").write_text(json.dumps({
        "status": "running", "num_trials": len(trials), "by_status": {"RUNNING": len(trials)},
        "metric": "score", "mode": "min", "best": None, "driver": driver or {},
        "updated": time.time()}))
    return exp


@pytest.fixture
def sleeper(request, monkeypatch):
    """A `sleep 60` process standing in for the driver, and os.kill as cancel sees it: calls
    recorded, only the sleeper really signalled (a wrong pid from a regression must not hit
    anything else). SIGINT and SIGTERM end the sleeper, as they end a driver, whatever the
    shell running the tests ignores; the signals in ``request.param`` (indirect
    parametrization) it ignores instead, as a driver started with ``&`` may."""
    ignored = getattr(request, "param", ())

    def dispositions() -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN if signum in ignored else signal.SIG_DFL)

    proc = subprocess.Popen(["sleep", "60"], preexec_fn=dispositions)
    real_kill, sent = os.kill, []

    def guarded_kill(pid, sig):
        sent.append((pid, sig))
        if pid == proc.pid:
            real_kill(pid, sig)

    monkeypatch.setattr("hpctune.cli.cancel.os.kill", guarded_kill)
    yield proc, sent
    proc.kill()
    proc.wait()


def identity(pid):
    return {"pid": pid, "host": socket.gethostname(), "start_time": process_start_time(pid),
            "cmdline": process_cmdline(pid)}


# -- cancel: the driver's pid ------------------------------------------------------------------
@pytest.mark.parametrize("forge, why", [
    ({"start_time": "+1"}, "another process that started later"),
    ({"cmdline": ["python", "-m", "hpctune.cli.driver"]}, "runs another command"),
    ({"start_time": None}, "no start time or command line"),
    ({"boot_id": "another-boot"}, "another process that started later"),
])
def test_cancel_does_not_signal_a_pid_that_is_not_the_driver(capsys, tmp_path, sleeper, slurm_calls,
                                                            forge, why):
    proc, sent = sleeper
    driver = identity(proc.pid)
    if forge.get("start_time") == "+1":
        forge = {"start_time": driver["start_time"] + 1}
    driver.update(forge)
    running_experiment(tmp_path / "results", driver=driver)
    code, out, err = run(capsys, "cancel", "live")
    assert code == 0, err
    assert sent == [] and proc.poll() is None  # not signalled: the sleeper still sleeps
    assert "The driver is not running (stale record" in out and why in out
    assert slurm_calls == [["scancel", "900_0", "900_1"]]  # the trials are cancelled all the same


@pytest.mark.parametrize("pid", [0, -1, 1, "12; rm -rf /", True])
def test_cancel_refuses_pids_that_are_not_process_ids(capsys, tmp_path, sleeper, slurm_calls, pid):
    _, sent = sleeper
    running_experiment(tmp_path / "results", driver={**identity(os.getpid()), "pid": pid})
    code, out, _ = run(capsys, "cancel", "live")
    assert code == 0 and sent == []
    assert ("is not a process id" in out) or pid == 0  # pid 0: no driver recorded


def test_cancel_signals_the_driver_it_recorded(capsys, tmp_path, sleeper, slurm_calls):
    proc, sent = sleeper
    running_experiment(tmp_path / "results", driver=identity(proc.pid))
    code, out, _ = run(capsys, "cancel", "live")
    assert code == 0 and f"Interrupted the driver (pid {proc.pid})" in out
    assert sent == [(proc.pid, signal.SIGINT)] and proc.wait(timeout=10) == -signal.SIGINT


@pytest.mark.parametrize("sleeper", [(signal.SIGINT,)], indirect=True, ids=["ignores-INT"])
def test_cancel_sends_sigterm_to_a_driver_that_ignores_sigint(capsys, tmp_path, sleeper, slurm_calls):
    """A driver started with `&` and TUNE_DISABLE_SIGINT_HANDLER=1 never sees SIGINT."""
    proc, sent = sleeper
    running_experiment(tmp_path / "results", driver=identity(proc.pid))
    code, out, _ = run(capsys, "cancel", "live")
    assert code == 0 and f"The driver (pid {proc.pid}) ignores SIGINT" in out and "sent SIGTERM" in out
    assert sent == [(proc.pid, signal.SIGTERM)] and proc.wait(timeout=10) == -signal.SIGTERM
    assert slurm_calls == [["scancel", "900_0", "900_1"]]


@pytest.mark.parametrize("sleeper", [(signal.SIGINT, signal.SIGTERM)], indirect=True, ids=["ignores-INT-TERM"])
def test_cancel_says_so_when_the_driver_ignores_every_signal_it_could_send(capsys, tmp_path, sleeper,
                                                                        slurm_calls):
    proc, sent = sleeper
    running_experiment(tmp_path / "results", driver=identity(proc.pid))
    code, out, _ = run(capsys, "cancel", "live")
    assert code == 0 and "ignores SIGINT and SIGTERM: no signal was sent" in out
    assert f"kill -KILL {proc.pid}" in out and sent == [] and proc.poll() is None
    assert slurm_calls == [["scancel", "900_0", "900_1"]]


def test_the_summary_records_who_the_driver_is():
    record = experiment_summary([], None, None, "running", {})["driver"]
    assert record["pid"] == os.getpid() and record["host"] == socket.gethostname()
    assert record["start_time"] == process_start_time(os.getpid()) > 0
    assert record["cmdline"] == process_cmdline(os.getpid()) and record["cmdline"]
    assert recorded_driver_pid(driver_record()) == (os.getpid(), "")
    assert recorded_driver_pid({**record, "host": "elsewhere"})[0] is None


# -- cancel and status: job ids from files -------------------------------------------------------
def test_a_forged_job_id_in_state_json_is_refused_before_anything(capsys, tmp_path, slurm_calls):
    exp = running_experiment(tmp_path / "results", job_ids=("900_0", "--user=root"))
    code, _, err = run(capsys, "cancel", "live")
    assert code == 1 and "'--user=root' is not a Slurm job id" in err
    assert slurm_calls == []  # no scancel at all
    assert not list(exp.glob("trials/*/control.json"))  # and no stop request written
    code, _, err = run(capsys, "status", "live")
    assert code == 0, err
    assert len(slurm_calls) == 1 and slurm_calls[0][0] == "squeue"
    assert "--user=root" not in " ".join(slurm_calls[0]) and "900" in " ".join(slurm_calls[0])


def test_a_forged_driver_job_id_is_refused(capsys, tmp_path, slurm_calls):
    running_experiment(tmp_path / "results", driver_job="1 --signal=KILL")
    code, _, err = run(capsys, "cancel", "live")
    assert code == 1 and "is not a Slurm job id" in err and slurm_calls == []


def test_logs_never_open_a_path_made_from_a_forged_job_id(capsys, tmp_path):
    exp = running_experiment(tmp_path / "results", job_ids=("900_0",))
    secret = exp / "jobs" / "../../secret_0_log.out"  # where the forged id leads
    secret.write_text("not a log\n")
    event = {"event": "start", "slurm_job_id": "../../secret"}
    (exp / "trials" / "abc_00000" / "result.jsonl").write_text(json.dumps(event) + "\n")
    code, out, _ = run(capsys, "logs", "live", "0")
    assert code == 0 and "not a log" not in out and "900_0" in out


# -- damaged files and bad input ------------------------------------------------------------------
def test_ls_shows_damaged_experiments_without_hiding_the_others(capsys, tmp_path):
    root = tmp_path / "results"
    good = running_experiment(root)
    damaged = {"empty": b"", "torn": b'{"status": "runn', "binary": b"\xff\xfe\x00",
               "list": b"[1, 2]", "types": json.dumps({"status": "running", "updated": "yesterday"}).encode()}
    for name, content in damaged.items():
        (root / name).mkdir()
        (root / name / good.joinpath("summary.json").name).write_bytes(content)
    code, out, err = run(capsys, "ls")
    assert code == 0, err
    rows = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert "running" in rows["live"] and "2R" in rows["live"]
    for name in damaged:
        assert "unreadable (summary.json)" in rows[name], rows
    code, out, _ = run(capsys, "status", "empty")
    assert code == 0 and "unreadable (summary.json)" in out


@pytest.mark.parametrize("argv, message", [
    (["trials", "live", "--limit", "-1"], "'-1': expected a whole number >= 1"),
    (["trials", "live", "--limit", "0"], "'0': expected a whole number >= 1"),
    (["status", "live", "--max-rows", "0"], "expected a whole number >= 1"),
    (["status", "live", "--interval", "0"], "expected a number > 0"),
    (["status", "live", "--interval", "nan"], "expected a number > 0"),
    (["submit", "--max-concurrent", "0", "x.py"], "expected a whole number >= 1"),
    (["submit", "--driver-time-min", "-5", "x.py"], "expected a whole number >= 1"),
    (["submit", "--gpus", "-1", "x.py"], "expected a whole number >= 0"),
])
def test_non_positive_numbers_are_refused_by_the_parser(capsys, tmp_path, argv, message):
    running_experiment(tmp_path / "results")
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_limit_keeps_exactly_n_rows(capsys, tmp_path):
    running_experiment(tmp_path / "results")
    code, out, _ = run(capsys, "trials", "live", "--limit", "1", "--columns", "trial_id")
    assert code == 0 and out.splitlines()[2:] == ["abc_00000", "(1 more rows; drop --limit to see them)"]


@pytest.mark.parametrize("argv, message", [
    (["status", "."], "No experiment '.'"),
    (["logs", "live", "nosuch"], "matches no trial"),
    (["trials", "live", "--filter", "scor < 1"], "--filter: unknown column 'scor'"),
    (["trials", "live", "--filter", "score <"], 'expected "<column> <op> <value>"'),
    (["trials", "live", "--sort", "nope"], "--sort: unknown column 'nope'"),
    (["trials", "live", "--columns", ","], "names no column"),
    (["trials", "live", "--output", "no/such/dir/out.csv"], "cannot write it"),
])
def test_bad_input_is_one_clear_line(capsys, tmp_path, argv, message):
    running_experiment(tmp_path / "results")
    code, out, err = run(capsys, *argv)
    assert code == 1 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_damaged_state_file_names_itself_and_the_fix(capsys, tmp_path):
    exp = running_experiment(tmp_path / "results")
    (exp / "state.json").write_text('{"trials": [')
    for command in ("status", "trials", "best", "cancel"):
        code, _, err = run(capsys, command, "live")
        assert code == 1 and f"{exp / 'state.json'} is damaged" in err and "mv " in err, (command, err)
    (exp / "state.json").write_text(json.dumps({"trials": [{"trial_id": "x", "status": "NOPE"}]}))
    code, _, err = run(capsys, "status", "live")
    assert code == 1 and "is damaged" in err and "Traceback" not in err


# -- submit: the script's own RunConfig --------------------------------------------------------------
@pytest.fixture
def own_script(tmp_path):
    (tmp_path / "train.py").write_text(TRAINABLE)
    (tmp_path / "run.py").write_text(OWN_RUN_CONFIG)
    return tmp_path / "elsewhere"


def test_script_mode_honours_the_scripts_run_config(capsys, tmp_path, own_script):
    code, out, err = run(capsys, "submit", "run.py", str(own_script))
    assert code == 0, err
    exp = own_script / "own-name"
    assert f"hpctune: experiment {exp}" in out
    assert json.loads((exp / "summary.json").read_text())["num_trials"] == 2
    assert not (tmp_path / "results").exists()  # not ~/hpctune_results/<stem>_<date>
    code, out, _ = run(capsys, "ls", str(own_script))
    assert code == 0 and "own-name" in out and "finished" in out
    code, out, _ = run(capsys, "status", str(exp))
    assert code == 0 and "2 TERMINATED" in out
    code, out, err = run(capsys, "submit", "--name", "renamed", "run.py", str(own_script))
    assert code == 0, err
    assert (own_script / "renamed" / "summary.json").exists()  # --name wins, the storage path stays
    code, _, err = run(capsys, "submit", "run.py", str(own_script))
    assert code == 1 and "already holds an experiment" in err and f"hpctune resume {exp}" in err


def test_detached_script_mode_records_the_scripts_directory(capsys, tmp_path, own_script, slurm_calls):
    old = os.umask(0o002)
    try:
        code, out, err = run(capsys, "submit", "--detach", "run.py", str(own_script))
    finally:
        os.umask(old)
    assert code == 0, err
    exp = own_script / "own-name"
    plan = json.loads((exp / "submit.json").read_text())
    assert plan["experiment_path"] == str(exp) and plan["driver_job_id"] == "4242"
    assert plan["overrides"]["name"] == "own-name" and plan["overrides"]["storage_path"] == str(own_script)
    assert slurm_calls == [["sbatch", "--parsable", str(exp / "driver.sbatch")]]
    assert stat.S_IMODE(exp.stat().st_mode) == 0o700  # private whatever the umask
    assert stat.S_IMODE((exp / "driver.sbatch").stat().st_mode) == 0o600
    assert f"#SBATCH --output={exp / 'driver.log'}" in (exp / "driver.sbatch").read_text()
    assert out.count("top of the script ran") == 1 and not (exp / "experiment.json").exists()
    assert f"hpctune status {exp} --watch" in out
    code, out, _ = run(capsys, "ls", str(own_script))
    assert "queued (driver job 4242)" in out


# -- submit --detach: the driver job's values ---------------------------------------------------------
@pytest.fixture
def experiment_file(tmp_path):
    (tmp_path / "train.py").write_text(TRAINABLE)
    path = tmp_path / "exp.toml"
    path.write_text('trainable = "train.py:objective"\nmetric = "score"\nmode = "min"\n'
                    "[param_space]\na = {grid_search = [1, 2]}\n")
    return path


@pytest.mark.parametrize("driver_table, message", [
    ('partition = "debug\\n#SBATCH --uid=0"', "the driver job's partition"),
    ('account = "ml\\rx"', "the driver job's account"),
    ('setup = ["module load x", "echo a\\necho b"]', "setup line 2 of the driver job"),
    ('sbatch_options = {"mail-type" = "END\\u0000"}', "sbatch_options['mail-type']"),
    ('sbatch_options = {"--uid" = "0"}', "is not an sbatch option name"),
    ('time_min = "forever"', "must be a whole number of minutes"),
])
def test_a_control_character_in_the_driver_profile_is_refused(capsys, tmp_path, experiment_file,
                                                              slurm_calls, driver_table, message):
    profiles = tmp_path / "xdg" / "hpctune"
    profiles.mkdir(parents=True)
    (profiles / "bad.toml").write_text(f"[driver]\n{driver_table}\n")
    for extra in (["--dry-run"], []):
        code, out, err = run(capsys, "submit", *extra, "--detach", "--profile", "bad", "--backend",
                             "slurm", "--name", "d1", str(experiment_file))
        assert code == 1 and message in err and "#SBATCH" not in out, err
    assert slurm_calls == [] and not (tmp_path / "results").exists()  # nothing written or run


def test_driver_script_values_are_quoted(capsys, experiment_file):
    code, out, err = run(capsys, "submit", "--dry-run", "--detach", "--driver-partition", "a b#c",
                         "--name", "d1", str(experiment_file))
    assert code == 0, err
    assert "#SBATCH --partition='a b#c'" in out and "#SBATCH --job-name=hpctune-driver-d1" in out


# -- hpctune doctor ------------------------------------------------------------------------------------
def test_doctor_prints_one_line_per_check_and_fails_on_broken_locks(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("hpctune.cli.doctor.shutil.which", lambda name: None)  # no Slurm here
    code, out, _ = run(capsys, "doctor")
    assert code == 0 and out.splitlines()[0] == f"hpctune doctor: {tmp_path / 'results'}"
    assert [line.split()[1] for line in out.splitlines()[1:-1]] == [
        "location", "filesystem", "writable", "locks", "fsync", "nofollow", "free"]
    assert out.splitlines()[-1] == "hpctune can run experiments here."

    def no_flock(fd, op):
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr("hpctune.storage.fs_check.fcntl.flock", no_flock)
    code, out, _ = run(capsys, "doctor", str(tmp_path))
    locks = next(line for line in out.splitlines() if line.split()[1] == "locks")
    assert code == 1 and locks.startswith("FAILED") and "Fix: use a filesystem with working locks" in locks
    assert out.splitlines()[-1] == "1 check(s) FAILED: locks"


def test_doctor_asks_slurm_when_sbatch_exists(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("hpctune.cli.doctor.shutil.which", lambda name: f"/usr/bin/{name}")
    answers = [subprocess.CompletedProcess([], 1, "", "scontrol: error: Unable to contact slurm controller"),
               subprocess.CompletedProcess([], 0, "Slurmctld(primary) at head1 is UP\n", "")]
    calls = []

    def fake_run(self, args, check=True):
        calls.append(list(args))
        return answers.pop(0)

    monkeypatch.setattr("hpctune.backends.slurm_commands.SlurmCommands.run", fake_run)
    code, out, _ = run(capsys, "doctor", str(tmp_path))
    slurm = out.splitlines()[-2]
    assert code == 1 and slurm.startswith("FAILED   slurm") and "Unable to contact" in slurm and "Fix:" in slurm
    code, out, _ = run(capsys, "doctor", str(tmp_path))
    assert code == 0 and "ok       slurm       scontrol ping: Slurmctld(primary) at head1 is UP" in out
    assert calls == [["scontrol", "ping"], ["scontrol", "ping"]]


def test_a_storage_path_with_a_nul_character_is_a_clear_error(capsys):
    """Found by test_fuzz (`hpctune ls '\\x00'` raised ValueError from pathlib)."""
    from hpctune.cli.main import main

    assert main(["ls", "\x00"]) == 1
    assert "NUL character" in capsys.readouterr().err
