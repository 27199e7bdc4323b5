"""Tune an mpi4py program: every trial runs on 2 nodes x 2 ranks, its metric an allreduce.

Each rank scores the trial's config on its own share of a generated data set; one
``allreduce`` adds the shares up, and every rank calls ``report`` with the total (rank 0's
report is the one recorded). The MPI program needs nothing but ``from mpi4py import MPI``:
Slurm's MPI plugin connects the ranks (``SLURM_MPI_TYPE``, pmix here for Open MPI).
    python examples/mpi_allreduce.py [--samples 6] [--nodes 2] [--ranks-per-node 2]
"""

import argparse

import numpy as np

from hpctune import tune
from hpctune.worker.distributed import mpi_world


def fit_line(config):
    """Mean squared error of the line ``a * x + b`` on points spread over all ranks."""
    comm = mpi_world()  # MPI.COMM_WORLD, checked: MPI sees every rank Slurm started
    rank, size = comm.Get_rank(), comm.Get_size()
    x = np.linspace(-1, 1, 4000)[rank::size]  # this rank's share of the points
    y = 3.0 * x - 0.5
    for step in range(1, config["steps"] + 1):
        a = config["a"] * step / config["steps"]  # a schedule, so that there are several reports
        local = float(np.sum((a * x + config["b"] - y) ** 2))
        total = comm.allreduce(local)  # the same sum on every rank
        count = comm.allreduce(len(x))
        tune.report({"mse": total / count, "ranks": size, "step": step})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=6)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--ranks-per-node", type=int, default=2)
    parser.add_argument("--storage", default="./hpctune_results")
    args = parser.parse_args()
    trainable = tune.with_resources(fit_line, {"nodes": args.nodes, "tasks_per_node": args.ranks_per_node})
    tuner = tune.Tuner(
        trainable,
        param_space={"a": tune.uniform(0, 5), "b": tune.uniform(-1, 1), "steps": 3},
        tune_config=tune.TuneConfig(metric="mse", mode="min", num_samples=args.samples, seed=0,
                                    max_concurrent_trials=2),
        # Open MPI's ranks meet through Slurm's pmix plugin; a site whose MpiDefault is already
        # right needs no setup line, and an exported SLURM_MPI_TYPE wins over this default
        run_config=tune.RunConfig(storage_path=args.storage, slurm=tune.SlurmConfig(
            setup=["export SLURM_MPI_TYPE=${SLURM_MPI_TYPE:-pmix}"])),
    )
    best = tuner.fit().get_best_result()
    print(f"Best config: a={best.config['a']:.3f} b={best.config['b']:.3f}, "
          f"mse {best.metrics['mse']:.4f}, ranks: {best.metrics['ranks']}")


if __name__ == "__main__":
    main()
