"""How fast the inspection commands answer on a 10,000-trial experiment.

Builds a synthetic experiment directory in the documented layout (experiment.json,
summary.json, state.json with every trial, trials/<id>/{params.json,trial.json,result.jsonl},
jobs/), written directly, then times ``hpctune ls``, ``status``, ``best`` and ``trials``
in-process (``hpctune.cli.main``) and as a subprocess (what a user waits for, Python
start-up included).
    python bench/cli_speed.py [--trials 10000] [--iterations 20] [--repeat 3] [--keep] [--old-state]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _common import storage_dir

from hpctune.cli.main import main as cli_main
from hpctune.storage.experiment import ExperimentDir, config_view
from hpctune.storage.summary import experiment_summary
from hpctune.tune.experiment.trial import JobState, Trial, TrialStatus

STATES = [TrialStatus.TERMINATED] * 8 + [TrialStatus.RUNNING, TrialStatus.PENDING]


def auto_fields(trial_id: str, step: int, job_id: str) -> dict:
    """The fields the worker's session adds to every result (see hpctune/worker/session.py)."""
    now = 1.7e9 + step
    return {"training_iteration": step, "time_this_iter_s": 1.5, "time_total_s": step * 1.5,
            "time_since_restore": step * 1.5, "iterations_since_restore": step, "timestamp": int(now),
            "date": "2024-01-01_00-00-00", "done": False, "trial_id": trial_id,
            "experiment_tag": "0_lr=0.001", "hostname": "n1", "node_ip": "10.0.0.1", "pid": 4242,
            "slurm_job_id": job_id, "restart_count": 0}


def make_trial(root: Path, index: int, iterations: int, rng: random.Random) -> Trial:
    """One trial with ``iterations`` results, its files written like the driver and worker do
    (the metric analysis from its last ten results: the record has its real size)."""
    trial_id = f"bench0001_{index:06d}"
    config = {"lr": 10 ** rng.uniform(-4, -1), "layers": rng.choice([2, 4, 8]), "opt": {"name": "adam"}}
    trial = Trial(trial_id, config, f"{index}_lr={config['lr']:.4g}", str(root / "trials" / trial_id),
                  resources={"cpu": 1, "gpu": 1}, status=STATES[index % len(STATES)],
                  job_id=f"{1000 + index // 1000}_{index % 1000}")
    directory = Path(trial.path)
    directory.mkdir(parents=True)
    (directory / "params.json").write_text(json.dumps(config))
    (directory / "trial.json").write_text(json.dumps({"trial_id": trial_id, "resources": trial.resources}))
    lines = []
    for step in range(1, iterations + 1):
        result = {"loss": rng.random() / step, "accuracy": 1 - rng.random() / step,
                  **auto_fields(trial_id, step, trial.job_id)}
        if step > iterations - 10:
            trial.record_result(result)
        lines.append(json.dumps({"event": "result", "result": result, "slurm_job_id": trial.job_id}))
    text = "\n".join(lines) + "\n"
    (directory / "result.jsonl").write_text(text)
    trial.num_results, trial.log_offset, trial.max_iteration = iterations, len(text), iterations
    if trial.status is TrialStatus.RUNNING:
        trial.job_state, trial.node = JobState.RUNNING, f"n{index % 64}"
    elif trial.status is TrialStatus.PENDING:
        trial.job_state, trial.job_reason = JobState.PENDING, "Priority"
    return trial


def build(root: Path, count: int, iterations: int, old_state: bool = False) -> list[Trial]:
    """The experiment directory; its state as the driver writes it (a compacted base and a
    journal of the last snapshot's changes), or with ``old_state`` as hpctune before the
    journal wrote it (one ``state.json`` with every trial, indented)."""
    rng = random.Random(0)
    (root / "jobs").mkdir(parents=True)
    trials = [make_trial(root, i, iterations, rng) for i in range(count)]
    (root / "experiment.json").write_text(json.dumps({"metric": "loss", "mode": "min",
                                                      "scheduler": "AsyncHyperBandScheduler"}))
    commands = {"sbatch": 10, "squeue": 5000}
    run = {"searcher_finished": True, "backend_commands": commands, "updated": time.time()}
    records = [{**t.to_dict(), "config": config_view(t.config)} for t in trials]
    if old_state:
        (root / "state.json").write_text(json.dumps({"trials": records, **run}, indent=1, default=str))
    else:
        from hpctune.storage.journal import JournalWriter  # not in hpctune before the journal

        writer = JournalWriter(ExperimentDir(root))
        writer.compact(1, records, run)
        writer.append(2, records[: max(1, count // 50)], run)  # one interval's changes
    summary = experiment_summary(trials, "loss", "min", "running", commands)
    (root / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    return trials


def time_in_process(argv: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            code = cli_main(argv)
        best = min(best, time.perf_counter() - start)
        if code != 0:
            raise SystemExit(f"hpctune {' '.join(argv)} exited with {code}")
    return best


def time_subprocess(argv: list[str], repeat: int) -> float:
    best = float("inf")
    command = [sys.executable, "-m", "hpctune.cli", *argv]
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the experiment directory")
    parser.add_argument("--old-state", action="store_true",
                        help="write state.json as hpctune before the state journal did (every trial, indented)")
    args = parser.parse_args()
    storage = Path(storage_dir("cli-speed"))
    root = storage / "big"
    start = time.perf_counter()
    build(root, args.trials, args.iterations, args.old_state)
    state_mb = sum(p.stat().st_size for p in root.glob("state.*")) / 1e6
    print(f"built {args.trials} trials x {args.iterations} results in {time.perf_counter() - start:.1f} s "
          f"(state files {state_mb:.1f} MB) at {root}")
    os.environ["HPCTUNE_STORAGE_PATH"] = str(storage)
    commands = [["ls"], ["status", "big", "--no-squeue"], ["best", "big"],
                ["trials", "big", "--filter", "loss < 0.01", "--sort", "loss"]]
    print(f"{'command':<52} {'in-process':>11} {'subprocess':>11}")
    for argv in commands:
        inproc, sub = time_in_process(argv, args.repeat), time_subprocess(argv, args.repeat)
        print(f"hpctune {' '.join(argv):<44} {inproc:>10.3f}s {sub:>10.3f}s")
    if not args.keep:
        shutil.rmtree(storage)


if __name__ == "__main__":
    main()
