"""Exactly once under driver crashes: N runs of 12 trials x 20 steps, the driver SIGKILLed
1-3 times at random points in each, then restored; counts what went wrong.

    python bench/chaos.py [--runs 20] [--backend local|slurm|both] [--seed 0]

Prints, per backend: runs, kills, and the problems found (trials without exactly one
``complete`` event, iterations shown twice or missing in ResultGrid, overlapping workers of
one trial). The Slurm backend needs the lab (scripts/slurm-lab.sh up).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.chaos import chaos_run, check  # noqa: E402


def campaign(backend: str, runs: int, seed: int) -> dict:
    rng = random.Random(seed)
    totals = {"runs": 0, "kills": 0, "problems": []}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"hpctune-chaos-{backend}-") as tmp:
        for run in range(runs):
            exp = Path(tmp) / f"chaos{run}"
            outcome = chaos_run(exp, backend, kills=rng.randint(1, 3), rng=rng,
                                sleep=0.05 if backend == "local" else 0.1)
            problems = check(exp)
            totals["runs"] += 1
            totals["kills"] += outcome["kills"]
            totals["problems"] += [f"run {run}: {p}" for p in problems]
            print(f"  {backend} run {run:2d}: kills at {outcome['killed_at_s']} s -> "
                  f"{len(problems)} problems", flush=True)
    totals["wall_s"] = time.monotonic() - started
    return totals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--backend", choices=["local", "slurm", "both"], default="local")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    backends = ["local", "slurm"] if args.backend == "both" else [args.backend]
    bad = 0
    for backend in backends:
        totals = campaign(backend, args.runs, args.seed)
        bad += len(totals["problems"])
        print(f"{backend}: {totals['runs']} runs, {totals['kills']} driver kills, "
              f"{len(totals['problems'])} problems ({totals['wall_s']:.0f} s)")
        for problem in totals["problems"][:20]:
            print(f"    {problem}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
