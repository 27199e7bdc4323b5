"""A trial's resource request: the keys, their checks, and what a trainable asks for.

Read on both sides: the driver checks and normalises a request before anything is written
(``with_resources``, profiles, backends, resource changes), and the backends turn it into
sbatch options. Pure checks; ConfigError says the problem and the fix.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Mapping
from numbers import Real
from typing import Any

from hpctune.errors import ConfigError

RESOURCE_KEYS = {"cpu", "gpu", "mem_gb", "memory", "nodes", "tasks_per_node", "tasks", "gpus_per_task"}
#: Ray's placement-group spelling, and Slurm's name of ``cpu`` (``--cpus-per-task``)
_ALIASES = {"CPU": "cpu", "GPU": "gpu", "cpus_per_task": "cpu"}
#: whole numbers of a trial of several tasks (distributed.md): at least 1, gpus_per_task 0
_TASK_KEYS = {"nodes": 1, "tasks_per_node": 1, "tasks": 1, "gpus_per_task": 0}
DEFAULT_RESOURCES = {"cpu": 1, "gpu": 0}
RESOURCES_ATTR = "_hpctune_resources"


def resources_for(trainable: Any, config: dict[str, Any]) -> dict[str, Any]:
    """The resource request of one trial: ``with_resources`` (a dict, or a function called
    with the config), else a class's ``default_resource_request(config)``, else 1 CPU."""
    getter = getattr(trainable, RESOURCES_ATTR, None)
    if getter is None:
        requested = (trainable.default_resource_request(config)
                     if isinstance(trainable, type) and hasattr(trainable, "default_resource_request")
                     else None)
        return dict(DEFAULT_RESOURCES) if requested is None else normalize_resources(requested)
    spec = getter()
    return normalize_resources(spec(ResourceSpec(config))) if callable(spec) else dict(spec)


class ResourceSpec(Mapping):
    """What a resources function gets: the trial's config, as a read-only Mapping
    (``lambda config: config["n"]``) that also has ``.config`` (Ray's ``lambda spec:
    spec.config.n``); nested dicts allow attribute access too."""

    def __init__(self, config: Mapping[str, Any]):
        self._data = config._data if isinstance(config, ResourceSpec) else config

    def __getitem__(self, key: Any) -> Any:
        value = self._data[key]
        return ResourceSpec(value) if isinstance(value, Mapping) else value

    def __iter__(self) -> Iterator[Any]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"the config has no key {name!r}") from None

    @property
    def config(self) -> ResourceSpec:
        return self

    def __repr__(self) -> str:
        return f"ResourceSpec({self._data!r})"


def normalize_resources(resources: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a resource dict: Ray's ``memory`` (bytes) becomes ``mem_gb``, ``CPU``/``GPU``
    are ``cpu``/``gpu``, fractional CPUs are rounded up; custom resources, fractional GPUs,
    values that are not numbers, negative counts, zero nodes and less than 1 MB of memory
    (Slurm reads ``--mem=0`` as "all of the node's memory") are ConfigErrors. Ray's one-bundle
    ``PlacementGroupFactory([{"CPU": 2}])`` is read as its bundle."""
    resources = _one_bundle(resources)
    if not isinstance(resources, Mapping):
        raise ConfigError(f"A trial's resources must be a dict such as {{'cpu': 2, 'gpu': 1}}, got "
                          f"{resources!r}: return a dict from the resources function.")
    _refuse_twice(resources)
    res = {_ALIASES.get(key, key): value for key, value in resources.items()}
    _refuse_custom(set(res) - RESOURCE_KEYS)
    out = {**DEFAULT_RESOURCES, **{k: v for k, v in res.items() if v is not None}}
    for key, value in out.items():
        _require_number(key, value)
    if "memory" in out:
        _require_positive("memory", out["memory"], 1024**2, "memory >= 1048576 bytes")
        out["mem_gb"] = out.pop("memory") / 1024**3
    if "mem_gb" in out:
        _require_positive("mem_gb", out["mem_gb"], 1 / 1024, "mem_gb >= 0.001")
    out["cpu"] = _whole_cpus(out["cpu"])
    _refuse_fractional_gpu(out["gpu"], pooled=True)
    share = 0 < out["gpu"] < 1  # a share of one GPU: only a worker pool runs it (``check_gpu_share``)
    for key, low in {"gpu": 0, **_TASK_KEYS}.items():
        if key == "gpu" and share:
            continue
        value = out.get(key)
        if value is not None and (not float(value).is_integer() or value < low):
            raise ConfigError(f"The value of resource `{key}` is {value!r}, but must be a whole number "
                              f">= {low}: with_resources(trainable, {{'{key}': {max(low, 1)}}}).")
        if value is not None:
            out[key] = int(value)
    _check_task_layout(out)
    return out


def _one_bundle(resources: Any) -> Any:
    """The bundle of a one-bundle placement group (Ray's ``PlacementGroupFactory``, which checks
    that it has exactly one), else ``resources`` as given."""
    bundles = getattr(resources, "bundles", None)
    if isinstance(bundles, list) and len(bundles) == 1 and isinstance(bundles[0], Mapping):
        return bundles[0]
    return resources


def _refuse_twice(resources: Mapping[str, Any]) -> None:
    """One name per resource: ``cpu`` and Slurm's ``cpus_per_task`` (or Ray's ``CPU``) are one."""
    for alias, name in _ALIASES.items():
        if alias in resources and name in resources:
            raise ConfigError(f"The resources give both `{alias}` and `{name}`, which are the same "
                              f"thing: keep one, e.g. {{'{name}': {resources[name]!r}}}.")


def _check_task_layout(res: dict[str, Any]) -> None:
    """GPUs are asked per node (``gpu``: ``--gres``) or per task (``gpus_per_task``), not both;
    ``tasks`` (``--ntasks``) is the alternative to ``tasks_per_node``."""
    if res.get("gpu") and res.get("gpus_per_task"):
        raise ConfigError(f"The resources give both gpu={res['gpu']} (GPUs per node, --gres) and "
                          f"gpus_per_task={res['gpus_per_task']} (--gpus-per-task): keep one, e.g. "
                          f"{{'gpus_per_task': {res['gpus_per_task']}}} for one GPU per rank.")
    if res.get("tasks") and res.get("tasks_per_node"):
        raise ConfigError(f"The resources give both tasks={res['tasks']} (--ntasks) and "
                          f"tasks_per_node={res['tasks_per_node']} (--ntasks-per-node): keep one, "
                          "e.g. {'nodes': 2, 'tasks_per_node': 4}.")


def task_count(resources: Mapping[str, Any]) -> int:
    """How many tasks (ranks) a trial with these resources runs: more than 1 means ``srun``."""
    if resources.get("tasks"):
        return int(resources["tasks"])
    return int(resources.get("nodes") or 1) * int(resources.get("tasks_per_node") or 1)


def _require_number(key: str, value: Any) -> None:
    """A resource is a finite number: never a string (nothing is coerced) or a bool."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        fix = (f"write {{'{key}': {value.strip()}}} without quotes" if _numeric_text(value)
               else f"e.g. {{'{key}': 1}}")
        raise ConfigError(f"The value of resource `{key}` is {value!r}, but must be a finite number: "
                          f"{fix}.")


def _numeric_text(value: Any) -> bool:
    try:
        return isinstance(value, str) and math.isfinite(float(value))
    except ValueError:
        return False


def _require_positive(key: str, value: float, least: float, bound: str) -> None:
    if value < least:
        raise ConfigError(f"The value of resource `{key}` is {value!r}, but must be at least 1 MB "
                          f"({bound}): Slurm reads --mem=0 as all of a node's memory. Fix: ask for "
                          "the memory a trial needs, e.g. {'mem_gb': 4}.")


def _refuse_custom(custom: set[str]) -> None:
    if not custom:
        return
    name = sorted(custom)[0]
    raise ConfigError(
        f"Unknown resource key(s) {sorted(custom)}: a trial asks Slurm for {sorted(RESOURCE_KEYS)} "
        "only (for example with_resources(train, {'cpu': 2, 'gpu': 1, 'mem_gb': 8})). A Ray custom "
        "resource is, on Slurm, a node feature or a generic resource: ask for it with "
        f"SlurmConfig(constraint='{name}') or SlurmConfig(sbatch_options={{'gres': '{name}:1'}}).")


def _whole_cpus(value: Any) -> int:
    if value < 0:
        raise ConfigError(f"The value of resource `cpu` is {value!r}, but must be >= 0.")
    whole = max(1, math.ceil(value))
    if not float(value).is_integer():
        warnings.warn(f"Resource cpu={value!r} rounded up to {whole}: Slurm gives a trial whole CPUs "
                      "(--cpus-per-task).", stacklevel=4)
    return whole


def _refuse_fractional_gpu(value: Any, pooled: bool = False) -> None:
    """A fraction of a GPU above 1 is never valid; one below 1 only in a worker pool."""
    if value is None or value <= 0 or float(value).is_integer() or (pooled and value < 1):
        return
    if value > 1:
        raise ConfigError(f"Resource gpu={value!r}: a trial asks for whole GPUs, or a share of one GPU "
                          "below 1 (with reuse_actors=True): request gpu=1, gpu=2 or e.g. gpu=0.5.")
    raise ConfigError(
        f"Resource gpu={value!r}: a fraction of a GPU cannot be given to a trial in a job of its own: "
        "Slurm gives a job whole GPUs, and trials share a GPU only in a worker pool. Fix: set "
        "TuneConfig(reuse_actors=True) on Slurm (several trials then share each GPU), or request "
        "gpu=1 or gpu=0.")


def check_gpu_share(resources: dict[str, Any], pooled: bool) -> None:
    """Refuse a fractional GPU request where no worker pool runs the trials (ConfigError)."""
    _refuse_fractional_gpu(resources.get("gpu"), pooled=pooled)
