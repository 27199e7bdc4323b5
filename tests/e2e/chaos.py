"""Exactly once under driver crashes: run an experiment, SIGKILL its driver at random points,
restore it, and check that nothing was lost or run twice.

``chaos_run(storage, backend, kills, rng)`` runs 12 trials x 20 steps (checkpoints every
step, every 4th step, or never, by trial), killing the driver ``kills`` times at random
moments and restoring it each time. ``check(exp)`` returns the problems found (empty when
every trial has exactly one ``complete`` event, each ``training_iteration`` appears once in
what ``ResultGrid`` shows, and no two workers of one trial ever overlapped in time).
Used by tests/e2e/test_exactly_once.py and bench/chaos.py.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from hpctune.results.grid import ResultGrid
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.result_log import read_events
from tests.e2e.state import trials_of

REPO_ROOT = Path(__file__).resolve().parents[2]
TRIALS, STEPS = 12, 20
CHECKPOINT_EVERY = (1, 4, 0)  # by trial index modulo 3; 0 = never

DRIVER = """
import sys
sys.path.insert(0, {repo!r})
from hpctune import tune
from tests.e2e.chaos import chaos_counter
if {restore!r}:
    tune.Tuner.restore({exp!r}, chaos_counter).fit()
else:
    tune.Tuner(
        chaos_counter,
        param_space={{"i": tune.grid_search(list(range({trials}))), "steps": {steps}, "sleep": {sleep}}},
        tune_config=tune.TuneConfig(max_concurrent_trials=4, reuse_actors={reuse!r}),
        run_config=tune.RunConfig(name={name!r}, storage_path={storage!r}, verbose=0,
                                  keep_jobs_on_interrupt=True,
                                  slurm=tune.SlurmConfig(poll_interval_s=0.5)),
    ).fit()
"""


def chaos_counter(config):
    """Counts to ``steps``; checkpoints every 1st/4th/never step by trial; resumes from it."""
    import tempfile

    from hpctune import tune

    every = CHECKPOINT_EVERY[config["i"] % len(CHECKPOINT_EVERY)]
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as path, open(os.path.join(path, "n")) as f:
            start = int(f.read())
    for n in range(start + 1, config["steps"] + 1):
        time.sleep(config["sleep"])
        if every and n % every == 0:
            with tempfile.TemporaryDirectory() as tmp:
                with open(os.path.join(tmp, "n"), "w") as f:
                    f.write(str(n))
                tune.report({"n": n}, checkpoint=tune.Checkpoint.from_directory(tmp))
        else:
            tune.report({"n": n})


def _driver(exp: Path, backend: str, restore: bool, sleep: float,
            reuse: bool | None) -> subprocess.Popen:
    script = exp.parent / f"driver_{exp.name}.py"
    script.write_text(textwrap.dedent(DRIVER.format(
        repo=str(REPO_ROOT), restore=restore, exp=str(exp), trials=TRIALS, steps=STEPS,
        sleep=sleep, name=exp.name, storage=str(exp.parent), reuse=reuse)))
    return subprocess.Popen([sys.executable, str(script)], cwd=exp.parent,
                            env={**os.environ, "HPCTUNE_BACKEND": backend},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def chaos_run(exp: Path, backend: str, kills: int, rng: random.Random, sleep: float = 0.05,
              timeout_s: float = 300.0, reuse_actors: bool | None = None) -> dict:
    """Run the experiment at ``exp`` with ``kills`` driver SIGKILLs; returns what happened.
    ``reuse_actors`` is the experiment's ``TuneConfig(reuse_actors=...)`` (True: the worker
    pool on Slurm; False: one job per trial; None: the default)."""
    deadline = time.monotonic() + timeout_s
    killed_at = []
    for attempt in range(kills + 1):
        # a driver killed before it wrote tuner.pkl left nothing to restore: start afresh
        driver = _driver(exp, backend, restore=ExperimentDir(exp).tuner_path.exists(), sleep=sleep,
                         reuse=reuse_actors)
        if attempt < kills:
            wait = rng.uniform(0.5, 4.0)
            try:
                driver.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                driver.send_signal(signal.SIGKILL)
                driver.wait()
                killed_at.append(round(wait, 2))
                continue
        else:
            driver.wait(timeout=max(1.0, deadline - time.monotonic()))
        if driver.returncode != 0:
            raise RuntimeError(f"driver failed ({driver.returncode}): {driver.stderr.read().decode()[-2000:]}")
        if attempt < kills:  # it finished before the kill: the remaining kills cannot happen
            break
    return {"kills": len(killed_at), "killed_at_s": killed_at}


def check(exp_path: Path) -> list[str]:
    """Everything that breaks exactly-once in a finished chaos experiment."""
    exp = ExperimentDir(exp_path)
    problems = []
    grid = ResultGrid.from_path(exp.root)
    if len(grid) != TRIALS or grid.num_terminated != TRIALS:
        problems.append(f"{len(grid)} trials, {grid.num_terminated} terminated, errors {grid.errors}")
    for result in grid:
        events = read_events(exp.result_log_path(result.trial_id))
        completes = sum(1 for e in events if e["event"] == "complete")
        if completes != 1:
            problems.append(f"{result.trial_id}: {completes} complete events")
        frame = result.metrics_dataframe
        iterations = list(frame["training_iteration"]) if "training_iteration" in frame else []
        if iterations != list(range(1, STEPS + 1)):
            problems.append(f"{result.trial_id}: iterations shown {iterations}")
        problems += _overlaps(result.trial_id, events)
    return problems


def _overlaps(trial_id: str, events: list[dict]) -> list[str]:
    """Two workers of one trial alive at once: a run that starts before the previous run's
    last event (runs told apart by pid and host)."""
    runs: list[list[float]] = []  # [start, last event] per worker, in start order
    owner: list[tuple] = []
    for event in events:
        who = (event.get("hostname"), event.get("pid"))
        if event["event"] == "start":
            runs.append([event["time"], event["time"]])
            owner.append(who)
        elif owner and who in owner:
            runs[len(owner) - 1 - owner[::-1].index(who)][1] = event["time"]
    return [f"{trial_id}: run {k + 1} started at {runs[k + 1][0]:.3f} while run {k} wrote until "
            f"{runs[k][1]:.3f}" for k in range(len(runs) - 1) if runs[k + 1][0] < runs[k][1]]


def kill_mid_search_and_restore(script: Path, exp: Path, trainable, cwd: Path):
    """Run the driver ``script`` until 3 trials of ``exp`` ended, SIGKILL it, restore and finish
    the experiment with ``trainable``; check that its 10 trials ended once each with 10
    different configs. Returns (the restored Tuner, its ResultGrid)."""

    from hpctune import tune
    from tests.conftest import wait_for

    driver = subprocess.Popen([sys.executable, str(script)], cwd=cwd)

    def three_done() -> bool:
        trials = trials_of(exp)
        return sum(1 for t in trials if t["status"] == "TERMINATED") >= 3

    wait_for(three_done, timeout=120)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    restored = tune.Tuner.restore(str(exp), trainable)
    grid = restored.fit()
    assert len(grid) == 10 and grid.num_terminated == 10, [str(e) for e in grid.errors]
    assert len({(r.config["x"], r.config["y"]) for r in grid}) == 10, "a suggestion was repeated"
    for result in grid:
        starts = [e for e in read_events(Path(result.path) / "result.jsonl") if e["event"] == "start"]
        assert len(starts) == 1, "a trial was run twice"
    return restored, grid
