"""Search quality: seeded TPE (OptunaSearch) vs seeded random search on Hartmann-4.

Both searchers see the same hpctune space, four ``tune.uniform(0, 1)`` parameters, and
the same budget. TPE is driven through the Searcher API (suggest -> evaluate ->
on_trial_complete); random search draws from the same space with ``Domain.sample`` and
a seeded numpy Generator. Hartmann-4 (Picheny et al. 2013 scaling) has its global
minimum near -3.135 at about (0.187, 0.191, 0.557, 0.265). Lower is better.

    python bench/search_quality.py [--seeds 10] [--budget 60]
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

from hpctune import space as tune
from hpctune.tune.search.optuna import OptunaSearch

ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
A = np.array([[10, 3, 17, 3.5], [0.05, 10, 17, 0.1], [3, 3.5, 1.7, 10], [17, 8, 0.05, 10]])
P = 1e-4 * np.array(
    [[1312, 1696, 5569, 124], [2329, 4135, 8307, 3736], [2348, 1451, 3522, 2883],
     [4047, 8828, 8732, 5743]]
)
SPACE = {f"x{i}": tune.uniform(0.0, 1.0) for i in range(4)}


def hartmann4(config: dict) -> float:
    """The 4-D Hartmann function, deterministic; minimum about -3.135."""
    x = np.array([config[f"x{i}"] for i in range(4)])
    inner = np.sum(A * (x - P) ** 2, axis=1)
    return float((1.1 - np.sum(ALPHA * np.exp(-inner))) / 0.839)


def best_tpe(seed: int, budget: int) -> float:
    """Best value found by OptunaSearch (TPE) in ``budget`` sequential evaluations."""
    searcher = OptunaSearch(SPACE, metric="loss", mode="min", seed=seed)
    best = float("inf")
    for n in range(budget):
        trial_id = f"trial_{n}"
        loss = hartmann4(searcher.suggest(trial_id))
        searcher.on_trial_complete(trial_id, {"loss": loss})
        best = min(best, loss)
    return best


def best_random(seed: int, budget: int) -> float:
    """Best value found by seeded uniform sampling of the same space."""
    rng = np.random.default_rng(seed)
    return min(
        hartmann4({key: domain.sample(rng) for key, domain in SPACE.items()})
        for _ in range(budget)
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=60)
    args = parser.parse_args(argv)

    print(f"Hartmann-4, budget {args.budget} evaluations, lower is better (optimum -3.135)")
    print(f"{'seed':>4}  {'best TPE':>9}  {'best random':>11}  winner")
    tpe, rand = [], []
    for seed in range(args.seeds):
        tpe.append(best_tpe(seed, args.budget))
        rand.append(best_random(seed, args.budget))
        winner = "TPE" if tpe[-1] < rand[-1] else "random" if rand[-1] < tpe[-1] else "tie"
        print(f"{seed:>4}  {tpe[-1]:>9.4f}  {rand[-1]:>11.4f}  {winner}")
    wins = sum(t < r for t, r in zip(tpe, rand, strict=True))
    print(f"TPE won {wins}/{args.seeds} seeds; median best: TPE {statistics.median(tpe):.4f}, "
          f"random {statistics.median(rand):.4f}")


if __name__ == "__main__":
    main()
