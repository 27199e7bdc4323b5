"""A full or read-only filesystem under an experiment (issue 16): on a real small tmpfs and a
read-only bind mount. Every writer refuses with ``StorageFullError`` ("the filesystem holding
<path> is full (or read-only); nothing written so far is lost; free space, then `hpctune
resume <exp>`"), leaves the file it was replacing and no temporary file; the result log never
keeps half a record; a driver stops cleanly and the experiment resumes once space is free.

Mounting needs root: without it the tests are skipped, except in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from hpctune import tune
from hpctune.cli.main import main
from hpctune.errors import StorageFullError
from hpctune.storage.atomic import write_json_atomic
from hpctune.storage.checkpoints import persist_checkpoint
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.result_log import ResultLog, read_events

FULL = "is full (or read-only); nothing written so far is lost; free space, then `hpctune resume "


def _mount(args: list[str]) -> None:
    proc = subprocess.run(["mount", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        reason = f"cannot mount ({' '.join(args)}): {proc.stderr.strip() or proc.returncode}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}: the disk-full tests need root (mount) in CI")
        pytest.skip(reason)


@contextlib.contextmanager
def mounted(args: list[str], target: Path):
    _mount(args)
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


@pytest.fixture
def small_fs(tmp_path):
    """A 2 MB tmpfs of its own."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    with mounted(["-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mnt)], mnt):
        yield mnt


@pytest.fixture
def read_only(tmp_path):
    """``(writable source, the same directory mounted read-only)``."""
    src, ro = tmp_path / "src", tmp_path / "ro"
    src.mkdir()
    ro.mkdir()
    with mounted(["--bind", str(src), str(ro)], ro):
        _mount(["-o", "remount,bind,ro", str(ro)])
        yield src, ro


def fill(directory: Path) -> Path:
    """Fill the filesystem of ``directory`` to the last byte; the filler file, to free it again."""
    filler = directory / "filler"
    with open(filler, "ab", buffering=0) as f:
        for size in (65536, 4096, 1):  # big pieces, then the last page byte by byte
            try:
                while f.write(b"\0" * size):
                    pass
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return filler


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*") if ".tmp" in p.name or p.name.startswith(".old_"))


# -- the writers ------------------------------------------------------------------------------------
def test_the_result_log_keeps_no_half_record_on_a_full_disk(small_fs):
    exp = ExperimentDir(small_fs / "exp")
    exp.create()
    path = exp.result_log_path("t1")
    path.parent.mkdir()
    log = ResultLog(path)
    log.append({"event": "result", "schema": 1, "result": {"n": 1}})
    size = path.stat().st_size
    fill(small_fs)
    with pytest.raises(StorageFullError) as raised:  # it fills the log's last page, then ENOSPC
        log.append({"event": "result", "schema": 1, "result": {"blob": "x" * 20000}})
    assert FULL in str(raised.value) and str(path) in str(raised.value)
    assert f"`hpctune resume {exp.root}`" in str(raised.value)
    assert raised.value.errno == errno.ENOSPC and isinstance(raised.value, OSError)
    assert path.stat().st_size == size  # the short write was cut back
    (small_fs / "filler").unlink()
    log.append({"event": "result", "schema": 1, "result": {"n": 2}})
    assert [e["result"]["n"] for e in read_events(path)] == [1, 2]


def test_an_atomic_write_keeps_the_old_file_and_no_temp_file(small_fs):
    exp = ExperimentDir(small_fs / "exp")
    exp.create()
    write_json_atomic(exp.state_path, {"trials": [1]})
    fill(small_fs)
    with pytest.raises(StorageFullError, match="No space left on device"):
        write_json_atomic(exp.state_path, {"trials": list(range(100_000))})
    assert json.loads(exp.state_path.read_text()) == {"trials": [1]}
    assert leftovers(small_fs) == []


def test_a_checkpoint_that_does_not_fit_leaves_nothing_behind(small_fs, tmp_path):
    trial = small_fs / "exp" / "trials" / "t1"
    trial.mkdir(parents=True)
    source = tmp_path / "ckpt"
    source.mkdir()
    (source / "weights").write_bytes(os.urandom(3 * 1024 * 1024))  # more than the disk holds
    with pytest.raises(StorageFullError, match=str(trial / "checkpoint_000001")):
        persist_checkpoint(source, trial, 1)
    assert list(trial.iterdir()) == []


def test_a_read_only_filesystem_is_the_same_clear_error(read_only):
    src, ro = read_only
    (src / "state.json").write_text("{}")
    with pytest.raises(StorageFullError, match=r"\(Read-only file system\)") as raised:
        write_json_atomic(ro / "state.json", {"a": 1})
    assert raised.value.errno == errno.EROFS
    log = ResultLog(ro / "result.jsonl")
    with pytest.raises(StorageFullError, match="is full \\(or read-only\\)"):
        log.append({"event": "start"})


# -- the driver and the worker ----------------------------------------------------------------------
def reports_forever(config):
    """Reports every 50 ms, a checkpoint every 5th result, until iteration 60."""
    start = 0
    if tune.get_checkpoint():
        start = int(Path(tune.get_checkpoint().path, "n").read_text())
    for n in range(start + 1, 61):
        ckpt = None
        if n % 5 == 0:
            directory = Path(tune.get_context().get_trial_dir()) / f"ckpt_src_{n}"
            directory.mkdir(exist_ok=True)
            (directory / "n").write_text(str(n))
            ckpt = tune.Checkpoint.from_directory(directory)
        tune.report({"n": n}, checkpoint=ckpt)
        time.sleep(0.05)


def fill_after_results(storage: Path, count: int, done: threading.Event) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        logs = list(storage.glob("*/trials/*/result.jsonl"))
        if logs and all(sum(e["event"] == "result" for e in read_events(p)) >= count for p in logs):
            break
        time.sleep(0.05)
    fill(storage)
    done.set()


def test_a_full_disk_stops_the_driver_cleanly_and_resume_finishes(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("HPCTUNE_BACKEND", "local")
    monkeypatch.chdir(Path(__file__).resolve().parents[2])  # workers import this module
    mnt = tmp_path / "disk"
    mnt.mkdir()
    with mounted(["-t", "tmpfs", "-o", "size=6m,mode=0700", "tmpfs", str(mnt)], mnt):
        filled = threading.Event()
        threading.Thread(target=fill_after_results, args=(mnt, 12, filled), daemon=True).start()
        tuner = tune.Tuner(reports_forever, param_space={"x": tune.grid_search([1, 2])},
                           run_config=tune.RunConfig(name="full", storage_path=str(mnt), verbose=0,
                                                     failure_config=tune.FailureConfig(max_failures=3)))
        started = time.monotonic()
        with pytest.raises(StorageFullError) as raised:
            tuner.fit()
        assert filled.is_set() and time.monotonic() - started < 60
        exp = mnt / "full"
        assert FULL in str(raised.value) and f"`hpctune resume {exp}`" in str(raised.value)
        err = capsys.readouterr().err
        assert err.count(FULL) == 1, err  # said once
        assert leftovers(exp) == []
        summary = json.loads((exp / "summary.json").read_text())
        assert summary["status"] == "error: disk full", (err, sorted(p.name for p in exp.iterdir()))
        (mnt / "filler").unlink()

        assert main(["resume", str(exp)]) == 0
        grid = tune.ResultGrid.from_path(exp)
        assert grid.num_terminated == 2 and grid.num_errors == 0, grid.errors
        for result in grid:
            assert result.metrics["n"] == 60
        assert json.loads((exp / "summary.json").read_text())["status"] == "finished"


def fails_to_write(config):
    """Fills the disk, then fails with an error longer than the log's last page can take."""
    fill(Path(tune.get_context().get_trial_dir()).parents[2])
    raise RuntimeError("boom " * 3000)


def test_a_worker_that_cannot_write_its_error_says_so_on_stderr(small_fs):
    import subprocess as sp
    import sys

    from hpctune.storage.pickling import pickle_trainable

    exp = ExperimentDir(small_fs / "exp")
    exp.create()
    exp.write_trainable(pickle_trainable(fails_to_write))
    exp.write_experiment({"stop_grace_s": 1})
    exp.write_params("t", {})
    exp.write_trial_meta("t", {})
    proc = sp.run([sys.executable, "-m", "hpctune.worker", str(exp.root), "--trial", "t"],
                  capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 1
    assert "RuntimeError: boom boom" in proc.stderr
    assert "its error event could not be written to" in proc.stderr and FULL in proc.stderr
    assert [e["event"] for e in read_events(exp.result_log_path("t"))] == ["meta", "start"]


def fills_the_disk_once(config):
    """Reports to iteration 30 with a checkpoint every 5th; at iteration 12 of its first run the
    trial fills the disk but 64 kB and reports a result too big for them: ``report()`` raises
    StorageFullError in the worker, whose error event is logged (the run ended, not by the
    trial's own error), and the driver may go on writing."""
    start = 0
    if tune.get_checkpoint():
        start = int(Path(tune.get_checkpoint().path, "n").read_text())
    for n in range(start + 1, 31):
        ckpt, blob = None, ""
        if n == 12 and not Path(config["marker"]).exists():
            Path(config["marker"]).write_text("filled")
            filler = fill(Path(tune.get_context().get_trial_dir()).parents[2])
            os.truncate(filler, filler.stat().st_size - 65536)  # room for its error, not for the blob
            blob = "x" * 1_000_000
        if n % 5 == 0:
            directory = Path(tune.get_context().get_trial_dir()) / f"ckpt_src_{n}"
            directory.mkdir(exist_ok=True)
            (directory / "n").write_text(str(n))
            ckpt = tune.Checkpoint.from_directory(directory)
        tune.report({"n": n, "blob": blob}, checkpoint=ckpt)


def test_a_trial_the_full_disk_interrupted_is_resumed_with_default_flags(monkeypatch, tmp_path, capsys):
    """Issue 24: the worker meets the full disk first (its report fails); with the default
    FailureConfig (no retries) a plain `hpctune resume` still runs every iteration."""
    monkeypatch.setenv("HPCTUNE_BACKEND", "local")
    monkeypatch.chdir(Path(__file__).resolve().parents[2])  # workers import this module
    mnt = tmp_path / "disk"
    mnt.mkdir()
    with mounted(["-t", "tmpfs", "-o", "size=6m,mode=0700", "tmpfs", str(mnt)], mnt):
        tuner = tune.Tuner(fills_the_disk_once, param_space={"marker": str(tmp_path / "filled")},
                           run_config=tune.RunConfig(name="full", storage_path=str(mnt), verbose=0))
        with pytest.raises(StorageFullError):  # the job met it first: the run stops, no retries needed
            tuner.fit()
        assert (tmp_path / "filled").exists()
        summary = json.loads((mnt / "full" / "summary.json").read_text())
        assert summary["status"] == "error: disk full"
        assert summary["by_status"] == {"PENDING": 1}, summary  # not ERROR: resumed by default
        (mnt / "filler").unlink()
        exp = mnt / "full"
        assert main(["resume", str(exp)]) == 0
        grid = tune.ResultGrid.from_path(exp)
        assert (grid.num_terminated, grid.num_errors) == (1, 0), grid.errors
        assert [r["n"] for r in grid[0].metrics_dataframe.to_dict("records")] == list(range(1, 31))
