"""``Tuner``: the entry point, as in Ray Tune. Builds the parts and hands them to the controller."""

from __future__ import annotations

import contextlib
import contextvars
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from hpctune.accounting.from_tuner import allocation_meter, with_budget
from hpctune.backends.base import Backend
from hpctune.backends.choice import BACKEND_ENV, choose_backend  # noqa: F401 - BACKEND_ENV: its old home
from hpctune.backends.pool_settings import check_pool_use, pooled_on_slurm
from hpctune.config import RunConfig, SlurmConfig, TuneConfig, budget_seconds
from hpctune.config.ray_env import apply_ray_env, config_notices, dated_subdir
from hpctune.controller import Controller, ControllerSettings
from hpctune.controller.bridge import bridge_scheduler, note_user_error, wrap_searcher
from hpctune.controller.launching import first_batch_size
from hpctune.controller.trial_names import TrialNamer
from hpctune.core.checks import check_tuner_args
from hpctune.core.resources import resources_for
from hpctune.errors import ConfigError, HpctuneError
from hpctune.results.grid import ResultGrid
from hpctune.storage.atomic import write_bytes_atomic
from hpctune.storage.driver_state import load_driver_state
from hpctune.storage.experiment import ExperimentDir, experiment_lock, pickle_config
from hpctune.storage.fs_check import check_storage
from hpctune.storage.pickling import pickle_trainable
from hpctune.tune.callback import CallbackList, progress_callbacks
from hpctune.tune.preflight import (
    check_before_writing,
    check_signature,
    refuse_started,
    trial_resources,
)
from hpctune.tune.registry import resolve_trainable
from hpctune.tune.respecify import object_slots, respecify
from hpctune.tune.schedulers.trial_scheduler import FIFOScheduler, TrialScheduler
from hpctune.tune.search.searcher import SampleLimiter, Searcher
from hpctune.tune.trainable import validate_trainable
from hpctune.worker.output import SPEC_FIELD, output_files


@dataclass(frozen=True)
class TunerHooks:
    """Callables run on every Tuner created (``on_create``) or fitted (``before_fit``) inside a
    ``tuner_hooks`` block: how ``hpctune submit`` applies its profile and options to the Tuner
    that a user's script builds, without touching the script."""

    on_create: tuple[Callable[[Tuner], None], ...] = ()
    before_fit: tuple[Callable[[Tuner], None], ...] = ()


_HOOKS: contextvars.ContextVar[TunerHooks] = contextvars.ContextVar("hpctune_tuner_hooks",
                                                                     default=TunerHooks())  # noqa: B039 - frozen


@contextlib.contextmanager
def tuner_hooks(on_create: Callable[[Tuner], None] | None = None,
                before_fit: Callable[[Tuner], None] | None = None) -> Iterator[None]:
    """Run ``on_create``/``before_fit`` for every Tuner of the block (hooks of enclosing blocks too)."""
    outer = _HOOKS.get()
    token = _HOOKS.set(TunerHooks(outer.on_create + ((on_create,) if on_create else ()),
                                  outer.before_fit + ((before_fit,) if before_fit else ())))
    try:
        yield
    finally:
        _HOOKS.reset(token)


class Tuner:
    """Tune ``trainable`` over ``param_space``; ``fit()`` runs every trial and returns a ResultGrid.

    ``trainable`` may also be a name given to ``tune.register_trainable``.
    """

    def __init__(self, trainable: Any, *, param_space: dict | None = None,
                 tune_config: TuneConfig | None = None, run_config: RunConfig | None = None,
                 backend: str | None = None, slurm_config: SlurmConfig | None = None):
        trainable, self._registered_name = resolve_trainable(trainable)
        validate_trainable(trainable)
        check_signature(trainable)
        check_tuner_args(param_space, {"tune_config": (tune_config, TuneConfig), "run_config": (
            run_config, RunConfig), "slurm_config": (slurm_config, SlurmConfig)})
        self.trainable = trainable
        self.param_space = dict(param_space or {})
        self.tune_config = tune_config or TuneConfig()
        self.run_config = run_config or RunConfig()
        if slurm_config is not None and self.run_config.slurm is not None and slurm_config != self.run_config.slurm:
            raise ConfigError("Two SlurmConfigs: Tuner(slurm_config=...) and RunConfig(slurm=...) differ, "
                              "and one would be ignored in silence. Fix: pass one of them.")
        self.slurm_config = slurm_config or self.run_config.slurm or SlurmConfig()
        self.backend_name = choose_backend(backend)
        self._restore: dict[str, Any] | None = None
        self._objects = None  # Tuner.restore(param_space=...): the objects it gives anew
        self._results: ResultGrid | None = None
        self._validate_space()
        check_pool_use(self.tune_config.reuse_actors, self.trainable, self.backend_name,
                       self.slurm_config.use_srun, self.tune_config.scheduler)
        config_notices(self.tune_config, self.run_config)
        for hook in _HOOKS.get().on_create:  # `hpctune submit`'s profile and options, if any
            hook(self)

    def _validate_space(self) -> None:
        from hpctune.space import validate_space

        validate_space(self.param_space)

    # -- running -------------------------------------------------------------------
    @classmethod
    def can_restore(cls, path: str | os.PathLike) -> bool:
        """True if ``path`` holds an experiment that ``Tuner.restore`` can continue."""
        return ExperimentDir(path).tuner_path.exists()

    @classmethod
    def restore(cls, path: str | os.PathLike, trainable: Any = None, *,
                resume_unfinished: bool = True, resume_errored: bool = False,
                restart_errored: bool = False, param_space: dict | None = None,
                backend: str | None = None, gpu_hours_budget: float | None = None,
                cpu_hours_budget: float | None = None) -> Tuner:
        """Continue an experiment after the driver stopped (killed, Ctrl+C, node lost).

        Trials whose jobs are still queued or running in Slurm are re-attached, not
        resubmitted; everything they wrote meanwhile is read from their logs. ``param_space``
        gives its objects anew, as in Ray (``tune/respecify.py``); nothing else of it may change.
        ``gpu_hours_budget``/``cpu_hours_budget`` replace the saved allocation budget (an
        experiment its budget stopped continues with a larger one).
        """
        exp = ExperimentDir(path)
        if not cls.can_restore(path):
            raise ConfigError(f"{exp.root} holds no restorable hpctune experiment ({exp.tuner_path.name} missing).")
        from hpctune.storage.secure import load_private_pickle  # refuses files others could write

        saved = load_private_pickle(exp.tuner_path)
        if trainable is None:
            trainable = load_private_pickle(exp.trainable_path)
        run_config, tune_config = saved["run_config"], saved["tune_config"]
        run_config.storage_path, run_config.name = str(exp.root.parent), exp.root.name
        backend = backend or saved["backend"]
        if tune_config.reuse_actors is None and backend == "slurm":  # as it started, not today's
            tune_config.reuse_actors = saved.get("pooled_on_slurm", False)  # default (older: off)
        tuner = cls(trainable, param_space=param_space or saved["param_space"],
                    tune_config=tune_config, run_config=run_config,
                    backend=backend, slurm_config=saved["slurm_config"])
        with_budget(tuner.tune_config, gpu_hours_budget, cpu_hours_budget)
        tuner._restore = {"resume_unfinished": resume_unfinished, "resume_errored": resume_errored,
                          "restart_errored": restart_errored}
        tuner._objects = object_slots(saved["param_space"], param_space) if param_space is not None else None
        return tuner

    def fit(self) -> ResultGrid:
        for hook in _HOOKS.get().before_fit:  # `hpctune submit --dry-run` stops here
            hook(self)
        apply_ray_env()  # RAY_CHDIR_TO_TRIAL_DIR and the like, for the workers to inherit
        if self._restore is not None:
            return self._fit_restored()
        exp = ExperimentDir(self.run_config.experiment_root(self._default_name()))
        refuse_started(exp)
        for config in (self.tune_config, self.run_config, self.run_config.failure_config,
                       self.run_config.checkpoint_config):
            config.__post_init__()  # again: fields may have been set after construction
        self.slurm_config.validate()
        searcher, scheduler = self._searcher(), self._scheduler()
        from hpctune.display.reporter import make_reporter
        from hpctune.tune.stopper import as_stopper

        as_stopper(self.run_config.stop), make_reporter(self.run_config, self.tune_config)
        check_before_writing(self, scheduler)
        payloads = pickle_trainable(self.trainable), self._tuner_payload()
        check_storage(exp.root)  # every check before the directory exists: no name is burnt
        exp.create()
        with experiment_lock(exp):
            self._start(exp, *payloads)
            return self._run(self._controller(exp, searcher, scheduler))

    def _start(self, exp: ExperimentDir, trainable: bytes, tuner: bytes) -> None:
        """Write what ``Tuner.restore`` needs, ``experiment.json`` last (a driver killed midway
        leaves an experiment that is not started: the next ``fit()`` starts it over). Under
        the experiment lock: a first ``fit()`` that never ran a trial is cleared first."""
        refuse_started(exp)
        exp.reset_unstarted()
        exp.write_trainable(trainable)
        write_bytes_atomic(exp.tuner_path, tuner)  # private mode, no predictable temp name
        exp.write_experiment(self._spec())

    def _fit_restored(self) -> ResultGrid:
        exp = ExperimentDir(self.run_config.experiment_root(""))
        check_storage(exp.root)
        with experiment_lock(exp):
            if not exp.has_started():  # the first fit() failed before any trial ran: start it now
                scheduler = self._scheduler()
                check_before_writing(self, scheduler)
                self._start(exp, pickle_trainable(self.trainable), self._tuner_payload())
                return self._run(self._controller(exp, self._searcher(), scheduler))
            state = load_driver_state(exp)
            controller = self._controller(exp, self._searcher(), self._scheduler(),
                                          prefix=state["trial_id_prefix"] if state else None)
            if state is not None:
                controller.restore(state, **self._restore)
                if self._objects is not None:  # Tuner.restore(param_space=...): Ray's new objects
                    respecify(controller.table.all, self._objects, exp.write_params)
            return self._run(controller)

    def _run(self, controller: Controller) -> ResultGrid:
        try:
            trials = controller.run()
        except Exception as exc:  # the user's searcher, stopper, scheduler or callback raised
            note_user_error(exc, controller.exp.root)
            raise
        finally:
            controller.backend.close()
        tc = self.tune_config
        self._results = ResultGrid(trials, controller.exp.root, tc.metric, tc.mode)
        return self._results

    def get_results(self) -> ResultGrid:
        """The results of the last ``fit()``; after ``Tuner.restore``, those in the experiment
        directory (as in Ray: nothing is run)."""
        if self._results is not None:
            return self._results
        if self._restore is not None:
            return ResultGrid.from_path(self.run_config.experiment_root(""))
        raise HpctuneError("There are no results yet: call tuner.fit() first, or "
                           "Tuner.restore(path, trainable).get_results() for an earlier experiment.")

    def _tuner_payload(self) -> bytes:
        """Everything Tuner.restore needs besides the trainable (pickled by value, tuner.pkl)."""
        import cloudpickle

        pickle_config(self.param_space)  # an unpicklable value: a ConfigError naming its key
        payload = {"param_space": self.param_space, "tune_config": self.tune_config,
                   "run_config": self.run_config, "slurm_config": self.slurm_config,
                   "backend": self.backend_name, "pooled_on_slurm": self._pooled()}
        try:
            return cloudpickle.dumps(payload)
        except Exception as exc:
            raise ConfigError(f"The experiment's configuration cannot be pickled for resuming ({exc}): "
                              "avoid open files or locks in callbacks, searchers and stoppers.") from exc

    def _pooled(self) -> bool:
        """Whether the trials run through a worker pool on Slurm (whatever this Tuner's backend)."""
        return pooled_on_slurm(self.tune_config, self.trainable, self.slurm_config)

    @property
    def is_restored(self) -> bool:
        """True for a Tuner made by ``Tuner.restore`` (it continues an existing experiment)."""
        return self._restore is not None

    def _controller(self, exp: ExperimentDir, searcher: Searcher,
                    scheduler: TrialScheduler, prefix: str | None = None) -> Controller:
        from hpctune.display.reporter import make_reporter
        from hpctune.tune.logger import auto_loggers
        from hpctune.tune.stopper import as_stopper

        settings = ControllerSettings(
            max_concurrent=self.tune_config.max_concurrent_trials,
            time_budget_s=budget_seconds(self.tune_config.time_budget_s),
            max_failures=self.run_config.failure_config.max_failures,
            fail_fast=self.run_config.failure_config.fail_fast,
            resources_for=lambda config: trial_resources(self.trainable, config),
            trial_id_prefix=prefix or uuid.uuid4().hex[:8],
            param_space=self.param_space,
            metric=self.tune_config.metric,
            mode=self.tune_config.mode,
            checkpoint_config=self.run_config.checkpoint_config,
            heartbeat_timeout_s=self.run_config.failure_config.heartbeat_timeout_s,
            report_timeout_s=self.run_config.failure_config.report_timeout_s,
            keep_jobs_on_interrupt=self.run_config.keep_jobs_on_interrupt,
            stop_grace_s=self.slurm_config.stop_grace_s,
            allocation=allocation_meter(self),  # usage.json and TuneConfig's budget
        )
        user_callbacks = list(self.run_config.callbacks)  # then Ray's default loggers (JSON, CSV, TBX)
        callbacks = CallbackList([*user_callbacks, *progress_callbacks(self.run_config.verbose),
                                  *auto_loggers(user_callbacks)])
        callbacks.call("setup")
        reporter = make_reporter(self.run_config, self.tune_config)
        tc = self.tune_config
        namer = (TrialNamer(exp, tc.trial_name_creator, tc.trial_dirname_creator)
                 if tc.trial_name_creator or tc.trial_dirname_creator else None)
        bridge = bridge_scheduler(scheduler, namer, self._trainable_name())  # Ray's forms, names
        controller = Controller(exp, self._backend(exp), searcher, bridge,
                                as_stopper(self.run_config.stop), callbacks, settings, reporter)
        bridge.bind(controller)
        return controller

    def _backend(self, exp: ExperimentDir) -> Backend:
        if self.backend_name == "slurm":
            from hpctune.backends.slurm import SlurmBackend

            if self._pooled():
                from hpctune.backends.pool import PoolBackend

                return PoolBackend(exp.root, self.slurm_config)
            return SlurmBackend(exp.root, self.slurm_config)
        from hpctune.backends.local import LocalBackend

        return LocalBackend(exp.root)

    def preview_sbatch(self, count: int | None = None) -> str:
        """The exact sbatch script that ``fit()`` submits first (``count`` trials: by default
        what the search puts in its first array, grid variants times ``num_samples``) + its cost."""
        from hpctune.accounting.from_tuner import with_cost
        from hpctune.backends.slurm import SlurmBackend

        root = self.run_config.experiment_root(self._default_name())
        backend = SlurmBackend(root, self.slurm_config)
        resources = resources_for(self.trainable, {})
        searcher = self._searcher()
        count = count or first_batch_size(searcher, self.tune_config.max_concurrent_trials)
        throttle = self.tune_config.max_concurrent_trials if not searcher.adaptive else None
        if self._pooled():  # the pool array instead
            from hpctune.backends.pool import PoolBackend

            script = PoolBackend(root, self.slurm_config).preview_script(resources, count, throttle)
        else:
            script = backend.render_script(resources, count, throttle)
        return with_cost(script, self, backend.billing_weights())  # the worst case, as # lines

    # -- parts -----------------------------------------------------------------------
    def _searcher(self) -> Searcher:
        tc = self.tune_config
        from hpctune.tune.search.basic_variant import BasicVariantGenerator

        if tc.search_alg is None:
            searcher: Searcher = BasicVariantGenerator(seed=tc.seed)
        elif isinstance(tc.search_alg, BasicVariantGenerator):
            searcher = tc.search_alg  # counts num_samples x grid itself
        else:
            searcher = SampleLimiter(wrap_searcher(tc.search_alg), tc.num_samples)  # flat results
        ok = searcher.set_search_properties(tc.metric, tc.mode, self.param_space,
                                            num_samples=tc.num_samples, seed=tc.seed)
        if not ok:
            raise ConfigError(
                "The search algorithm already has a metric/mode or search space that differs "
                "from TuneConfig/param_space: set them in one place only."
            )
        return searcher

    def _scheduler(self) -> TrialScheduler:
        tc = self.tune_config
        scheduler = tc.scheduler or FIFOScheduler()
        # a restored Tuner's scheduler was given TuneConfig's metric/mode by the first fit()
        same = (scheduler.metric, scheduler.mode) == (tc.metric, tc.mode)
        if scheduler.metric and tc.metric and not (self.is_restored and same):
            raise ConfigError(
                "metric/mode are set both in the scheduler and in TuneConfig: set them in "
                "TuneConfig(metric=..., mode=...) only (Ray Tune raises the same)."
            )
        scheduler.set_search_properties(tc.metric, tc.mode)
        if scheduler.metric_required and not (scheduler.metric and scheduler.mode):
            raise ConfigError(
                f"{type(scheduler).__name__} needs a metric and a mode: pass "
                "TuneConfig(metric='loss', mode='min')."
            )
        return scheduler

    def _default_name(self) -> str:
        """``<trainable>_<date>``, with a counter if that directory already exists."""
        if self.run_config.name:
            return self.run_config.name
        name = self._trainable_name()
        base = f"{name}_{time.strftime('%Y-%m-%d_%H-%M-%S')}" if dated_subdir() else name
        candidate, n = base, 1
        while self.run_config.experiment_root(candidate).exists():
            n += 1
            candidate = f"{base}_{n}"
        return candidate

    def _trainable_name(self) -> str:
        """The registered name, else the function's or class's name (Ray's ``trainable_name``)."""
        return self._registered_name or getattr(self.trainable, "__name__", type(self.trainable).__name__)

    def _spec(self) -> dict[str, Any]:
        from hpctune import __version__

        tc = self.tune_config
        return {
            "hpctune_version": __version__, "trainable": self._trainable_name(),
            "metric": tc.metric, "mode": tc.mode, "num_samples": tc.num_samples,
            "scheduler": type(tc.scheduler).__name__ if tc.scheduler else "FIFOScheduler",
            "max_concurrent_trials": tc.max_concurrent_trials, "backend": self.backend_name,
            "checkpoint_config": self.run_config.checkpoint_config.to_dict(),
            "heartbeat_s": heartbeat_interval(self.run_config.failure_config.heartbeat_timeout_s),
            "stop_grace_s": self.slurm_config.stop_grace_s,  # the workers' bound on a stopped trial's cleanup
            SPEC_FIELD: output_files(self.run_config.log_to_file),  # read by log_to_file.redirect_output
            "created": time.time(),
        }


def heartbeat_interval(timeout_s: float | None) -> float:
    """How often workers write a heartbeat: often enough for the driver's timeout."""
    return 30.0 if timeout_s is None else max(1.0, min(30.0, timeout_s / 4))
