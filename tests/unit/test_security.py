"""Nobody else gets in: private modes, checked pickles, no followed symlinks, validated strings.

Each test plays the attacker of issue 16 (a writable experiment directory, a planted
symlink, a newline in a Slurm setting, a job id that is an option) and checks it fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from hpctune import tune
from hpctune.backends.local import LocalBackend
from hpctune.backends.slurm import SlurmBackend
from hpctune.backends.slurm_commands import validate_job_id
from hpctune.config import RunConfig, SlurmConfig
from hpctune.errors import ConfigError, UnsafeFileError
from hpctune.storage.atomic import write_bytes_atomic, write_json_atomic
from hpctune.storage.checkpoints import persist_checkpoint
from hpctune.storage.control import ControlRecord
from hpctune.storage.driver_state import load_driver_state
from hpctune.storage.experiment import DRIVER_STATE_FILE, TUNER_FILE, ExperimentDir
from hpctune.storage.result_log import ResultLog
from hpctune.storage.secure import SHARE_ENV, load_private_pickle
from hpctune.tune.search.searcher import SEARCHER_STATE_FILE, Searcher

#: files kept 0600 even in a shared experiment (the driver's lock); the searcher's pickle follows
#: the policy like driver-state.pkl, which holds the same searcher state
ALWAYS_PRIVATE = {".driver.lock"}
PRIVATE, SHARED = (0o700, 0o600), (0o750, 0o640)


@contextlib.contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@contextlib.contextmanager
def deadline(seconds: int):
    """Fail instead of hanging (a loader that blocks on a planted FIFO)."""
    def expired(signum, frame):
        raise TimeoutError(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def modes(root: Path) -> dict[str, int]:
    """Relative path -> permission bits of every directory and file under ``root`` (and root)."""
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def assert_modes(root: Path, expected: tuple[int, int], skip: set[str] = frozenset()) -> None:
    dir_mode, file_mode = expected
    wrong = {}
    for rel, mode in modes(root).items():
        if Path(rel).name in skip:
            continue
        want = dir_mode if (root / rel).is_dir() else file_mode
        if Path(rel).name in ALWAYS_PRIVATE:
            want = 0o600
        if mode != want:
            wrong[rel] = f"{mode:04o} (want {want:04o})"
    assert wrong == {}


def counting_with_checkpoint(config):
    """Reports twice with a checkpoint whose file the umask makes 0664 (or 0644); prints, so
    that its job log stays (an empty one is removed)."""
    print("counting")
    for i in range(2):
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, "weights").write_text(str(i))
            os.chmod(Path(tmp, "weights"), 0o666)
            tune.report({"loss": config["x"] - i}, checkpoint=tune.Checkpoint.from_directory(tmp))


# -- 1. private by default -------------------------------------------------------------------------
@pytest.mark.parametrize(("mask", "share", "expected"), [
    (0o002, False, PRIVATE),  # group-writable umask, common on clusters
    (0o022, True, SHARED),
])
def test_a_real_experiment_is_private_whatever_the_umask(tmp_path, monkeypatch, mask, share, expected):
    monkeypatch.setenv("HPCTUNE_BACKEND", "local")
    monkeypatch.setenv(SHARE_ENV, "1" if share else "0")
    with umask(mask):
        grid = tune.Tuner(counting_with_checkpoint, param_space={"x": tune.grid_search([1, 2])},
                          tune_config=tune.TuneConfig(metric="loss", mode="min"),
                          run_config=RunConfig(name="m", storage_path=str(tmp_path / "store"),
                                               verbose=0)).fit()
    assert grid.num_errors == 0 and len(grid) == 2
    root = tmp_path / "store" / "m"
    names = {Path(rel).name for rel in modes(root)}
    assert {"trials", "jobs", "trainable.pkl", "tuner.pkl", "result.jsonl", "local-0.out",
            "checkpoint_000002", "weights"} <= names  # every kind of writer was exercised
    assert_modes(root, expected)
    assert stat.S_IMODE((tmp_path / "store").stat().st_mode) == expected[0]  # created parents too


class FakeSlurm:
    """Records the commands; ``sbatch`` answers job id 123."""

    def __init__(self):
        self.calls: list[list[str]] = []
        self.counts: dict[str, int] = {}

    def run(self, args, check=True):
        self.calls.append(args)
        return subprocess.CompletedProcess(args, 0, "123\n" if args[0] == "sbatch" else "", "")


@pytest.mark.parametrize("mask", [0o002, 0o022, 0o077])
@pytest.mark.parametrize(("share", "expected"), [(False, PRIVATE), (True, SHARED)])
def test_every_storage_writer_uses_the_policy_mode(tmp_path, mask, share, expected):
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "w").write_text("w")
    os.chmod(source / "sub", 0o777)
    os.chmod(source / "sub" / "w", 0o666)
    exp = ExperimentDir(tmp_path / "exp")
    with umask(mask):
        (tmp_path / "exp").mkdir(mode=0o777)  # as `hpctune submit --detach` made it: re-moded
        exp.create(share_with_group=share)
        exp.write_trainable(b"x")
        exp.write_experiment({})
        exp.write_params("t1", {"a": 1})
        exp.write_trial_meta("t1", {})
        exp.write_control("t1", ControlRecord.stop("test"))
        ResultLog(exp.result_log_path("t1")).append({"e": 1})
        persist_checkpoint(source, exp.trial_dir("t1"), 1)
        persist_checkpoint(source, exp.trial_dir("t1"), 1)  # replacing keeps the modes
        SlurmBackend(exp.root, SlurmConfig(requeue=False), commands=FakeSlurm())._submit_array(
            ["t1"], {"cpu": 1}, None)
    assert {"array_", "checkpoint_000001", "w", "control.json"} <= {
        Path(rel).name[:6] if Path(rel).name.startswith("array_") else Path(rel).name
        for rel in modes(exp.root)}
    assert_modes(exp.root, expected)


def test_an_experiment_root_of_another_user_is_refused(tmp_path):
    root = tmp_path / "exp"
    root.mkdir()
    os.chown(root, 12345, -1)
    with pytest.raises(UnsafeFileError, match="belongs to uid 12345"):
        ExperimentDir(root).create()


# -- 2. checked pickles --------------------------------------------------------------------------------
def _group_writable(path: Path) -> None:
    os.chmod(path, 0o660)


def _world_writable(path: Path) -> None:
    os.chmod(path, 0o602)


def _other_owner(path: Path) -> None:
    os.chown(path, 12345, -1)


def _symlink(path: Path) -> None:
    real = path.with_name("real.pkl")
    os.replace(path, real)
    path.symlink_to(real)


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path, 0o600)  # opening it for reading would block without O_NONBLOCK


def _writable_dir(path: Path) -> None:
    os.chmod(path.parent, 0o770)


FAULTS = [  # (what the attacker did, a phrase the refusal must contain)
    pytest.param(_group_writable, r"mode 0660.*chmod go-w", id="group-writable"),
    pytest.param(_world_writable, r"mode 0602.*chmod go-w", id="world-writable"),
    pytest.param(_other_owner, "uid 12345", id="other-owner"),
    pytest.param(_symlink, "symbolic link", id="symlink"),
    pytest.param(_fifo, "regular file", id="fifo"),
    pytest.param(_writable_dir, r"0770.*chmod go-w \S*/exp`", id="group-writable-directory"),
]


LOADERS = [  # (the file name the loader reads, how it reads it)
    pytest.param("any.pkl", load_private_pickle, id="load_private_pickle"),
    pytest.param(DRIVER_STATE_FILE, lambda p: load_driver_state(ExperimentDir(p.parent)),
                 id="driver_state"),
    pytest.param(TUNER_FILE, lambda p: tune.Tuner.restore(str(p.parent), trainable=print),
                 id="Tuner.restore"),
    pytest.param(SEARCHER_STATE_FILE, lambda p: Searcher().restore(p), id="Searcher.restore"),
]


def _pickle_in_private_dir(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / "exp"
    folder.mkdir(mode=0o700)
    path = folder / name
    path.write_bytes(pickle.dumps({"trials": []}))  # a valid (empty) driver snapshot too
    os.chmod(path, 0o600)
    return path


@pytest.mark.parametrize(("name", "loader"), LOADERS)
@pytest.mark.parametrize(("fault", "phrase"), FAULTS)
def test_a_pickle_someone_else_could_write_is_refused(tmp_path, name, loader, fault, phrase):
    path = _pickle_in_private_dir(tmp_path, name)
    fault(path)
    with deadline(10), pytest.raises(UnsafeFileError, match=phrase):
        loader(path)


@pytest.mark.parametrize(("name", "loader"), [p for p in LOADERS if p.id != "Tuner.restore"])
def test_a_private_pickle_of_yours_loads(tmp_path, name, loader):
    loader(_pickle_in_private_dir(tmp_path, name))  # the checks do not simply refuse everything


def test_the_worker_refuses_a_group_writable_trainable(tmp_path):
    exp = ExperimentDir(tmp_path / "exp")
    exp.create()
    exp.write_trainable(pickle.dumps(print))
    exp.write_experiment({})
    exp.write_params("t1", {})
    exp.write_trial_meta("t1", {})
    os.chmod(exp.trainable_path, 0o664)
    proc = subprocess.run([sys.executable, "-m", "hpctune.worker", str(exp.root), "--trial", "t1"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    errors = [json.loads(line) for line in exp.result_log_path("t1").read_text().splitlines()
              if '"error"' in line]
    assert errors and "UnsafeFileError" in errors[-1]["error"] and "chmod go-w" in errors[-1]["error"]


# -- 3. no predictable temp names, no planted symlinks followed ----------------------------------------
def test_a_symlink_planted_at_the_old_temp_name_is_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    summary = tmp_path / "summary.json"
    planted = tmp_path / f".summary.json.tmp-{os.getpid()}"  # the name hpctune used to use
    planted.symlink_to(victim)
    write_json_atomic(summary, {"status": "running"})
    assert victim.read_text() == "precious"
    assert json.loads(summary.read_text()) == {"status": "running"}
    assert planted.is_symlink() and not summary.is_symlink()


def test_temp_names_are_unpredictable_and_removed_on_error(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def failing_replace(src, dst):
        seen.append(Path(src).name)
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    for _ in range(2):
        with pytest.raises(OSError, match="disk full"):
            write_bytes_atomic(tmp_path / "state.json", b"{}")
    monkeypatch.setattr(os, "replace", real_replace)
    assert len(set(seen)) == 2 and all(str(os.getpid()) not in name for name in seen)
    assert list(tmp_path.iterdir()) == []  # no temp file left behind


@pytest.mark.parametrize("target", ["result.jsonl", "local-0.out", "local-0.err"])
def test_a_planted_symlink_at_a_log_is_refused(tmp_path, target):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    exp = ExperimentDir(tmp_path / "exp")
    exp.create()
    exp.trial_dir("t1").mkdir()
    link = exp.result_log_path("t1") if target == "result.jsonl" else exp.jobs_dir / target
    link.symlink_to(victim)
    with pytest.raises(UnsafeFileError, match="symbolic link"):
        if target == "result.jsonl":
            ResultLog(link).append({"event": "x"})
        else:
            LocalBackend(exp.root)._spawn("local-0", "t1")
    assert victim.read_text() == "precious"


def test_a_symlink_planted_at_the_old_checkpoint_temp_name_is_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("precious")
    trial_dir = tmp_path / "trial"
    trial_dir.mkdir(mode=0o700)
    (trial_dir / f".tmp_checkpoint_000001_{os.getpid()}").symlink_to(victim)
    source = tmp_path / "src"
    source.mkdir()
    (source / "w").write_text("w")
    final = persist_checkpoint(source, trial_dir, 1)
    assert (final / "w").read_text() == "w"
    assert [p.name for p in victim.iterdir()] == ["keep"]


# -- 4a. strings bound for sbatch ------------------------------------------------------------------------
CONTROL_CHARS = ["\n", "\r", "\x00", "\t", "\x1b", "\x7f"]


@pytest.mark.parametrize("char", CONTROL_CHARS, ids=repr)
@pytest.mark.parametrize("field", ["partition", "account", "qos", "constraint", "exclude", "nodelist",
                                   "job_name", "python", "signal"])  # written out: see test_sbatch_text_fields
def test_a_control_character_in_a_slurm_field_is_refused(field, char):
    with pytest.raises(ConfigError, match=rf"SlurmConfig\({field}=.*control character"):
        SlurmConfig(**{field: f"gpu{char}#SBATCH --x"})


@pytest.mark.parametrize("kwargs", [
    {"setup": ["module load cuda\nrm -rf ~"]},
    {"setup": ["ok", "tab\there"]},
    {"sbatch_options": {"reservation": "ml\n#SBATCH --uid=0"}},
    {"sbatch_options": {"mail-type": "FAIL\r"}},
    {"sbatch_options": {"bad\nkey": "x"}},
    {"sbatch_options": {"--reservation": "ml"}},
    {"sbatch_options": {"reservation=ml": True}},
    {"sbatch_options": {"": "x"}},
    {"sbatch_options": {"a b": "x"}},
], ids=lambda kw: repr(kw)[:40])
def test_bad_setup_lines_and_sbatch_options_are_refused(kwargs):
    with pytest.raises(ConfigError, match=r"setup\[|sbatch_options"):
        SlurmConfig(**kwargs)


def test_good_slurm_strings_pass_and_a_later_change_is_caught_before_a_script(tmp_path):
    config = SlurmConfig(partition="gpu", setup=["module load cuda/12"], requeue=False,
                         sbatch_options={"reservation": "ml", "mail-type": "FAIL", "exclusive": True,
                                         "gpus_per_task": 1})
    fake = FakeSlurm()
    SlurmBackend(tmp_path / "exp", config, commands=fake)  # accepted
    config.partition = "gpu\n#SBATCH --uid=0"
    with pytest.raises(ConfigError, match="partition"):
        SlurmBackend(tmp_path / "exp", config, commands=fake)
    assert fake.calls == [] and not (tmp_path / "exp").exists()


# -- 4b. experiment names and storage paths ----------------------------------------------------------------
BAD_NAMES = ["..", ".", "../x", "../../x", "/abs", "a/b", "-x", "a\nb", "a\x00b", ""]


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_a_bad_experiment_name_is_refused_before_anything_exists(tmp_path, name):
    with pytest.raises(ConfigError, match="not a valid experiment name"):
        RunConfig(name=name, storage_path=str(tmp_path / "store"))
    if name:  # set after construction ("" then means the default name): fit refuses it too
        config = RunConfig(storage_path=str(tmp_path / "store"), verbose=0)
        config.name = name
        tuner = tune.Tuner(counting_with_checkpoint, run_config=config, backend="local")
        with pytest.raises(ConfigError, match="not a valid experiment name"):
            tuner.fit()
    assert not (tmp_path / "store").exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path", ["s3://bucket/x", "gs://b", "file:///tmp/x", "HTTPS://host/x",
                                  "hdfs+kerberos://n/x"])
def test_a_uri_storage_path_is_refused(path, monkeypatch):
    with pytest.raises(ConfigError, match="shared filesystem path"):
        RunConfig(name="ok", storage_path=path)
    monkeypatch.setenv("HPCTUNE_STORAGE_PATH", path)
    with pytest.raises(ConfigError, match="shared filesystem path"):
        RunConfig(name="ok").experiment_root("x")


@pytest.mark.parametrize("name", ["lr-sweep", "a.b_c", "x..y", "Exp 1"])
def test_good_names_and_paths_pass(tmp_path, name):
    root = RunConfig(name=name, storage_path=str(tmp_path / "a:b")).experiment_root("unused")
    assert root == (tmp_path / "a:b" / name).resolve()


# -- 4c. job ids -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("job_id", ["--user=root", "1;rm", "12 13", "", "12_", "_1", "1\n", "abc",
                                    "-1", "12,13", "\u0661\u0662", "local-1"])
def test_a_bad_job_id_is_refused(job_id):
    with pytest.raises(ConfigError, match="not a Slurm job id"):
        validate_job_id(job_id)


@pytest.mark.parametrize("job_id", ["1", "12_3", "12+1", "12_3+0"])
def test_a_slurm_job_id_passes(job_id):
    assert validate_job_id(job_id) == job_id


@pytest.mark.parametrize("method", ["cancel", "final_states"])
def test_the_slurm_backend_checks_ids_before_any_command(tmp_path, method):
    fake = FakeSlurm()
    backend = SlurmBackend(tmp_path / "exp", SlurmConfig(requeue=False), commands=fake)
    with pytest.raises(ConfigError, match="--user=root"):
        getattr(backend, method)(["12_0", "--user=root"])
    assert fake.calls == []
    getattr(backend, method)(["12_0", "13"])
    assert fake.calls[0][0] == ("scancel" if method == "cancel" else "sacct")
