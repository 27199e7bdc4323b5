"""Start-up of a multi-node trial: submission to first result, 2 nodes against 1 node.

For each task layout, R single-trial experiments: the time from the trial's sbatch (its
script's mtime, written just before) to its first result event. The floor, measured in the
same run for the same layout, is Slurm's own: sbatch of a script whose `srun` tasks print the
time, to the first task's timestamp (no Python). Prints the medians, each layout against its
floor, and each layout against the 1-node trial.
    python bench/multinode_start.py [--reps 3]
On the lab, first `eval "$(scripts/slurm-lab.sh env)"`: Open MPI needs its TCP settings there.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from _common import storage_dir

from hpctune import tune
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.result_log import read_events

#: (label, resources, mpi): the trial reports after an MPI barrier across its ranks when mpi
LAYOUTS = [
    ("1 node x 1 task", {"cpu": 1}, False),
    ("2 nodes x 1 task", {"cpu": 1, "nodes": 2, "tasks_per_node": 1}, False),
    ("2 nodes x 2 tasks", {"cpu": 1, "nodes": 2, "tasks_per_node": 2}, False),
    ("2 nodes x 2 tasks, MPI barrier", {"cpu": 1, "nodes": 2, "tasks_per_node": 2}, True),
]


def report_once(config):
    if config["mpi"]:
        from hpctune.worker.distributed import mpi_world

        mpi_world().Barrier()  # every rank up and connected
    tune.report({"up": 1})


def hpctune_start(resources: dict, mpi: bool) -> float:
    """Seconds from the trial's sbatch to its first result event."""
    setup = ["export SLURM_MPI_TYPE=${SLURM_MPI_TYPE:-pmix}"] if mpi else []
    grid = tune.Tuner(
        tune.with_resources(report_once, resources), param_space={"mpi": mpi},
        run_config=tune.RunConfig(storage_path=storage_dir("mnstart"), verbose=0,
                                  slurm=tune.SlurmConfig(poll_interval_s=0.5, setup=setup)),
    ).fit()
    (result,) = grid
    if result.error:
        raise SystemExit(f"the trial failed: {result.error}")
    exp = ExperimentDir(grid.experiment_path)
    (uid,) = exp.array_uids()
    script = exp.array_paths(uid)[1]  # written just before its sbatch
    first = next(e for e in read_events(Path(result.path) / "result.jsonl") if e["event"] == "result")
    return first["time"] - script.stat().st_mtime


def slurm_floor(resources: dict) -> float:
    """Seconds from sbatch to the first srun task's timestamp, the same layout, no Python."""
    nodes, per_node = resources.get("nodes", 1), resources.get("tasks_per_node", 1)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "t"
        script = Path(tmp) / "floor.sh"
        script.write_text(f"#!/bin/bash\n#SBATCH -N{nodes} --ntasks-per-node={per_node} -o /dev/null\n"
                          f"srun bash -c 'date +%s.%N >> {out}'\n")
        start = time.time()
        subprocess.run(["sbatch", "--wait", str(script)], check=True, capture_output=True)
        return min(float(line) for line in out.read_text().split()) - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    os.environ["HPCTUNE_BACKEND"] = "slurm"
    medians = {}
    print(f"{'layout':34} {'hpctune (s)':>12} {'Slurm floor (s)':>16} {'ratio':>6}   min/max hpctune")
    for label, resources, mpi in LAYOUTS:
        runs = [hpctune_start(resources, mpi) for _ in range(args.reps)]
        floors = [slurm_floor(resources) for _ in range(args.reps)]
        medians[label] = med = statistics.median(runs)
        floor = statistics.median(floors)
        print(f"{label:34} {med:12.2f} {floor:16.2f} {med / floor:6.2f}   {min(runs):.2f}/{max(runs):.2f}")
    base = medians[LAYOUTS[0][0]]
    for label in list(medians)[1:]:
        print(f"{label} vs 1 node x 1 task: {medians[label] / base:.2f}x ({medians[label] - base:+.2f} s)")


if __name__ == "__main__":
    main()
