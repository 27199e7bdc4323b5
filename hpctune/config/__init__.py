"""User-facing configuration objects, named as in Ray Tune, plus ``SlurmConfig``."""

from __future__ import annotations

import datetime
import os
import re
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path
from typing import Any

from hpctune.accounting.budget import budget_of
from hpctune.core import checks as core_checks
from hpctune.core.checks import check_instance, check_mode, check_plugin, check_value
from hpctune.errors import ConfigError

DEFAULT_STORAGE = "~/hpctune_results"

_CONTROL_CHAR = re.compile(r"[\x00-\x1f\x7f]")
_OPTION_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_URI = re.compile(r"[a-z][a-z0-9+.-]*://", re.IGNORECASE)
#: SlurmConfig fields that are written into the sbatch script or a Slurm command line
SBATCH_TEXT_FIELDS = ("partition", "account", "qos", "constraint", "exclude", "nodelist",
                      "job_name", "python", "signal")


def check_sbatch_text(field_name: str, value: Any) -> None:
    """Refuse a control character (newline, CR, NUL, ...) in a value bound for an sbatch script:
    a newline would end the ``#SBATCH`` block and add a shell line of its own."""
    if value is None or isinstance(value, bool):
        return
    found = _CONTROL_CHAR.search(str(value))
    if found:
        raise ConfigError(
            f"{field_name} is {value!r}, which contains the control character {found.group()!r}: "
            "it would add a line to the sbatch script. Fix: remove newlines, tabs and other control "
            "characters (one setup command per list item).")


def check_sbatch_options(options: dict[str, Any], owner: str = "SlurmConfig") -> None:
    """Keys must be option names (``reservation``, ``mail-type``); keys and values one line each."""
    for key, value in options.items():
        if not isinstance(key, str) or not _OPTION_NAME.fullmatch(key):
            raise ConfigError(
                f"{owner}(sbatch_options=...) has the key {key!r}, which is not an sbatch option "
                "name. Fix: write the long option without dashes or '=': {'reservation': 'ml', "
                "'mail-type': 'FAIL'}.")
        hint = OWN_DIRECTIVES.get(key.replace("_", "-"))
        if hint is not None:
            raise ConfigError(
                f"{owner}(sbatch_options=...) sets {key!r}, a directive hpctune writes itself for "
                f"every job: replacing it would break how hpctune tracks its jobs. Fix: remove it{hint}.")
        check_sbatch_text(f"{owner}(sbatch_options[{key!r}])", value)


#: the #SBATCH directives hpctune owns (long names and sbatch's one-letter aliases): the fix
OWN_DIRECTIVES = {
    **dict.fromkeys(("array", "a", "output", "o", "error", "e", "job-name", "J", "comment",
                     "open-mode", "wckey", "wrap"), ""),
    "signal": " and choose the warning with SlurmConfig(signal=..., signal_lead_s=...)",
}


def validate_experiment_name(name: str) -> str:
    """``name`` if it is one safe path component: it becomes a directory under storage_path."""
    bad = ("it is empty" if not name else
           "it contains a control character" if _CONTROL_CHAR.search(name) else
           "it is '.' or '..'" if name in (".", "..") else
           "it contains '/'" if "/" in name else
           "it starts with '-'" if name.startswith("-") else None)
    if bad:
        raise ConfigError(
            f"RunConfig(name={name!r}) is not a valid experiment name: {bad}. The name is one "
            "directory inside storage_path. Fix: use letters, digits, '_', '-' and '.', e.g. "
            "name='lr-sweep'; put parent directories in RunConfig(storage_path=...).")
    return name


def validate_storage_path(path: str) -> str:
    """``path`` if it is a filesystem path (a URI such as s3://... is not one)."""
    if _URI.match(path):
        raise ConfigError(
            f"storage_path {path!r} is a URI: hpctune needs a shared filesystem path that the "
            "compute nodes see, e.g. /scratch/$USER/hpctune_results.")
    check_sbatch_text("storage_path", path)
    return path


def budget_seconds(value: Any) -> float | None:
    """``time_budget_s`` as seconds: a number or a ``datetime.timedelta`` (as Ray accepts)."""
    if value is None:
        return None
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(
            f"The value of `time_budget_s` is {value!r}, but must be a number of seconds > 0 or a "
            "datetime.timedelta, e.g. time_budget_s=3600 or datetime.timedelta(hours=1).")
    return float(value)


def check_log_to_file(value: Any) -> Any:
    """``RunConfig(log_to_file=...)``: False, True, one file name, or (stdout, stderr) names."""
    ok = (isinstance(value, (bool, str, os.PathLike))
          or (isinstance(value, (tuple, list)) and len(value) == 2
              and all(isinstance(v, (str, os.PathLike)) for v in value)))
    names = [] if isinstance(value, bool) else [value] if not isinstance(value, (tuple, list)) else value
    if not ok or any(not str(n) or _CONTROL_CHAR.search(str(n)) for n in names):
        raise ConfigError(
            f"RunConfig(log_to_file={value!r}) is not valid: pass True (files 'stdout' and 'stderr' in "
            "the trial directory), one file name for both, or a pair ('out.log', 'err.log').")
    return value


def check_verbose(value: Any) -> int:
    """Ray's verbosity 0-3 (an ``int`` or Ray's ``Verbosity`` enum; never a string)."""
    level = int(value) if isinstance(value, Integral) and not isinstance(value, bool) else -1
    if level not in (0, 1, 2, 3):
        raise ConfigError(
            f"`verbose` is {value!r}, but must be 0 (silent), 1 (status updates), 2 (and a line per "
            "finished trial) or 3 (and every result), as in Ray Tune.")
    return level


def _check_creator(name: str, value: Any) -> None:
    if value is not None and not callable(value):
        raise ConfigError(f"TuneConfig({name}={value!r}) must be a function of the trial that returns "
                          f"a string, e.g. {name}=lambda trial: f'lr={{trial.config[\"lr\"]}}'.")


@dataclass
class TuneConfig:
    """How to search: metric/mode, searcher, scheduler, number of samples, concurrency."""

    metric: str | None = None
    mode: str | None = None
    search_alg: Any = None
    scheduler: Any = None
    num_samples: int = 1
    max_concurrent_trials: int | None = None
    #: seconds (or a ``datetime.timedelta``); trials still queued at the end are left PENDING
    time_budget_s: float | datetime.timedelta | None = None
    #: ``f(trial) -> str``: the trial's name in the status table and ``get_context()``
    trial_name_creator: Any = None
    #: ``f(trial) -> str``: a link at the experiment root to the trial's directory
    trial_dirname_creator: Any = None
    #: accepted for Ray compatibility; each trial is its own job (said once when True)
    reuse_actors: bool | None = None
    seed: int | None = None
    gpu_hours_budget: float | None = None
    cpu_hours_budget: float | None = None

    def __post_init__(self) -> None:
        self.time_budget_s = budget_seconds(self.time_budget_s)
        _check_creator("trial_name_creator", self.trial_name_creator)
        _check_creator("trial_dirname_creator", self.trial_dirname_creator)
        owner = "TuneConfig"
        check_value(owner, "metric", self.metric, "str", optional=True)
        check_mode(self.mode, allow_none=True, owner=owner)
        check_value(owner, "num_samples", self.num_samples, "int", also=" (-1: no limit)")
        if self.num_samples == 0 or self.num_samples < -1:
            raise ConfigError(
                f"The value of `num_samples` is {self.num_samples}, but must be >= 1 (or -1: "
                "sample until time_budget_s or a stopper ends the experiment)."
            )
        check_value(owner, "max_concurrent_trials", self.max_concurrent_trials, "int", optional=True)
        if self.max_concurrent_trials is not None and self.max_concurrent_trials < 1:
            raise ConfigError(
                f"The value of `max_concurrent_trials` is {self.max_concurrent_trials}, but must be >= 1."
            )
        check_value(owner, "reuse_actors", self.reuse_actors, "bool", optional=True)
        check_plugin("search_alg", self.search_alg, "suggest", "create_searcher")
        check_plugin("scheduler", self.scheduler, "on_trial_result", "create_scheduler")
        budget_of(self.gpu_hours_budget, self.cpu_hours_budget)  # allocation budget: ConfigError if bad


@dataclass
class FailureConfig:
    """What to do when trials fail: retry (``max_failures``) or end the experiment."""

    max_failures: int = 0
    fail_fast: bool | str = False
    #: a RUNNING job whose log shows no event (results, heartbeats) for this long is
    #: cancelled as lost and counted as a failure; None disables the check
    heartbeat_timeout_s: float | None = 600.0
    #: a running trial that reports no result for this long (from its start or its last
    #: result) is hung: cancelled and retried per ``max_failures``; None (default): no limit
    report_timeout_s: float | None = None

    def __post_init__(self) -> None:
        if self.fail_fast not in (True, False, "raise"):
            raise ConfigError(f"`fail_fast` is {self.fail_fast!r}, but must be True, False or 'raise'.")
        owner = "FailureConfig"
        check_value(owner, "max_failures", self.max_failures, "int", -1, also=" (-1: retry forever)")
        check_value(owner, "heartbeat_timeout_s", self.heartbeat_timeout_s, "number", 0, strict=True,
                    optional=True)
        check_value(owner, "report_timeout_s", self.report_timeout_s, "number", 0, strict=True,
                    optional=True)


@dataclass
class CheckpointConfig:
    """Which checkpoints to keep and when class trainables write them."""

    num_to_keep: int | None = None
    checkpoint_score_attribute: str | None = None
    checkpoint_score_order: str = "max"
    checkpoint_frequency: int = 0
    checkpoint_at_end: bool | None = None

    def __post_init__(self) -> None:
        owner = "CheckpointConfig"
        check_value(owner, "num_to_keep", self.num_to_keep, "int", optional=True)
        if self.num_to_keep is not None and self.num_to_keep < 1:
            raise ConfigError(f"`num_to_keep` is {self.num_to_keep}, but must be >= 1 or None.")
        if self.checkpoint_score_order not in ("min", "max"):
            raise ConfigError("`checkpoint_score_order` must be 'min' or 'max'.")
        check_value(owner, "checkpoint_score_attribute", self.checkpoint_score_attribute, "str",
                    optional=True)
        check_value(owner, "checkpoint_frequency", self.checkpoint_frequency, "int", 0)
        check_value(owner, "checkpoint_at_end", self.checkpoint_at_end, "bool", optional=True)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class SlurmConfig:
    """Everything Slurm-specific, in one place (site profiles fill it too).

    ``time_min`` is the trial's time limit in minutes; ``setup`` lines run before the
    trial (``module load ...``, ``source venv/bin/activate``); ``sbatch_options`` adds
    any other ``#SBATCH`` directive, e.g. ``{"reservation": "ml"}``.
    """

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time_min: int = 60
    constraint: str | None = None
    exclude: str | None = None
    nodelist: str | None = None
    setup: list[str] = field(default_factory=list)
    sbatch_options: dict[str, Any] = field(default_factory=dict)
    job_name: str | None = None
    python: str | None = None
    use_srun: bool = False
    requeue: bool | None = None
    signal: str = "USR1"
    signal_lead_s: int = 90
    poll_interval_s: float = 30.0
    max_array_size: int | None = None
    #: upper bound, in seconds, of a stopped trial's cleanup: after a STOP decision the task
    #: is scancelled at once, the trainable gets StopTrial (its ``finally:`` blocks and
    #: ``cleanup()`` run) and the worker is ended if it is still busy after this long. Keep it
    #: below the cluster's KillWait (30 s by default). 0: exit at once, no cleanup.
    stop_grace_s: float = 3.0
    #: with ``TuneConfig(reuse_actors=True)``: a pool task with nothing to run exits after this
    #: many seconds; each trial starts in a process forked from it ("fork") or a new one ("spawn")
    pool_idle_s: float = 10.0
    pool_start_method: str = "fork"
    #: trials one pool task runs at once (None: 1, or one GPU's worth of fractional-GPU trials)
    pool_slots_per_task: int | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError for a bad value; the backend checks again before it writes a script
        (fields may be set after construction)."""
        self._check_types()
        if self.time_min < 1:
            raise ConfigError(f"`time_min` is {self.time_min}, but must be >= 1 (minutes).")
        if self.poll_interval_s < 0.2:
            raise ConfigError(
                f"`poll_interval_s` is {self.poll_interval_s}, but must be >= 0.2: polling Slurm "
                "faster than that loads the shared controller for no gain."
            )
        for name in SBATCH_TEXT_FIELDS:
            check_sbatch_text(f"SlurmConfig({name}=...)", getattr(self, name))
        core_checks.check_slurm_signal(self.signal)  # after the text check: that message says more
        if not isinstance(self.setup, (list, tuple)) or not all(isinstance(x, str) for x in self.setup):
            raise ConfigError(f"SlurmConfig(setup={self.setup!r}) is not valid: it must be a list of "
                              "lines (strings), e.g. ['module load cuda'].")
        for i, line in enumerate(self.setup):
            check_sbatch_text(f"SlurmConfig(setup[{i}])", line)
        if not isinstance(self.sbatch_options, dict):
            raise ConfigError(f"SlurmConfig(sbatch_options={self.sbatch_options!r}) is not valid: it "
                              "must be a dict of sbatch options, e.g. {'reservation': 'ml'}.")
        check_sbatch_options(self.sbatch_options)

    def _check_types(self) -> None:
        owner = "SlurmConfig"
        check_value(owner, "time_min", self.time_min, "int", also=" (minutes)")
        check_value(owner, "poll_interval_s", self.poll_interval_s, "number")
        for name in SBATCH_TEXT_FIELDS:
            check_value(owner, name, getattr(self, name), "str", optional=name != "signal")
        check_value(owner, "use_srun", self.use_srun, "bool")
        check_value(owner, "requeue", self.requeue, "bool", optional=True)
        check_value(owner, "signal_lead_s", self.signal_lead_s, "int", 0)
        check_value(owner, "max_array_size", self.max_array_size, "int", 1, optional=True)
        check_value(owner, "stop_grace_s", self.stop_grace_s, "number", 0)
        check_value(owner, "pool_idle_s", self.pool_idle_s, "number", 0)
        check_value(owner, "pool_slots_per_task", self.pool_slots_per_task, "int", 1, optional=True)
        if self.pool_start_method not in ("fork", "spawn"):
            raise ConfigError(f"`pool_start_method` is {self.pool_start_method!r}, but must be 'fork' "
                              "(the default: fastest) or 'spawn' (a new interpreter per trial).")


@dataclass
class SyncConfig:
    """Ray's syncing settings, accepted so that scripts run unchanged: trials write to the
    shared filesystem directly, so there is nothing to sync (said once)."""

    upload_dir: str | None = None
    syncer: Any = "auto"
    sync_period: int = 300
    sync_timeout: int = 1800
    sync_artifacts: bool = False
    sync_on_checkpoint: bool = True


@dataclass
class RunConfig:
    """Where results go, when to stop, callbacks, failure and checkpoint policies."""

    name: str | None = None
    storage_path: str | None = None
    stop: Any = None
    callbacks: list[Any] = field(default_factory=list)
    failure_config: FailureConfig = field(default_factory=FailureConfig)
    checkpoint_config: CheckpointConfig = field(default_factory=CheckpointConfig)
    #: 0 silent, 1 status updates, 2 also a line per finished trial, 3 also every result
    verbose: int = 1
    progress_reporter: Any = None
    slurm: SlurmConfig | None = None
    #: on Ctrl+C, leave trials running in Slurm (resume later) instead of cancelling them
    keep_jobs_on_interrupt: bool = False
    #: True: each trial's stdout/stderr go to ``stdout``/``stderr`` in its directory; a name:
    #: both into that file; a pair of names: (stdout, stderr). Relative to the trial directory.
    log_to_file: bool | str | tuple[str, str] = False
    #: accepted for Ray compatibility: on a shared filesystem there is nothing to sync
    sync_config: Any = None
    #: Ray's older name for ``storage_path`` (used as it, said once)
    local_dir: str | None = None

    def __post_init__(self) -> None:
        self.verbose = check_verbose(1 if self.verbose is None else self.verbose)  # None: Ray's default
        check_log_to_file(self.log_to_file)
        self._check_types()
        if self.local_dir is not None:
            if self.storage_path is not None:
                raise ConfigError("RunConfig got both storage_path and local_dir: pass storage_path "
                                  "only (local_dir is Ray's older name for it).")
            from hpctune.config.ray_env import notice_once

            notice_once("local_dir", "local_dir is Ray's older name for storage_path: using it as "
                                     "storage_path.")
            self.storage_path, self.local_dir = os.fspath(self.local_dir), None
        if self.name is not None:
            validate_experiment_name(self.name)
        if self.storage_path is not None:
            validate_storage_path(str(self.storage_path))

    def _check_types(self) -> None:
        owner = "RunConfig"
        if self.callbacks is None:  # Ray's defaults are None
            self.callbacks = []
        if self.failure_config is None:
            self.failure_config = FailureConfig()
        if self.checkpoint_config is None:
            self.checkpoint_config = CheckpointConfig()
        for name in ("name", "storage_path", "local_dir"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (str, os.PathLike)):
                check_value(owner, name, value, "str", optional=True)
        if self.name is not None:
            self.name = os.fspath(self.name)
        check_instance(owner, "failure_config", self.failure_config, FailureConfig)
        check_instance(owner, "checkpoint_config", self.checkpoint_config, CheckpointConfig)
        check_instance(owner, "slurm", self.slurm, SlurmConfig, optional=True)
        check_value(owner, "keep_jobs_on_interrupt", self.keep_jobs_on_interrupt, "bool")
        if self.stop is not None:
            from hpctune.tune.stopper import as_stopper  # numpy: only when there is a stop

            as_stopper(self.stop)  # a ConfigError for a stop that cannot be one
        callbacks = self.callbacks
        if not isinstance(callbacks, (list, tuple)) or any(
                isinstance(c, (str, bytes, type, int, float)) or c is None or not core_checks.has_hooks(c)
                for c in callbacks):
            raise ConfigError(f"RunConfig(callbacks={callbacks!r}) is not valid: it must be a list of "
                              "callback objects (instances, not classes) with hooks hpctune calls "
                              "(subclass tune.Callback). Fix: callbacks=[MyCallback()].")

    def experiment_root(self, default_name: str) -> Path:
        """``<storage_path>/<name>``; checked again here (fields may be set after construction)."""
        storage = self.storage_path or os.environ.get("HPCTUNE_STORAGE_PATH") or DEFAULT_STORAGE
        name = validate_experiment_name(self.name or default_name)
        return Path(validate_storage_path(str(storage))).expanduser().resolve() / name
