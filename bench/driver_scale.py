"""The driver's own cost with many trials: creating/submitting 10,000 and one loop step.

Slurm is replaced by an in-memory queue here, on purpose: this measures the driver loop
(searcher, files, bookkeeping), not the cluster. The floor printed beside it is the time
to write the two small files per trial that the protocol needs, measured in this run.
    python bench/driver_scale.py [--trials 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from _common import peak_rss_mb

from hpctune.backends.base import JobReport
from hpctune.controller import Controller, ControllerSettings
from hpctune.space import grid_search, uniform
from hpctune.storage.experiment import ExperimentDir
from hpctune.tune.callback import CallbackList
from hpctune.tune.schedulers import FIFOScheduler
from hpctune.tune.search.basic_variant import BasicVariantGenerator
from hpctune.tune.stopper import as_stopper


class InMemoryQueue:
    """Accepts every launch as a pending array task; never runs anything."""

    name, poll_interval_s, jobs_survive_driver = "in-memory", 2.0, True

    def __init__(self) -> None:
        self.jobs: dict[str, JobReport] = {}

    def launch(self, trial_ids, resources, throttle):
        first = len(self.jobs)
        ids = [f"1_{i}" for i in range(first, first + len(trial_ids))]
        self.jobs.update({j: JobReport("PENDING", "JobArrayTaskLimit") for j in ids})
        return ids

    def poll(self):
        return dict(self.jobs)

    def poll_ready(self):
        return True

    def cancel(self, job_ids):
        pass

    def final_states(self, job_ids):
        return {}

    def log_paths(self, job_id):
        return ("", "")

    def command_counts(self):
        return {}

    def submit_room(self, queued):
        return None

    def queued(self):
        return set(self.jobs)

    def recorded_launches(self):
        return {}

    def close(self):
        pass


def file_floor(trials: int) -> float:
    """Seconds to create a directory and write two small JSON files per trial."""
    root = tempfile.mkdtemp(prefix="hpctune-bench-floor-")
    start = time.perf_counter()
    for i in range(trials):
        d = os.path.join(root, str(i))
        os.mkdir(d)
        for name in ("params.json", "trial.json"):
            with open(os.path.join(d, name), "w") as f:
                json.dump({"x": i}, f)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=10_000)
    args = parser.parse_args()
    exp = ExperimentDir(tempfile.mkdtemp(prefix="hpctune-bench-scale-"))
    exp.create()
    space = {"x": grid_search(list(range(args.trials))), "lr": uniform(0, 1)}
    searcher = BasicVariantGenerator(seed=0)
    searcher.set_search_properties(None, None, space, num_samples=1)
    controller = Controller(exp, InMemoryQueue(), searcher, FIFOScheduler(), as_stopper(None),
                            CallbackList([]), ControllerSettings(max_concurrent=8, param_space=space))
    start = time.perf_counter()
    controller.step()
    created = time.perf_counter() - start
    floor = file_floor(args.trials)
    start = time.perf_counter()
    for _ in range(50):
        controller.step()
    step_ms = (time.perf_counter() - start) / 50 * 1000
    print(f"create + submit {args.trials} trials   {created:.2f} s "
          f"(floor: writing their files {floor:.2f} s, ratio {created / floor:.1f})")
    print(f"one driver step, {args.trials} queued    {step_ms:.1f} ms (the loop ticks every 50 ms)")
    print(f"driver peak RSS                  {peak_rss_mb():.0f} MiB")


if __name__ == "__main__":
    main()
