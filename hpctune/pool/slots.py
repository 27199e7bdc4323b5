"""How many trials a pool task runs at once, and which GPUs each one sees.

A pool task of a GPU shape holds ``gpus_per_task`` GPUs (Slurm's ``--gres``, visible to
it as ``CUDA_VISIBLE_DEVICES``) and runs one trial per ``gpu`` GPUs of the trial's
request, each with its own ``CUDA_VISIBLE_DEVICES``: no two trials share a GPU. A shape
without GPUs runs ``trials_per_task`` trials (1 by default) and leaves the variable alone.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SlotPlan:
    """The slots of one pool task."""

    slots: int = 1
    #: the task's GPU ids (None: a shape without GPUs)
    gpu_ids: tuple[str, ...] | None = None
    gpus_per_trial: int = 0

    def free(self, running: Iterable[Any]) -> bool:
        """True while fewer trials run than the task has slots."""
        return sum(1 for _ in running) < self.slots

    def take(self, running: Iterable[Any]) -> tuple[str, ...]:
        """The GPUs for a new trial: ``gpus_per_trial`` of those no running trial uses."""
        if not self.gpu_ids or not self.gpus_per_trial:
            return ()
        used = Counter(g for child in running for g in child.gpus)
        free = [g for g in self.gpu_ids if not used[g]]
        return tuple(free[: self.gpus_per_trial])


def plan_for(resources: dict[str, Any], visible: str | None = None) -> SlotPlan:
    """The slot plan of a pool task for one trial shape, from the GPUs Slurm gave it."""
    gpus = int(resources.get("gpu") or 0)
    if not gpus:
        return SlotPlan(slots=max(1, int(resources.get("pool_slots") or 1)))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "") if visible is None else visible
    ids = tuple(d.strip() for d in visible.split(",") if d.strip())
    return SlotPlan(slots=max(1, len(ids) // gpus), gpu_ids=ids, gpus_per_trial=gpus)


def task_gpus(resources: dict[str, Any], slots: int) -> int:
    """How many GPUs a pool task asks Slurm for to run ``slots`` trials of this shape at once."""
    return int(resources.get("gpu") or 0) * slots
