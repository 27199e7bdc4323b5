"""``python -m hpctune.pool EXP_DIR --manifest FILE``: one pool task (see ``pool/task``).

Its instructions are the manifest's line picked by ``SLURM_ARRAY_TASK_ID``
(``storage/pool_manifest``), written by the pool backend before its ``sbatch``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from hpctune.pool.child import START_METHODS
from hpctune.pool.slots import plan_for
from hpctune.pool.task import PoolTask
from hpctune.storage.pool_manifest import read_manifest
from hpctune.storage.pool_queue import PoolQueue, check_task_id

#: the job started a little before this process did: its time limit counts from then (s)
START_MARGIN_S = 5.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hpctune.pool")
    parser.add_argument("experiment_dir")
    parser.add_argument("--manifest", required=True)
    args = parser.parse_args(argv)
    array, index = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if not array or not index:
        raise SystemExit("python -m hpctune.pool runs as a Slurm array task (SLURM_ARRAY_TASK_ID)")
    task_id = check_task_id(f"{array}_{index}")
    started = time.monotonic()
    task = read_manifest(args.manifest, int(index))
    if task.start_method not in START_METHODS:
        raise SystemExit(f"python -m hpctune.pool: unknown start method {task.start_method!r}")
    root = Path(args.experiment_dir)
    plan = plan_for(PoolQueue(root).read_shape(task.shape), task.slots)
    claim_until = started + task.time_min * 60 - task.signal_lead_s - START_MARGIN_S
    return PoolTask(root, task_id, task.shape, task.idle_s, task.start_method, plan, claim_until).run()


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
