"""Slurm command lines are spelled in one module, ``hpctune/backends/slurm_commands.py``, one
builder per command, and the job ids they carry are checked there; the job-id grammar is
``hpctune/core/ids.py``."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from hpctune.backends.base import JobReport
from hpctune.backends.slurm_commands import (
    STATE_FIELDS,
    parse_job_states,
    ping_args,
    requeue_args,
    sacct_args,
    sacct_usage_args,
    sacctmgr_args,
    sbatch_args,
    scancel_args,
    show_args,
    sinfo_args,
    squeue_args,
    sshare_args,
    submitted_job_id,
)
from hpctune.core.ids import (
    JobKind,
    array_of,
    array_task_id,
    experiment_id_of,
    job_kind,
    job_number,
    local_job_id,
    run_job_id,
    run_seq,
    trial_id,
    validate_job_id,
)
from hpctune.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SLURM_COMMANDS = {"sbatch", "squeue", "scancel", "scontrol", "sacct", "sacctmgr", "sinfo",
                  "srun", "salloc", "sstat", "sshare"}
OWNER = "hpctune/backends/slurm_commands.py"


def argv_sites(package: Path) -> list[str]:
    """``path:line`` of every list or tuple display under ``package`` whose first item is a
    Slurm command's name: an argument vector being written."""
    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, (ast.List, ast.Tuple)) and node.elts
                    and isinstance(node.elts[0], ast.Constant) and node.elts[0].value in SLURM_COMMANDS):
                found.append(f"{path.relative_to(package.parent)}:{node.lineno}")
    return found


def test_only_slurm_commands_spells_a_slurm_command_line():
    sites = argv_sites(ROOT / "hpctune")
    outside = [site for site in sites if not site.startswith(OWNER + ":")]
    assert not outside, f"build these with a function of {OWNER}: {outside}"
    assert len(sites) == 11  # one builder per command: a new command gets one too (and a test below)


def test_the_scan_finds_an_argv_written_elsewhere(tmp_path):
    (tmp_path / "hpctune").mkdir()
    (tmp_path / "hpctune" / "bad.py").write_text('run(["scontrol", "requeue", job])\nok = ["x", "sbatch"]\n')
    assert argv_sites(tmp_path / "hpctune") == ["hpctune/bad.py:1"]


def test_each_builder_writes_its_command_line():
    assert sbatch_args(Path("/e/jobs/array_1.sbatch")) == ["sbatch", "--parsable", "/e/jobs/array_1.sbatch"]
    assert squeue_args(STATE_FIELDS, user="ann", name="hpctune-x") == [
        "squeue", "-h", "-r", "-u", "ann", "-n", "hpctune-x", "-o", "%i|%T|%r|%N"]
    assert squeue_args("%A|%k", jobs=["12", "13_1"], array_tasks=False) == [
        "squeue", "-h", "-j", "12,13_1", "-o", "%A|%k"]
    assert scancel_args(["12_0", "13"]) == ["scancel", "12_0", "13"]
    assert requeue_args("12_3") == ["scontrol", "requeue", "12_3"]
    assert show_args("partition", "gpu", one_line=True) == ["scontrol", "show", "partition", "-o", "gpu"]
    assert show_args("config") == ["scontrol", "show", "config"]
    assert ping_args() == ["scontrol", "ping"]
    assert sacct_args(["12_0", "12_1"], "JobID,State") == [
        "sacct", "-n", "-P", "-X", "-j", "12_0,12_1", "-o", "JobID,State"]
    assert sacct_usage_args(["5_1", "6"], "JobID,ElapsedRaw") == [
        "sacct", "-n", "-P", "-X", "-D", "-j", "5_1,6", "-o", "JobID,ElapsedRaw"]
    assert sshare_args("ann", "Account,FairShare") == ["sshare", "-n", "-P", "-U", "-u", "ann", "-o",
                                                        "Account,FairShare"]
    with pytest.raises(ConfigError):
        sacct_usage_args(["--user=root"], "JobID")
    assert sinfo_args("%N|%c") == ["sinfo", "-h", "-N", "-o", "%N|%c"]
    assert sinfo_args("%N|%c", "gpu")[-2:] == ["-p", "gpu"]
    assert sacctmgr_args("ann", "MaxJobs") == ["sacctmgr", "-n", "-P", "show", "assoc", "user=ann",
                                               "format=MaxJobs"]


@pytest.mark.parametrize("build", [
    lambda job: scancel_args(["1", job]),
    lambda job: requeue_args(job),
    lambda job: sacct_args([job], "JobID"),
    lambda job: squeue_args(STATE_FIELDS, jobs=[job]),
    lambda job: submitted_job_id(job),
])
@pytest.mark.parametrize("job", ["--user=root", "12 13", "pool-3", "local-1", ""])
def test_no_builder_lets_something_else_than_a_job_id_through(build, job):
    with pytest.raises(ConfigError, match="not a Slurm job id"):
        build(job)


def test_squeue_answers_and_sbatch_answers_are_parsed():
    assert parse_job_states("7_1|PENDING|Priority|\n7_0|RUNNING|None|n3\nbroken\n") == {
        "7_1": JobReport("PENDING", "Priority", ""), "7_0": JobReport("RUNNING", "", "n3")}
    assert submitted_job_id("4242;cluster-a\n") == "4242"


def test_the_job_id_grammar():
    kinds = {"123": JobKind.SLURM, "123_4": JobKind.SLURM, "123+1": JobKind.SLURM,
             "local-7": JobKind.LOCAL, "pool-12": JobKind.POOL}
    assert {job: job_kind(job) for job in kinds} == kinds
    for damaged in ("", None, "local-", "pool-x", "12_", "-12", "123_4\n", "localhost", "pool-1_2"):
        assert job_kind(damaged) is None, damaged
    assert [job_number(j) for j in ("123_4", "local-7", "pool-12", "x")] == [123, 7, 12, None]
    assert array_task_id("123", 4) == "123_4" and array_of("123_4") == "123" and array_of("9+1") == "9"
    assert local_job_id(3) == "local-3" and run_job_id(5) == "pool-5" and run_seq("pool-5") == 5
    assert run_seq("5") is None and validate_job_id("5_1") == "5_1"


def test_the_worker_reads_the_experiment_id_the_driver_wrote_into_the_trial_id():
    made = trial_id("lr-sweep_2024-05-01_a1b2", 3)
    assert made == "lr-sweep_2024-05-01_a1b2_00003"
    assert experiment_id_of(made) == "lr-sweep_2024-05-01_a1b2"
    assert experiment_id_of("nounderscore") == ""


def test_a_job_can_requeue_itself_without_driver_modules():
    """The worker and a pool task build ``scontrol requeue`` inside the job: light imports only."""
    code = ("import sys, hpctune.backends.slurm_limits, hpctune.backends.slurm_commands, hpctune.core.ids\n"
            "heavy = {'numpy', 'pandas', 'submitit', 'hpctune.controller', 'hpctune.tune.tuner'}\n"
            "print(sorted(heavy & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT).stdout
    assert out.strip() == "[]"
