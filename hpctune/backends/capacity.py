"""How many CPUs and GPUs the trials of a backend may share (ResourceChangingScheduler's total).

On Slurm: the nodes of the partition the trials go to (``SlurmConfig(partition=...)``, else the
default partition), from one ``sinfo`` through the counted, rate-limited command chokepoint.
Locally: this machine's CPUs and the GPUs the local backend gives out.
"""

from __future__ import annotations

import re
from typing import Any

from hpctune.backends.slurm_commands import sinfo_args
from hpctune.errors import SlurmCommandError

_GRES_GPU = re.compile(r"^gpu(?::[^:(,]+)?:(\d+)")


def cluster_resources(backend: Any) -> dict[str, float] | None:
    """``{"cpu": n, "gpu": m, "node_cpu": i, "node_gpu": j}``: the CPUs/GPUs the backend's trials
    may share, and the most of each one node has (a one-node request cannot ask for more);
    None when it cannot tell."""
    name = getattr(backend, "name", "")
    if name == "local":
        cpus, gpus = float(backend.max_cpus), float(len(backend.gpus))
        return {"cpu": cpus, "gpu": gpus, "node_cpu": cpus, "node_gpu": gpus}
    if name == "slurm":
        return _partition_resources(backend)
    return None


def _partition_resources(backend: Any) -> dict[str, float] | None:
    partition = getattr(backend.config, "partition", None)
    try:
        proc = backend.commands.run(sinfo_args("%N|%P|%c|%G", partition), check=False)
    except SlurmCommandError:
        return None
    if proc.returncode != 0:
        return None
    return parse_sinfo_nodes(proc.stdout, default_only=not partition)


def parse_sinfo_nodes(text: str, default_only: bool) -> dict[str, float] | None:
    """Sum ``sinfo -N -o '%N|%P|%c|%G'`` over distinct nodes (of the default partition, the one
    marked ``*``, when ``default_only``), with the largest node's; None when no node is listed."""
    nodes: dict[str, tuple[float, float]] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 4 or (default_only and not parts[1].endswith("*")):
            continue
        try:
            cpus = float(parts[2])
        except ValueError:
            continue
        nodes[parts[0]] = (cpus, float(gres_gpus(parts[3])))
    if not nodes:
        return None
    return {"cpu": sum(c for c, _ in nodes.values()), "gpu": sum(g for _, g in nodes.values()),
            "node_cpu": max(c for c, _ in nodes.values()), "node_gpu": max(g for _, g in nodes.values())}


def gres_gpus(gres: str) -> int:
    """GPUs in a node's GRES text: ``gpu:2``, ``gpu:a100:4(S:0-1)``, ``gpu:2,mps:100`` -> 2/4/2."""
    total = 0
    for item in gres.split(","):
        match = _GRES_GPU.match(item.strip())
        if match:
            total += int(match.group(1))
    return total
