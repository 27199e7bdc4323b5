"""Ray's older entry points on top of ``Tuner``: ``tune.run``, ``tune.run_experiments`` and
``tune.Experiment``. ``run`` returns an ``ExperimentAnalysis``.

Every keyword of Ray's ``tune.run`` is either mapped to its ``TuneConfig``/``RunConfig``
equivalent or refused with a ``ConfigError`` that says what to do instead: none is
silently dropped.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

from hpctune.config import CheckpointConfig, FailureConfig, RunConfig, TuneConfig
from hpctune.config.ray_env import notice_once
from hpctune.errors import ConfigError, TuneError
from hpctune.results.analysis import ExperimentAnalysis
from hpctune.storage.experiment import ExperimentDir
from hpctune.tune.experiment.trial import Trial, TrialStatus

#: Ray-only keywords of tune.run / Experiment, and what to do instead
RAY_ONLY = {
    "storage_filesystem": "hpctune writes to a filesystem path the compute nodes share: pass storage_path=...",
    "export_formats": "model export is not supported: save what you need in a checkpoint or the trial directory",
    "chdir_to_trial_dir": "set HPCTUNE_CHDIR_TO_TRIAL_DIR=0 (or Ray's RAY_CHDIR_TO_TRIAL_DIR=0) in the environment",
    "trial_executor": "Slurm runs the trials: there is no trial executor to replace",
    "loggers": "pass callbacks=[...] (hpctune.tune.logger: Ray's LoggerCallback API); the CSV and TensorBoard loggers are on by default (JSON when added) (TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1 turns them off)",
    "with_server": "there is no Tune server: watch the run with `hpctune status`",
    "server_port": "there is no Tune server: watch the run with `hpctune status`",
    "queue_trials": "Slurm queues the trials",
    "sync_to_driver": "trials write to the shared filesystem: there is nothing to sync",
    "global_checkpoint_period": "the driver snapshots its state every few seconds by itself",
    "_remote": "run the driver on a login node or as a Slurm job (`hpctune submit --detach`)",
    "_remote_string_queue": "run the driver on a login node or as a Slurm job (`hpctune submit --detach`)",
    "_entrypoint": "internal to Ray",
}
_RESUME_BASES = {"AUTO", "LOCAL", "TRUE"}


def refuse_ray_only(kwargs: dict[str, Any], where: str) -> None:
    """A ConfigError naming every keyword we cannot honour, with what to do instead."""
    if not kwargs:
        return
    lines = [f"  {k}: {RAY_ONLY.get(k, 'not a parameter of ' + where)}" for k in sorted(kwargs)]
    raise ConfigError(f"{where} got keyword arguments hpctune cannot honour:\n" + "\n".join(lines))


def run(run_or_experiment: Any, *, name: str | None = None, metric: str | None = None,
        mode: str | None = None, stop: Any = None, time_budget_s: Any = None, config: dict | None = None,
        resources_per_trial: Any = None, num_samples: int = 1, storage_path: str | None = None,
        search_alg: Any = None, scheduler: Any = None, checkpoint_config: CheckpointConfig | None = None,
        verbose: int = 3, progress_reporter: Any = None, log_to_file: Any = False,
        trial_name_creator: Any = None, trial_dirname_creator: Any = None, sync_config: Any = None,
        max_failures: int = 0, fail_fast: bool | str = False, restore: str | None = None,
        resume: Any = None, reuse_actors: bool | None = None, raise_on_failed_trial: bool = True,
        callbacks: list | None = None, max_concurrent_trials: int | None = None,
        keep_checkpoints_num: int | None = None, checkpoint_score_attr: str | None = None,
        checkpoint_freq: int = 0, checkpoint_at_end: bool = False, local_dir: str | None = None,
        seed: int | None = None, slurm: Any = None, backend: str | None = None,
        **ray_only: Any) -> ExperimentAnalysis:
    """Ray's ``tune.run``: build a Tuner from the arguments, fit it, return an ExperimentAnalysis.

    ``verbose``: 0 silent, 1 status, 2 also a line per finished trial, 3 (default, as Ray's)
    also results. ``raise_on_failed_trial``: raise ``TuneError`` when a trial ended in ERROR
    (not after Ctrl+C). ``restore=path`` / ``resume=True|"AUTO"|"ERRORED_ONLY"|...+ERRORED``
    continue an experiment through ``Tuner.restore``. ``slurm``, ``backend`` and ``seed`` are
    hpctune's (``SlurmConfig``, ``"slurm"``/``"local"``, the random searcher's seed).
    """
    from hpctune.tune.tuner import Tuner

    refuse_ray_only(ray_only, "tune.run")
    if isinstance(run_or_experiment, Experiment):
        return run(run_or_experiment.run, **{**run_or_experiment.spec, "name": run_or_experiment.name,
                                             **_given(locals())})
    storage_path = _storage(storage_path, local_dir)
    trainable = run_or_experiment
    if resources_per_trial is not None:
        from hpctune.tune.registry import resolve_trainable
        from hpctune.tune.trainable import with_resources

        trainable = with_resources(resolve_trainable(trainable)[0], _resources(resources_per_trial))
    tune_config = TuneConfig(
        metric=metric, mode=mode, search_alg=_searcher(search_alg), scheduler=_scheduler(scheduler),
        num_samples=num_samples, max_concurrent_trials=max_concurrent_trials, time_budget_s=time_budget_s,
        trial_name_creator=trial_name_creator, trial_dirname_creator=trial_dirname_creator,
        reuse_actors=reuse_actors, seed=seed)
    run_config = RunConfig(
        name=name, storage_path=storage_path, stop=stop, callbacks=list(callbacks or []),
        failure_config=FailureConfig(max_failures=max_failures, fail_fast=fail_fast),
        checkpoint_config=_checkpoint_config(checkpoint_config, keep_checkpoints_num,
                                             checkpoint_score_attr, checkpoint_freq, checkpoint_at_end),
        verbose=verbose, progress_reporter=progress_reporter, slurm=slurm, log_to_file=log_to_file,
        sync_config=sync_config)
    path, flags = _restore_target(restore, resume, run_config)
    if path is not None:
        tuner = Tuner.restore(path, trainable, backend=backend, **flags)
    else:
        tuner = Tuner(trainable, param_space=config, tune_config=tune_config, run_config=run_config,
                      backend=backend)
    grid = tuner.fit()
    analysis = ExperimentAnalysis(grid.experiment_path, trials=list(grid._trials),
                                  default_metric=metric, default_mode=mode)
    _check_failures(analysis, raise_on_failed_trial)
    return analysis


def _given(args: dict[str, Any]) -> dict[str, Any]:
    """The arguments of a ``run(Experiment(...), ...)`` call that differ from the defaults."""
    defaults = {k: p.default for k, p in inspect.signature(run).parameters.items()
                if p.default is not inspect.Parameter.empty}
    return {k: v for k, v in args.items() if k in defaults and v is not defaults[k] and v != defaults[k]}


def _storage(storage_path: str | None, local_dir: str | None) -> str | None:
    if local_dir is None:
        return storage_path
    if storage_path is not None:
        raise ConfigError("Pass storage_path only: local_dir is Ray's older name for it.")
    notice_once("local_dir", "local_dir is Ray's older name for storage_path: using it as storage_path.")
    return os.fspath(local_dir)


def _resources(resources: Any) -> dict[str, Any]:
    if not isinstance(resources, dict):
        raise ConfigError(f"resources_per_trial={resources!r}: pass a dict such as {{'cpu': 2, 'gpu': 1}} "
                          "(placement group factories are Ray's: a Slurm job is one allocation).")
    return {str(k).lower(): v for k, v in resources.items()}


def _searcher(search_alg: Any) -> Any:
    if isinstance(search_alg, str):
        from hpctune.tune.search.registry import create_searcher

        return create_searcher(search_alg)
    return search_alg


def _scheduler(scheduler: Any) -> Any:
    if isinstance(scheduler, str):
        from hpctune.tune.schedulers.registry import create_scheduler

        return create_scheduler(scheduler)
    return scheduler


def _checkpoint_config(config: CheckpointConfig | None, keep: int | None, score_attr: str | None,
                       freq: int, at_end: bool) -> CheckpointConfig:
    """CheckpointConfig from Ray's older keywords (``checkpoint_score_attr="min-loss"``: min)."""
    legacy = keep is not None or bool(score_attr) or bool(freq) or bool(at_end)
    if not legacy:
        return config or CheckpointConfig()
    if config is not None:
        raise ConfigError("Pass either checkpoint_config=CheckpointConfig(...) or the older keep_checkpoints_num, "
                          "checkpoint_score_attr, checkpoint_freq, checkpoint_at_end, not both.")
    order = "max"
    if score_attr and score_attr.startswith("min-"):
        score_attr, order = score_attr[4:], "min"
    return CheckpointConfig(num_to_keep=keep, checkpoint_score_attribute=score_attr,
                            checkpoint_score_order=order, checkpoint_frequency=freq,
                            checkpoint_at_end=at_end or None)


def _restore_target(restore: str | None, resume: Any, run_config: RunConfig) -> tuple[str | None, dict]:
    """(experiment to continue or None, Tuner.restore flags) from Ray's ``restore``/``resume``."""
    from hpctune.tune.tuner import Tuner

    flags = {"resume_unfinished": True, "resume_errored": False, "restart_errored": False}
    if resume in (None, False) and restore is None:
        return None, flags
    words = [] if resume in (None, False) else ["TRUE"] if resume is True else str(resume).upper().split("+")
    base = {w for w in words if w in _RESUME_BASES}
    for word in set(words) - base:
        if word in ("ERRORED", "RESTART_ERRORED"):
            flags["resume_errored" if word == "ERRORED" else "restart_errored"] = True
        elif word in ("ERRORED_ONLY", "RESTART_ERRORED_ONLY"):
            flags.update(resume_unfinished=False, **{"resume_errored" if word == "ERRORED_ONLY" else
                                                     "restart_errored": True})
        else:
            raise ConfigError(f"resume={resume!r}: use True, 'AUTO', 'LOCAL', 'ERRORED_ONLY', "
                              "'RESTART_ERRORED_ONLY' or 'AUTO+ERRORED' / '+RESTART_ERRORED' "
                              "('REMOTE' and 'PROMPT' are Ray's: there is no cloud copy here).")
    if restore is not None:
        return os.fspath(restore), flags
    if not run_config.name:
        raise ConfigError(f"resume={resume!r} needs the experiment's name: tune.run(..., name='my-exp').")
    root = run_config.experiment_root(run_config.name)
    if Tuner.can_restore(root):
        return str(root), flags
    if "AUTO" in base:
        return None, flags  # nothing to resume yet: start it
    raise ConfigError(f"resume={resume!r}, but {root} holds no experiment to resume: "
                      "use resume='AUTO' to start it when it does not exist.")


def _check_failures(analysis: ExperimentAnalysis, raise_on_failed_trial: bool) -> None:
    failed = [t for t in analysis.trials if t.status is TrialStatus.ERROR]
    if not failed or not raise_on_failed_trial:
        return
    if ExperimentDir(analysis.experiment_path).read_summary().get("status") == "interrupted":
        return  # as in Ray: an interrupted run does not raise
    details = "\n".join(f"  {t}: {_last_line(t.error)}" for t in failed)
    raise TuneError(f"Trials did not complete: {len(failed)} ended in ERROR:\n{details}\n"
                    "Their tracebacks: ExperimentAnalysis(path).trials[i].error or `hpctune logs`. "
                    "Pass raise_on_failed_trial=False to get the analysis anyway.")


def _last_line(text: str | None) -> str:
    lines = [ln for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1] if lines else "unknown error"


class Experiment:
    """Ray's ``tune.Experiment``: a named experiment for ``run_experiments`` (or ``run``); the
    keywords are those of ``tune.run``."""

    def __init__(self, name: str, run: Any, **spec: Any):
        allowed = set(inspect.signature(globals()["run"]).parameters) - {"run_or_experiment", "ray_only", "name"}
        refuse_ray_only({k: v for k, v in spec.items() if k not in allowed}, "tune.Experiment")
        self.name, self.run, self.spec = name, run, spec

    @classmethod
    def from_json(cls, name: str, spec: dict[str, Any]) -> Experiment:
        """An Experiment from Ray's dict form: ``{"run": trainable, "config": ..., ...}``."""
        spec = dict(spec)
        if "run" not in spec:
            raise ConfigError(f"The experiment {name!r} has no 'run' entry (the trainable).")
        return cls(name, spec.pop("run"), **spec)

    def __repr__(self) -> str:
        return f"Experiment({self.name!r}, {getattr(self.run, '__name__', self.run)!r})"


def run_experiments(experiments: Any, scheduler: Any = None, verbose: int = 2, progress_reporter: Any = None,
                    raise_on_failed_trial: bool = True, concurrent: bool = True,
                    callbacks: list | None = None, **ray_only: Any) -> list[Trial]:
    """Ray's ``tune.run_experiments``: run each experiment (one after another: each is its own
    driver loop here), returning the trials of all of them."""
    refuse_ray_only(ray_only, "tune.run_experiments")
    if isinstance(experiments, Experiment):
        experiments = [experiments]
    elif isinstance(experiments, dict):
        experiments = [Experiment.from_json(n, s) for n, s in experiments.items()]
    if concurrent and len(experiments) > 1:
        notice_once("run_experiments", "run_experiments runs the experiments one after another.")
    trials: list[Trial] = []
    for experiment in experiments:
        common = {"verbose": verbose, "progress_reporter": progress_reporter, "callbacks": callbacks,
                  "raise_on_failed_trial": raise_on_failed_trial}
        if scheduler is not None:
            common["scheduler"] = scheduler
        trials += run(experiment.run, **{**experiment.spec, **common, "name": experiment.name}).trials
    return trials
