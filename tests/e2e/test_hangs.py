"""Hangs (issue 16): a trial that reports nothing for ``FailureConfig(report_timeout_s)`` is
cancelled and retried with an error that names the timeout (not the node-death heartbeat);
a SIGTERM ends a worker within ``stop_grace_s`` even when its trainable sleeps, spins in C
code holding the GIL, or ignores SIGTERM; and no worker or child of one outlives a killed
local driver.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hpctune import tune
from hpctune.controller import Controller, ControllerSettings
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.pickling import pickle_trainable
from hpctune.storage.result_log import read_events
from hpctune.tune.callback import CallbackList
from hpctune.tune.experiment.trial import TrialStatus
from hpctune.tune.schedulers.trial_scheduler import FIFOScheduler
from hpctune.tune.search.basic_variant import BasicVariantGenerator
from hpctune.tune.stopper import as_stopper
from tests.unit.fake_backend import FakeBackend, FakeClock

REPO = Path(__file__).resolve().parents[2]
GRACE_S = 1.0


# -- report_timeout_s, step by step (a scripted backend and a fake clock) ---------------------------
def make_controller(tmp_path: Path, n: int = 2, **settings):
    exp = ExperimentDir(tmp_path / "exp")
    exp.create()
    space = {"x": tune.grid_search(list(range(n)))}
    searcher = BasicVariantGenerator(seed=0)
    searcher.set_search_properties("loss", "min", space, num_samples=1)
    scheduler = FIFOScheduler()
    scheduler.set_search_properties("loss", "min")
    clock, backend = FakeClock(), FakeBackend(exp)
    settings = {"trial_id_prefix": "t", "metric": "loss", "mode": "min", "param_space": space,
                "heartbeat_timeout_s": 600.0, **settings}
    ctl = Controller(exp, backend, searcher, scheduler, as_stopper(None), CallbackList([]),
                     ControllerSettings(**settings), clock=clock)
    return ctl, backend, clock


def test_a_trial_silent_for_the_report_timeout_is_cancelled_and_retried(tmp_path):
    """report_timeout_s=30: heartbeats do not count, a result restarts the clock; 30 s without
    a result is fine, 31 s is hung: cancelled, retried; a queued job is left alone."""
    ctl, backend, clock = make_controller(tmp_path, n=2, report_timeout_s=30.0, max_failures=1)
    ctl.step()
    job = backend.job("t_00000").start()
    ctl.step()  # started: the clock starts
    clock.advance(20)
    job.report(loss=1.0)
    ctl.step()  # a result: the clock starts again
    for _ in range(3):
        clock.advance(10)
        job.heartbeat()
        ctl.step()
    assert backend.cancels == []  # 30 s since the result, heartbeats all along
    clock.advance(1)
    job.heartbeat()
    ctl.step()
    assert backend.cancels == [["100_0"]]
    trial = ctl.trials["t_00000"]
    assert (trial.status, trial.num_failures, trial.job_id) == (TrialStatus.PENDING, 1, None)
    assert ctl.trials["t_00001"].status is TrialStatus.PENDING and ctl.trials["t_00001"].job_id
    ctl.step()
    assert backend.launches[-1].trial_ids == ["t_00000"]  # retried in a new job


def test_without_retries_the_hang_is_an_error_naming_the_report_timeout(tmp_path):
    ctl, backend, clock = make_controller(tmp_path, n=1, report_timeout_s=5.0)
    ctl.step()
    backend.job("t_00000").start()
    ctl.step()
    clock.advance(6)
    backend.job("t_00000").heartbeat()
    ctl.step()
    trial = ctl.trials["t_00000"]
    assert trial.status is TrialStatus.ERROR
    assert "reported no result for 5 s (FailureConfig(report_timeout_s=5))" in trial.error
    assert "heartbeat" not in trial.error.lower()


def test_no_report_timeout_means_a_silent_trial_runs_on(tmp_path):
    ctl, backend, clock = make_controller(tmp_path, n=1)
    ctl.step()
    backend.job("t_00000").start()
    for _ in range(5):
        clock.advance(100)
        backend.job("t_00000").heartbeat()
        ctl.step()
    assert backend.cancels == [] and ctl.trials["t_00000"].status is TrialStatus.RUNNING


# -- report_timeout_s on the local backend ------------------------------------------------------------
def hangs_after_one_result(config):
    tune.report({"loss": 1.0})
    time.sleep(1000)


def test_a_hung_trainable_is_cancelled_retried_and_fails_naming_the_timeout(tmp_path, monkeypatch):
    monkeypatch.setenv("HPCTUNE_BACKEND", "local")
    monkeypatch.chdir(REPO)
    started = time.monotonic()
    grid = tune.Tuner(hangs_after_one_result, run_config=tune.RunConfig(
        name="hang", storage_path=str(tmp_path), verbose=0,
        failure_config=tune.FailureConfig(max_failures=1, report_timeout_s=1.5),
        slurm=tune.SlurmConfig(stop_grace_s=GRACE_S))).fit()
    assert time.monotonic() - started < 30
    result = grid[0]
    assert "FailureConfig(report_timeout_s=1.5)" in str(result.error)
    events = read_events(Path(result.path) / "result.jsonl")
    starts = [e for e in events if e["event"] == "start"]
    assert len(starts) == 2  # retried once
    time.sleep(GRACE_S + 1)
    assert not [e["pid"] for e in starts if alive(e["pid"])]


# -- SIGTERM within stop_grace_s ----------------------------------------------------------------------
def sleeps(config):
    tune.report({"x": 1})
    time.sleep(1000)


def spins_in_c(config):
    tune.report({"x": 1})
    sum(itertools.repeat(1, 10**14))  # C code that holds the GIL: no Python signal handler runs


def ignores_sigterm(config):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    tune.report({"x": 1})
    time.sleep(1000)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def start_worker(tmp_path: Path, trainable) -> tuple[subprocess.Popen, ExperimentDir]:
    """A worker as the local backend starts one: its own process group, PDEATHSIG=SIGTERM."""
    exp = ExperimentDir(tmp_path / "exp")
    exp.create()
    exp.write_trainable(pickle_trainable(trainable))
    exp.write_experiment({"stop_grace_s": GRACE_S})
    exp.write_params("t", {})
    exp.write_trial_meta("t", {})
    from hpctune.backends.local import _die_with_parent

    proc = subprocess.Popen([sys.executable, "-m", "hpctune.worker", str(exp.root), "--trial", "t"],
                            cwd=REPO, start_new_session=True, preexec_fn=_die_with_parent,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while "result" not in [e["event"] for e in read_events(exp.result_log_path("t"))]:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    time.sleep(0.2)
    return proc, exp


@pytest.mark.parametrize("trainable, target", [
    (sleeps, "worker"), (sleeps, "group"), (spins_in_c, "worker"), (spins_in_c, "group"),
    (ignores_sigterm, "group"),
    # A SIGTERM to the worker alone, with SIGTERM ignored, is discarded by the kernel: nothing
    # can see it. A cancel signals the whole job (local: the group; Slurm: every process).
], ids=lambda v: getattr(v, "__name__", v))
def test_sigterm_ends_the_worker_within_the_grace(tmp_path, trainable, target):
    proc, exp = start_worker(tmp_path, trainable)
    try:
        sent = time.monotonic()
        if target == "group":
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=GRACE_S + 5)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert took < GRACE_S + 1.5, took
    err = proc.stderr.read().decode()
    assert f"did not end within stop_grace_s={GRACE_S:g} s of SIGTERM" in err
    time.sleep(0.5)
    leftover = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert [p for p in leftover if alive(int(p))] == []


DRIVER = textwrap.dedent('''
    import sys
    from hpctune import tune
    from tests.e2e.test_hangs import ignores_sigterm_with_a_child
    tune.Tuner(ignores_sigterm_with_a_child, param_space={"x": tune.grid_search([1, 2])},
               run_config=tune.RunConfig(name="orphans", storage_path=sys.argv[1], verbose=0)).fit()
''')


def ignores_sigterm_with_a_child(config):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen(["sleep", "1000"], preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_IGN))
    Path("child.pid").write_text(str(child.pid))
    tune.report({"x": 1})
    time.sleep(1000)


def test_nothing_outlives_a_killed_local_driver(tmp_path):
    env = {**os.environ, "HPCTUNE_BACKEND": "local", "PYTHONPATH": str(REPO)}
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(tmp_path)], cwd=REPO, env=env)
    exp = ExperimentDir(tmp_path / "orphans")
    try:
        deadline = time.monotonic() + 60
        while len(list(exp.trials_dir.glob("*/child.pid"))) < 2:
            assert time.monotonic() < deadline and driver.poll() is None
            time.sleep(0.1)
        time.sleep(0.3)
        workers = [e["pid"] for p in exp.trials_dir.glob("*/result.jsonl") for e in read_events(p)
                   if e["event"] == "start"]
        children = [int(p.read_text()) for p in exp.trials_dir.glob("*/child.pid")]
        assert len(workers) == 2 and all(alive(pid) for pid in workers + children)
    finally:
        driver.kill()
        driver.wait()
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in workers + children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in workers + children if alive(pid)] == []
