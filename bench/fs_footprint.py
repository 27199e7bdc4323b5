"""What an experiment does to the shared filesystem: files and bytes per trial, and the
filesystem calls of one trial's worker and of the driver, counted with strace.

    python bench/fs_footprint.py [--trials 4 --results 20 --checkpoint-every 5] [--no-auto-loggers]

Runs on the local backend (the worker is the one Slurm starts; only the launching differs),
under ``strace -f`` when it is installed. Prints files and bytes per trial directory, the job
logs per trial (``jobs/local-N.*``: one job per trial here, as with a Slurm array; a pool's
are per pool task) and so the files per finished trial, and the calls per worker (per result)
and of the driver by kind (open, stat, rename, flock, fsync...). ``--checkpoint-every 0``: no
checkpoints (the files-per-trial ceiling of docs/concepts.md); ``--no-auto-loggers``:
``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1``, the setting for very large experiments.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

EXPERIMENT = """
import os, sys, tempfile
from hpctune import train, tune

def objective(config):
    for step in range(1, {results} + 1):
        ckpt = None
        if {every} and step % {every} == 0:
            d = tempfile.mkdtemp()
            open(os.path.join(d, "model.txt"), "w").write(str(step))
            ckpt = train.Checkpoint.from_directory(d)
        train.report({{"loss": config["x"] / step}}, checkpoint=ckpt)

tune.Tuner(objective, param_space={{"x": tune.uniform(0, 1)}},
           tune_config=tune.TuneConfig(metric="loss", mode="min", num_samples={trials}),
           run_config=tune.RunConfig(name="fs", storage_path=sys.argv[1], verbose=0,
                                     checkpoint_config=train.CheckpointConfig(num_to_keep=2))).fit()
"""
KINDS = {"open": ("open", "openat", "creat"), "stat": ("stat", "lstat", "fstat", "newfstatat", "statx",
         "access", "faccessat", "faccessat2", "readlink"), "rename": ("rename", "renameat", "renameat2"),
         "create/remove": ("mkdir", "mkdirat", "unlink", "unlinkat", "rmdir", "link", "linkat", "symlink",
         "symlinkat"), "flock": ("flock",), "fsync": ("fsync", "fdatasync"), "list": ("getdents64",),
         "chmod": ("chmod", "fchmod", "fchmodat")}
CALL = re.compile(r"^(\d+)\s+(\w+)\((.*)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--results", type=int, default=20)
    ap.add_argument("--checkpoint-every", type=int, default=5, help="0: no checkpoints")
    ap.add_argument("--no-auto-loggers", action="store_true", help="TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    script = tmp / "exp.py"
    script.write_text(EXPERIMENT.format(results=args.results, every=args.checkpoint_every, trials=args.trials))
    env = {**os.environ, "HPCTUNE_BACKEND": "local"}
    env.pop("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", None)
    if args.no_auto_loggers:
        env["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    trace = tmp / "trace"
    prefix = ["strace", "-f", "-qq", "-o", str(trace), "-e", "trace=%file,%desc"] if shutil.which("strace") else []
    subprocess.run([*prefix, sys.executable, str(script), str(tmp / "storage")], env=env, check=True)
    root = tmp / "storage" / "fs"
    trials = [d for d in (root / "trials").iterdir() if d.is_dir()]
    per_trial = [sum(1 for p in d.rglob("*") if p.is_file()) for d in trials]
    sizes = [sum(p.stat().st_size for p in d.rglob("*") if p.is_file()) for d in trials]
    job_logs = [p for p in (root / "jobs").iterdir() if p.name.startswith("local-")]
    other = sum(1 for p in root.rglob("*") if p.is_file()) - sum(per_trial) - len(job_logs)
    every = f"a checkpoint every {args.checkpoint_every} (2 kept)" if args.checkpoint_every else "no checkpoints"
    loggers = "no auto loggers" if args.no_auto_loggers else "default loggers"
    print(f"{len(trials)} trials x {args.results} results, {every}, {loggers}")
    print(f"files per trial directory: {min(per_trial)}-{max(per_trial)}; job logs per trial: "
          f"{len(job_logs) / len(trials):g}; files per finished trial: "
          f"{max(per_trial) + len(job_logs) / len(trials):g}; bytes per trial: {min(sizes)}-{max(sizes)}; "
          f"other files of the experiment: {other}")
    for d in trials[:1]:
        print("  " + ", ".join(sorted(p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file())))
    if prefix:
        report(trace, args.trials, args.results)


def report(trace: Path, trials: int, results: int) -> None:
    """Calls on the experiment's files, by process: each worker, and the driver (the rest)."""
    workers, counts = set(), collections.defaultdict(collections.Counter)
    fds: dict[tuple[str, str], str] = {}  # (pid, fd) -> the path it was opened with
    for line in trace.read_text().splitlines():
        m = CALL.match(line)
        if not m:
            continue
        pid, call, rest = m.groups()
        if call == "execve" and "hpctune.worker" in rest:
            workers.add(pid)
        path = rest.split('"')[1] if '"' in rest else fds.get((pid, rest.split(",")[0].split(")")[0]), "")
        if call in KINDS["open"] and "= " in rest:
            fds[(pid, rest.rsplit("= ", 1)[1].split()[0])] = path
        kind = next((k for k, calls in KINDS.items() if call in calls), None)
        if kind and "/storage/fs" in path:
            counts[pid][kind] += 1
    worker = sum((counts[p] for p in workers), collections.Counter())
    driver = sum((c for p, c in counts.items() if p not in workers), collections.Counter())
    print(f"per worker (one trial, {results} results): " +
          ", ".join(f"{k} {v / max(1, len(workers)):.0f}" for k, v in sorted(worker.items())))
    print("driver, whole run: " + ", ".join(f"{k} {v}" for k, v in sorted(driver.items())))


if __name__ == "__main__":
    main()
