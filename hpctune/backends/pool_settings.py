"""Whether an experiment runs its trials through a worker pool: ``TuneConfig(reuse_actors=...)``.

The default lives here (``DEFAULT_REUSE_ACTORS``), decided by ``use_pool``. As in Ray Tune,
it is on for function trainables and for class trainables that implement ``reset_config``
(Ray's rule); hpctune takes it where a pool can run the trials: on Slurm, trials of one node
and one task whose request does not depend on the config, without ``use_srun`` and without
``ResourceChangingScheduler``. Anywhere else the default is one job per trial, and an
explicit ``reuse_actors=True`` is a ConfigError that names the conflict. ``False`` always
keeps one Slurm job per trial. The local backend always runs one process per trial.
"""

from __future__ import annotations

from typing import Any

from hpctune.errors import ConfigError

#: the one place where the default of ``TuneConfig(reuse_actors=None)`` is decided
DEFAULT_REUSE_ACTORS = True


def reuse_actors(requested: bool | None, trainable: Any) -> bool:
    """True if the trainable may (None: by default) run through a worker pool. ``requested``
    None takes the default (for a class trainable only when it implements ``reset_config``);
    an explicit True with a class trainable that does not implement it is a ConfigError,
    raised before anything is written. ``use_pool`` adds what the backend and the trials need."""
    from hpctune.tune.trainable import Trainable, is_class_trainable

    is_class = is_class_trainable(trainable)
    resets = is_class and getattr(trainable, "reset_config", None) is not Trainable.reset_config
    if requested is None:
        return DEFAULT_REUSE_ACTORS and (resets or not is_class)
    if requested and is_class and not resets:
        raise ConfigError(
            f"TuneConfig(reuse_actors=True) with the class trainable {trainable.__name__}, which does not "
            "implement reset_config(new_config): as in Ray Tune, a class trainable may be reused only "
            "when it implements reset_config (returning True). Fix: implement it, or set "
            "reuse_actors=False.")
    return bool(requested)


def use_pool(requested: bool | None, trainable: Any, backend: str, use_srun: bool = False,
             scheduler: Any = None) -> bool:
    """True if the trials run through a worker pool: only on Slurm; ``requested`` True or
    False as asked (``check_pool_use`` refuses a True that cannot be kept); None takes the
    default where a pool can run the trials (``pool_fits``), else one job per trial."""
    wanted = reuse_actors(requested, trainable)  # first: a class without reset_config is refused
    if backend != "slurm" or not wanted:
        return False
    return requested is not None or pool_fits(trainable, use_srun, scheduler)


def pooled_on_slurm(tune_config: Any, trainable: Any, slurm_config: Any) -> bool:
    """``use_pool`` for a Tuner's configs on Slurm (``TuneConfig``, ``SlurmConfig``)."""
    return use_pool(tune_config.reuse_actors, trainable, "slurm", slurm_config.use_srun,
                    tune_config.scheduler)


def pool_fits(trainable: Any, use_srun: bool, scheduler: Any) -> bool:
    """Whether a pool can run every trial of this experiment, known before any is launched:
    no srun, no ResourceChangingScheduler, and a request of one node and one task that is
    not a function of the config (such a function could ask for more at launch)."""
    from hpctune.core.resources import RESOURCES_ATTR, resources_for, task_count
    from hpctune.tune.schedulers.resource_changing_scheduler import ResourceChangingScheduler
    from hpctune.tune.trainable import Trainable, is_class_trainable

    if use_srun or isinstance(scheduler, ResourceChangingScheduler):
        return False
    getter = getattr(trainable, RESOURCES_ATTR, None)
    if getter is not None and callable(getter()):
        return False  # a function of the config
    if getter is None and is_class_trainable(trainable) and any(
            "default_resource_request" in vars(k) for k in trainable.__mro__
            if k not in (Trainable, object)):
        return False  # a class that sizes its trials from their config
    try:
        resources = resources_for(trainable, {})
    except Exception:  # noqa: BLE001 - a request that needs the config: one job per trial
        return False
    return int(resources.get("nodes") or 1) == 1 and task_count(resources) == 1


def check_pool_use(requested: bool | None, trainable: Any, backend: str, use_srun: bool = False,
                   scheduler: Any = None) -> bool:
    """At ``Tuner(...)``, before anything is written: a class without ``reset_config``, a share
    of a GPU without a pool, or a pool with ``ResourceChangingScheduler`` is a ConfigError;
    ``reuse_actors=True`` on the local backend is said once to have no effect. Returns True if
    the trials run through a worker pool."""
    from hpctune.config.ray_env import notice_once
    from hpctune.core.resources import check_gpu_share, resources_for
    from hpctune.tune.schedulers.resource_changing_scheduler import ResourceChangingScheduler

    pooled = use_pool(requested, trainable, backend, use_srun, scheduler)
    if requested and backend == "local":
        notice_once("reuse_actors", "TuneConfig(reuse_actors=True) has no effect with the local "
                                    "backend: it runs each trial in a process of its own.")
    if pooled and use_srun:
        raise ConfigError("TuneConfig(reuse_actors=True) with SlurmConfig(use_srun=True): a pool task "
                          "runs its trials in the batch step itself. Fix: set use_srun=False, or "
                          "reuse_actors=False for trials that need srun (multi-node trials).")
    if pooled and isinstance(scheduler, ResourceChangingScheduler):
        raise ConfigError("ResourceChangingScheduler with TuneConfig(reuse_actors=True): a pool task's "
                          "resources are fixed when it starts, so a trial could not get its new request "
                          "(Ray refuses this pair too). Fix: reuse_actors=False.")
    try:
        resources = resources_for(trainable, {})
    except Exception:  # noqa: BLE001 - a function of the config: the backend checks at launch
        return pooled
    check_gpu_share(resources, pooled)
    if pooled:
        check_single_node(resources)
    return pooled


def check_single_node(resources: dict[str, Any]) -> None:
    """A pool runs trials of one node and one task each (ConfigError otherwise)."""
    from hpctune.core.resources import task_count

    if int(resources.get("nodes") or 1) > 1 or task_count(resources) > 1:
        raise ConfigError(
            f"TuneConfig(reuse_actors=True) with multi-node or multi-task trials ({resources}): a "
            "pool task runs each trial as one process on its own node. Fix: set reuse_actors=False "
            "for these trials, or request {'nodes': 1} and one task.")
