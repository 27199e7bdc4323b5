"""The state of a worker pool's runs, from a listing of its queue and its pool tasks' states.

Pure mappings, shared by ``PoolBackend.poll`` (the driver) and ``hpctune status``
(``cli/inspect``), which asks squeue for the pool tasks itself: one rule for both. Light on
purpose (no submitit): the CLI imports it.
"""

from __future__ import annotations

from hpctune.backends.base import JobReport
from hpctune.core.ids import run_job_id
from hpctune.storage.pool_queue import QueueView, node_label

#: what a run still in the pool's queue reports: waiting for a pool task, not for Slurm
QUEUED = JobReport("PENDING", "PoolQueue")


def run_states(view: QueueView, tasks: dict[str, JobReport]) -> dict[str, JobReport]:
    """``{pool-N: JobReport}`` of every run ``view`` lists: a queued run is PENDING (PoolQueue);
    a claimed one has its pool task's state, and the node shows the task. A claim whose pool
    task ``tasks`` (squeue's answer) lacks is left out: its task left the queue, so the run
    is gone (see ``orphaned_claims``)."""
    states = {run_job_id(seq): QUEUED for seq in view.queued}
    for seq, task in view.claimed.items():
        state = tasks.get(task)
        if state is not None:
            states[run_job_id(seq)] = JobReport(state.state, state.reason, node_label(state.node, task))
    return states


def orphaned_claims(view: QueueView, tasks: dict[str, JobReport]) -> dict[int, str]:
    """``{run: pool task}`` of the claims whose pool task is no longer in the queue."""
    return {seq: task for seq, task in view.claimed.items() if task not in tasks}
