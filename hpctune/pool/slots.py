"""How many trials a pool task runs at once, and which GPUs each one sees.

A pool task runs ``slots`` trials at once (``SlurmConfig(pool_slots_per_task)``). For a
GPU shape it holds the GPUs those trials need (Slurm's ``--gres``, visible to it as
``CUDA_VISIBLE_DEVICES``) and gives each trial its own ``CUDA_VISIBLE_DEVICES``:

* ``gpu`` a whole number: each trial gets that many GPUs of its own; no two trials share one;
* ``gpu`` a fraction (``0.25``): ``floor(1 / gpu)`` trials share each GPU (4 here), which is
  all the isolation there is: they share its memory and compute, nothing enforces the
  fraction. By default such a pool task holds one GPU and fills it.

A shape without GPUs leaves ``CUDA_VISIBLE_DEVICES`` as Slurm set it.
"""

from __future__ import annotations

import math
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
    #: GPUs per trial (a fraction: the trial's share of one GPU)
    gpu: float = 0

    def free(self, running: Iterable[Any]) -> bool:
        """True while fewer trials run than the task has slots."""
        return sum(1 for _ in running) < self.slots

    def take(self, running: Iterable[Any]) -> tuple[str, ...]:
        """The GPUs for a new trial: whole ones no running trial uses, or the least shared one
        that still has room for a fraction."""
        if not self.gpu_ids or not self.gpu:
            return ()
        used = Counter(g for child in running for g in child.gpus)
        if self.gpu >= 1:
            return tuple([g for g in self.gpu_ids if not used[g]][: int(self.gpu)])
        room = [g for g in self.gpu_ids if used[g] < per_gpu(self.gpu)]
        return (min(room, key=lambda g: used[g]),) if room else ()


def per_gpu(gpu: float) -> int:
    """How many trials asking for ``gpu`` (a fraction) share one GPU."""
    return max(1, math.floor(1 / gpu + 1e-9))


def default_slots(resources: dict[str, Any], configured: int | None) -> int:
    """Trials per pool task: as configured, else one (a fractional GPU shape: one GPU's worth)."""
    if configured:
        return configured
    gpu = float(resources.get("gpu") or 0)
    return per_gpu(gpu) if 0 < gpu < 1 else 1


def task_resources(resources: dict[str, Any], slots: int) -> dict[str, Any]:
    """What a pool task running ``slots`` trials of this shape asks Slurm for."""
    out = {**resources, "cpu": int(resources.get("cpu") or 1) * slots}
    gpu = float(resources.get("gpu") or 0)
    if gpu:
        out["gpu"] = int(gpu) * slots if gpu >= 1 else math.ceil(slots / per_gpu(gpu))
    if resources.get("mem_gb"):
        out["mem_gb"] = resources["mem_gb"] * slots
    return out


def plan_for(resources: dict[str, Any], slots: int = 1, visible: str | None = None) -> SlotPlan:
    """The slot plan of a pool task for one trial shape, from the GPUs Slurm gave it."""
    gpu = float(resources.get("gpu") or 0)
    if not gpu:
        return SlotPlan(slots=max(1, slots))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "") if visible is None else visible
    ids = tuple(d.strip() for d in visible.split(",") if d.strip())
    room = len(ids) // int(gpu) if gpu >= 1 else len(ids) * per_gpu(gpu)
    return SlotPlan(slots=max(1, min(slots, room)), gpu_ids=ids, gpu=gpu)
