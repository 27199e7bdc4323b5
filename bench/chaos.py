"""Exactly once under driver crashes: N runs of 12 trials x 20 steps, the driver SIGKILLed
1-3 times at random points in each, then restored; counts what went wrong.

    python bench/chaos.py [--runs 20] [--backend local|slurm|both] [--mode job|pool|default] [--seed 0]

Prints, per backend: runs, kills, and the problems found (trials without exactly one
``complete`` event, iterations shown twice or missing in ResultGrid, overlapping workers of
one trial), and restores that failed (a driver that exited with an error). ``--mode`` picks
``TuneConfig(reuse_actors=...)``: ``job`` one Slurm job per trial (False), ``pool`` the worker
pool (True), ``default`` leaves it unset. The Slurm backend needs the lab
(scripts/slurm-lab.sh up).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.chaos import TRIALS, chaos_run, check  # noqa: E402

MODES = {"job": False, "pool": True, "default": None}


def campaign(backend: str, runs: int, seed: int, mode: str = "default") -> dict:
    """``runs`` chaos runs on ``backend``; totals of kills, problems and failed restores."""
    rng = random.Random(seed)
    totals: dict = {"runs": 0, "kills": 0, "problems": [], "failed_restores": [], "bad_trials": 0,
                    "lost": 0}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"hpctune-chaos-{backend}-") as tmp:
        for run in range(runs):
            exp = Path(tmp) / f"chaos{run}"
            kills = rng.randint(1, 3)
            run_started = time.monotonic()
            try:
                outcome = chaos_run(exp, backend, kills=kills, rng=rng,
                                    sleep=0.05 if backend == "local" else 0.1,
                                    reuse_actors=MODES[mode])
            except (RuntimeError, TimeoutError, OSError) as exc:  # subprocess.TimeoutExpired too
                totals["runs"] += 1
                totals["failed_restores"].append(f"run {run}: {exc}"[:2000])
                print(f"  {backend} run {run:2d}: driver FAILED: {str(exc)[-300:]}", flush=True)
                continue
            except Exception as exc:  # noqa: BLE001 - a campaign counts every way a run fails
                totals["runs"] += 1
                totals["failed_restores"].append(f"run {run}: {type(exc).__name__}: {exc}"[:2000])
                print(f"  {backend} run {run:2d}: {type(exc).__name__}: {str(exc)[-300:]}", flush=True)
                continue
            problems = check(exp)
            totals["runs"] += 1
            totals["kills"] += outcome["kills"]
            totals["problems"] += [f"run {run}: {p}" for p in problems]
            # a trial's problems start with its id; the grid's own ("11 trials, ...") does not
            totals["bad_trials"] += len({p.split(":")[0] for p in problems if " trials, " not in p})
            totals["lost"] += sum(TRIALS - int(p.split()[2]) for p in problems
                                  if " trials, " in p and p.split()[3] == "terminated,")
            print(f"  {backend} run {run:2d}: kills at {outcome['killed_at_s']} s -> "
                  f"{len(problems)} problems ({time.monotonic() - run_started:.0f} s)", flush=True)
    totals["wall_s"] = time.monotonic() - started
    return totals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--backend", choices=["local", "slurm", "both"], default="local")
    parser.add_argument("--mode", choices=sorted(MODES), default="default",
                        help="reuse_actors: job (False), pool (True) or default (unset)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    backends = ["local", "slurm"] if args.backend == "both" else [args.backend]
    bad = 0
    for backend in backends:
        totals = campaign(backend, args.runs, args.seed, args.mode)
        bad += len(totals["problems"]) + len(totals["failed_restores"])
        print(f"{backend} ({args.mode}): {totals['runs']} runs, {totals['kills']} driver kills, "
              f"{len(totals['problems'])} problems in {totals['bad_trials']} trials, "
              f"{totals['lost']} trials not terminated, "
              f"{len(totals['failed_restores'])} failed restores ({totals['wall_s']:.0f} s)")
        for problem in (totals["problems"] + totals["failed_restores"])[:20]:
            print(f"    {problem}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
