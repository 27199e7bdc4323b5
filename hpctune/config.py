"""User-facing configuration objects, named as in Ray Tune, plus ``SlurmConfig``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpctune.errors import ConfigError

DEFAULT_STORAGE = "~/hpctune_results"


@dataclass
class TuneConfig:
    """How to search: metric/mode, searcher, scheduler, number of samples, concurrency."""

    metric: str | None = None
    mode: str | None = None
    search_alg: Any = None
    scheduler: Any = None
    num_samples: int = 1
    max_concurrent_trials: int | None = None
    time_budget_s: float | None = None
    trial_name_creator: Any = None
    trial_dirname_creator: Any = None
    reuse_actors: bool = False  # accepted for Ray compatibility; each trial is its own job
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.mode is not None and self.mode not in ("min", "max"):
            raise ConfigError(f"The value of `mode` is {self.mode!r}, but must be 'min' or 'max'.")
        if self.num_samples == 0 or self.num_samples < -1:
            raise ConfigError(
                f"The value of `num_samples` is {self.num_samples}, but must be >= 1 (or -1: "
                "sample until time_budget_s or a stopper ends the experiment)."
            )
        if self.max_concurrent_trials is not None and self.max_concurrent_trials < 1:
            raise ConfigError(
                f"The value of `max_concurrent_trials` is {self.max_concurrent_trials}, but must be >= 1."
            )


@dataclass
class FailureConfig:
    """What to do when trials fail: retry (``max_failures``) or end the experiment."""

    max_failures: int = 0
    fail_fast: bool | str = False
    #: a RUNNING job whose log shows no event (results, heartbeats) for this long is
    #: cancelled as lost and counted as a failure; None disables the check
    heartbeat_timeout_s: float | None = 600.0

    def __post_init__(self) -> None:
        if self.fail_fast not in (True, False, "raise"):
            raise ConfigError(f"`fail_fast` is {self.fail_fast!r}, but must be True, False or 'raise'.")


@dataclass
class CheckpointConfig:
    """Which checkpoints to keep and when class trainables write them."""

    num_to_keep: int | None = None
    checkpoint_score_attribute: str | None = None
    checkpoint_score_order: str = "max"
    checkpoint_frequency: int = 0
    checkpoint_at_end: bool | None = None

    def __post_init__(self) -> None:
        if self.num_to_keep is not None and self.num_to_keep < 1:
            raise ConfigError(f"`num_to_keep` is {self.num_to_keep}, but must be >= 1 or None.")
        if self.checkpoint_score_order not in ("min", "max"):
            raise ConfigError("`checkpoint_score_order` must be 'min' or 'max'.")

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
    poll_interval_s: float = 2.0
    max_array_size: int | None = None
    #: seconds between a STOP decision and the scancel of the trial's task. The worker
    #: also sees the decision at its next report(). Measured on the lab (bench/asha.py),
    #: scancel at once hands the slot over faster: the worker exits on the SIGTERM
    #: because it knows it was stopped.
    stop_grace_s: float = 0.0

    def __post_init__(self) -> None:
        if self.time_min < 1:
            raise ConfigError(f"`time_min` is {self.time_min}, but must be >= 1 (minutes).")
        if self.poll_interval_s < 0.2:
            raise ConfigError(
                f"`poll_interval_s` is {self.poll_interval_s}, but must be >= 0.2: polling Slurm "
                "faster than that loads the shared controller for no gain."
            )


@dataclass
class RunConfig:
    """Where results go, when to stop, callbacks, failure and checkpoint policies."""

    name: str | None = None
    storage_path: str | None = None
    stop: Any = None
    callbacks: list[Any] = field(default_factory=list)
    failure_config: FailureConfig = field(default_factory=FailureConfig)
    checkpoint_config: CheckpointConfig = field(default_factory=CheckpointConfig)
    verbose: int = 1
    progress_reporter: Any = None
    slurm: SlurmConfig | None = None
    #: on Ctrl+C, leave trials running in Slurm (resume later) instead of cancelling them
    keep_jobs_on_interrupt: bool = False

    def experiment_root(self, default_name: str) -> Path:
        storage = self.storage_path or os.environ.get("HPCTUNE_STORAGE_PATH") or DEFAULT_STORAGE
        return Path(storage).expanduser().resolve() / (self.name or default_name)
