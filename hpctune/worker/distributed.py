"""Trials bigger than one task: Ray Train's ``ScalingConfig`` and set-up helpers for
``torch.distributed`` and mpi4py, from Slurm's task environment.

A trial with ``{"nodes": 2, "tasks_per_node": 4}`` (or a ``ScalingConfig``) runs one worker per
task under ``srun``; ``get_context()`` gives each its ranks. ``torch_setup()`` turns them into
what ``torch.distributed`` expects (``MASTER_ADDR`` = the first node, ``MASTER_PORT`` from the
job id, ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``) and joins the process group (gloo on CPUs, NCCL
on GPUs); ``mpi_world()`` returns mpi4py's ``COMM_WORLD`` after checking that MPI sees the tasks
Slurm started. Nothing heavy is imported here: torch and mpi4py only when asked for.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from hpctune.errors import ConfigError, DistributedError
from hpctune.worker.context import task_ranks

#: ``MASTER_PORT`` = PORT_BASE + job id % PORT_SPAN: two trials sharing a node differ
PORT_BASE, PORT_SPAN = 20000, 20000
_PLACEMENT = ("PACK", "SPREAD")


@dataclass(frozen=True)
class ScalingConfig(Mapping):
    """Ray Train's ``ScalingConfig`` as trial resources: ``with_resources(train_fn,
    ScalingConfig(num_workers=8, use_gpu=True))`` runs each trial as 8 tasks (ranks).

    ``resources_per_worker`` takes Ray's ``{"CPU": 8, "GPU": 1}``; ``use_gpu`` means one GPU per
    worker unless it says otherwise. hpctune's ``num_nodes`` spreads the workers evenly over that
    many nodes (``--nodes``, ``--ntasks-per-node``); without it Slurm packs them on as few nodes
    as fit (``--ntasks``). ``placement_strategy="SPREAD"`` puts one worker per node.
    """

    num_workers: int = 1
    use_gpu: bool = False
    resources_per_worker: dict[str, float] | None = None
    num_nodes: int | None = None
    placement_strategy: str = "PACK"
    trainer_resources: dict[str, float] | None = None
    _resources: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_resources", self._to_resources())

    def _to_resources(self) -> dict[str, Any]:
        workers = _whole("num_workers", self.num_workers, 1)
        _check_extras(self.trainer_resources, self.placement_strategy)
        per = dict(self.resources_per_worker or {})
        unknown = sorted(set(per) - {"CPU", "GPU", "cpu", "gpu"})
        if unknown:
            raise ConfigError(
                f"ScalingConfig(resources_per_worker=...) has {unknown}: a worker (a Slurm task) gets "
                "CPUs and GPUs here, e.g. {'CPU': 8, 'GPU': 1}; ask for memory per node with "
                "with_resources(train, {..., 'mem_gb': 64}) and other resources with SlurmConfig.")
        cpus = per.get("CPU", per.get("cpu", 1))
        gpus = per.get("GPU", per.get("gpu", 1 if self.use_gpu else 0))
        out: dict[str, Any] = {"cpu": cpus, "gpu": 0}
        if gpus:
            out["gpus_per_task"] = gpus
        return {**out, **_layout(workers, self.num_nodes, self.placement_strategy)}

    def __getitem__(self, key: str) -> Any:
        return self._resources[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._resources)

    def __len__(self) -> int:
        return len(self._resources)

    @property
    def total_resources(self) -> dict[str, float]:
        """All workers together, in Ray's spelling (``{"CPU": 64, "GPU": 8}``)."""
        per = self._resources
        return {"CPU": per["cpu"] * self.num_workers, "GPU": per.get("gpus_per_task", 0) * self.num_workers}


def _whole(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"ScalingConfig({name}={value!r}) must be a whole number >= {low}, "
                          f"e.g. ScalingConfig({name}=4).")
    return value


def _check_extras(trainer_resources: Any, placement: str) -> None:
    if trainer_resources:
        raise ConfigError(
            f"ScalingConfig(trainer_resources={trainer_resources!r}): a trial here has no separate "
            "trainer process (rank 0 is the reporting worker), so there is nothing to give them to: "
            "leave trainer_resources out.")
    if placement not in _PLACEMENT:
        raise ConfigError(f"ScalingConfig(placement_strategy={placement!r}) is not supported: use "
                          "'PACK' (as few nodes as fit), 'SPREAD' (one worker per node) or num_nodes=N.")


def _layout(workers: int, nodes: int | None, placement: str) -> dict[str, int]:
    """Slurm's task layout of ``workers`` ranks."""
    if nodes is not None:
        nodes = _whole("num_nodes", nodes, 1)
        if workers % nodes:
            raise ConfigError(f"ScalingConfig(num_workers={workers}, num_nodes={nodes}): the workers "
                              "must split evenly over the nodes; e.g. num_workers="
                              f"{nodes * max(1, workers // nodes)} or num_nodes=1.")
        return {"nodes": nodes, "tasks_per_node": workers // nodes}
    if placement == "SPREAD":
        return {"nodes": workers, "tasks_per_node": 1}
    return {"tasks": workers} if workers > 1 else {}


# -- the task environment ----------------------------------------------------------------------
@dataclass(frozen=True)
class DistributedInfo:
    """What ``torch_setup`` set up: this task's ranks, the rendezvous, the backend, the device."""

    rank: int
    local_rank: int
    world_size: int
    master_addr: str
    master_port: int
    backend: str
    device: str


def first_host(nodelist: str) -> str:
    """The first host of a Slurm hostlist: ``n[1-2]`` -> ``n1``, ``gpu[007-9,12],cpu1`` -> ``gpu007``."""
    first, depth = [], 0
    for char in nodelist:
        depth += (char == "[") - (char == "]")
        if char == "," and depth == 0:
            break
        first.append(char)
    text = "".join(first).strip()
    # each [a-b,c] group: its first number, zero padding kept
    host = re.sub(r"\[([^\]]*)\]", lambda m: re.split(r"[-,]", m.group(1))[0], text)
    if not host or any(c in host for c in "[], "):
        raise DistributedError(f"Cannot read the first host of the Slurm node list {nodelist!r}: "
                               "pass torch_setup(master_addr=...) yourself.")
    return host


def master_address() -> str:
    """The first node of the trial's allocation (rank 0 runs there), as an address other nodes can
    reach: its name when it resolves, else the address of the node that ran ``srun`` (the same
    node: the batch script runs on the first node)."""
    nodelist = os.environ.get("SLURM_STEP_NODELIST") or os.environ.get("SLURM_JOB_NODELIST")
    if not nodelist:
        return "127.0.0.1"  # one process, outside Slurm
    host = first_host(nodelist)
    try:
        socket.getaddrinfo(host, None)
        return host
    except OSError:
        launch = os.environ.get("SLURM_LAUNCH_NODE_IPADDR")
        if launch:
            return launch
        raise DistributedError(f"The first node of the trial, {host!r}, has no address this node can "
                               "resolve: pass torch_setup(master_addr=...)") from None


def master_port() -> int:
    """A port derived from the job id, the same on every rank: ``20000 + job id % 20000``;
    outside Slurm (one process, e.g. the local backend) a free port of this machine."""
    job = os.environ.get("SLURM_JOB_ID", "")
    if job.isdigit():
        return PORT_BASE + int(job) % PORT_SPAN
    with socket.socket() as probe:  # local trials run side by side: each needs its own
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def torch_env(master_addr: str | None = None, port: int | None = None) -> dict[str, str]:
    """Set (and return) the variables of torch's ``env://`` rendezvous for this task."""
    ranks = task_ranks()
    env = {
        "MASTER_ADDR": master_addr or master_address(),
        "MASTER_PORT": str(port or master_port()),
        "RANK": str(ranks.world_rank),
        "WORLD_SIZE": str(ranks.world_size),
        "LOCAL_RANK": str(ranks.local_rank),
        "LOCAL_WORLD_SIZE": str(ranks.local_world_size),
        "NODE_RANK": str(ranks.node_rank),
    }
    os.environ.update(env)
    return env


def torch_setup(backend: str | None = None, master_addr: str | None = None,
                master_port: int | None = None, timeout_s: float = 300.0) -> DistributedInfo:
    """Join this trial's ranks into ``torch.distributed``'s default process group.

    ``backend`` None: NCCL when this task sees a GPU, else gloo. With GPUs the task's device is
    set (``LOCAL_RANK`` among the GPUs it sees; its only one with ``gpus_per_task``). Called
    again, it returns the group already set up. Works as a single process outside Slurm.
    """
    import torch
    import torch.distributed as dist

    env = torch_env(master_addr, master_port)
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    backend = backend or ("nccl" if gpus else "gloo")
    device = "cpu"
    if gpus:
        index = int(env["LOCAL_RANK"]) % gpus
        torch.cuda.set_device(index)
        device = f"cuda:{index}"
    if not dist.is_initialized():
        dist.init_process_group(backend, init_method="env://", rank=int(env["RANK"]),
                                world_size=int(env["WORLD_SIZE"]), timeout=timedelta(seconds=timeout_s))
    return DistributedInfo(int(env["RANK"]), int(env["LOCAL_RANK"]), int(env["WORLD_SIZE"]),
                           env["MASTER_ADDR"], int(env["MASTER_PORT"]), backend, device)


def torch_cleanup() -> None:
    """Leave the process group ``torch_setup`` joined (optional: the trial's end does it too)."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def mpi_world() -> Any:
    """mpi4py's ``MPI.COMM_WORLD``, checked against the tasks Slurm started: an srun without an
    MPI plugin gives every task a world of its own, which would silently tune on 1/N of the data."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    expected = task_ranks().world_size
    if comm.Get_size() != expected:
        raise DistributedError(
            f"MPI sees {comm.Get_size()} rank(s) but Slurm started {expected} task(s) for this trial: "
            "srun did not connect them. Fix: choose Slurm's MPI plugin for your MPI, e.g. "
            "SlurmConfig(setup=['export SLURM_MPI_TYPE=pmix']) for Open MPI (pmi2 for MPICH); "
            "`srun --mpi=list` shows what the cluster has.")
    return comm


def is_rank_zero() -> bool:
    """True in the task that writes the trial's events and checkpoints (and outside Slurm)."""
    return task_ranks().world_rank == 0


__all__ = ["DistributedInfo", "ScalingConfig", "first_host", "is_rank_zero", "master_address",
           "master_port", "mpi_world", "torch_cleanup", "torch_env", "torch_setup"]
