"""What schedulers, searchers and callbacks may know about a trial: ids, config, status."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hpctune.core.ids import default_trial_name
from hpctune.core.metrics import ANALYSED_AUTO_METRICS, AUTO_METRICS, fits_float, flatten
from hpctune.tune.experiment.trial_lifecycle import JobState, TrialLifecycle, TrialStatus

__all__ = ["JobState", "Trial", "TrialInfo", "TrialStatus"]


@dataclass(frozen=True)
class TrialInfo:
    """An immutable snapshot of a trial handed to pure decision logic (schedulers, stoppers)."""

    trial_id: str
    config: Mapping[str, Any] = field(default_factory=dict)
    experiment_tag: str = ""
    #: the trial's current resource request ({"cpu": 1, "gpu": 0, ...})
    resources: Mapping[str, Any] = field(default_factory=dict)


_ANALYSIS_SKIP = AUTO_METRICS - ANALYSED_AUTO_METRICS


class Finished:
    """A truth value that is also callable: Ray's ``Trial.is_finished()`` is a method, while
    code written for hpctune reads ``trial.is_finished`` as a flag; both give the same bool."""

    __slots__ = ("_value",)

    def __init__(self, value: bool):
        self._value = bool(value)

    def __bool__(self) -> bool:
        return self._value

    def __call__(self) -> bool:
        return self._value

    def __eq__(self, other: object) -> bool:
        return self._value == other

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return repr(self._value)


@dataclass(eq=False)  # a trial is one thing: equal to itself only, hashable (Ray's is a dict key)
class Trial(TrialLifecycle):
    """The driver's record of a trial: status, Slurm job, latest result, log offset.

    ``Trial.PENDING`` ... ``Trial.ERROR`` are the statuses, as on Ray's ``Trial``
    (``trial.status == Trial.TERMINATED`` works: statuses are strings). Where the trial is
    (status, job, pause, stop) changes only through the operations of ``TrialLifecycle``
    (``hpctune/tune/experiment/trial_lifecycle.py``); the other fields are its record.
    """

    PENDING = TrialStatus.PENDING
    RUNNING = TrialStatus.RUNNING
    PAUSED = TrialStatus.PAUSED
    TERMINATED = TrialStatus.TERMINATED
    ERROR = TrialStatus.ERROR

    trial_id: str
    config: dict[str, Any]
    experiment_tag: str
    path: str
    resources: dict[str, Any] = field(default_factory=dict)
    status: TrialStatus = TrialStatus.PENDING
    job_id: str | None = None
    job_state: JobState = JobState.NONE
    job_reason: str = ""
    node: str = ""
    last_result: dict[str, Any] = field(default_factory=dict)
    num_results: int = 0
    metric_analysis: dict[str, dict[str, float]] = field(default_factory=dict)
    error: str | None = None
    log_offset: int = 0
    stop_requested_at: float | None = None
    results_after_stop: int = 0
    stop_reason: str = ""
    stopped_by_scheduler: bool = False
    num_failures: int = 0
    restart_count: int = 0
    preemptions: int = 0
    awaiting_restart: bool = False
    #: jobs the driver cancelled to run the trial again later (Ctrl+C): never re-attached to
    cancelled_jobs: list[str] = field(default_factory=list)
    max_iteration: int = 0
    last_event_at: float | None = None
    checkpoint: str | None = None
    checkpoints: list[list[Any]] = field(default_factory=list)
    submitted_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    #: from TuneConfig(trial_name_creator=...): shown instead of the id; "" when not set
    trial_name: str = ""
    #: from TuneConfig(trial_dirname_creator=...): a link at the experiment root; "" when not set
    dirname: str = ""
    trainable_name: str = ""
    #: the worker process of the latest result (to tell callbacks of a restore from a checkpoint)
    run_key: str = ""
    #: resources a ResourceChangingScheduler decided on: they apply at the next resubmission
    pending_resources: dict[str, Any] | None = None
    #: PBT: the checkpoints the trial continued from, oldest first (``<donor>@<iteration>``)
    lineage: list[str] = field(default_factory=list)

    @property
    def info(self) -> TrialInfo:
        return TrialInfo(self.trial_id, self.config, self.experiment_tag, self.resources)

    @property
    def name(self) -> str:
        """The trial's name: ``trial_name_creator``'s, else Ray's ``<trainable>_<trial_id>``."""
        return self.trial_name or default_trial_name(self.trainable_name, self.trial_id)

    @property
    def logdir(self) -> str:
        """Ray's name for the trial directory (also ``local_path``)."""
        return self.path

    @property
    def local_path(self) -> str:
        return self.path

    @property
    def is_finished(self) -> Finished:
        """TERMINATED or ERROR: ``trial.is_finished()`` as Ray's method, ``if trial.is_finished``
        as a flag (both work)."""
        return Finished(self.status.is_finished)

    def record_result(self, result: dict[str, Any]) -> None:
        """Keep the latest result (as reported) and Ray's metric analysis (min/max/avg/last-k-avg)
        of every number in it, nested ones by their flattened name (``"val/acc"``)."""
        self.last_result = result
        self.num_results += 1
        for key, value in flatten({k: v for k, v in result.items() if k != "config"}).items():
            if key in _ANALYSIS_SKIP or isinstance(value, bool):
                continue
            if isinstance(value, (int, float)) and fits_float(value):  # an old log's huge int: skipped
                _update_analysis(self.metric_analysis.setdefault(key, {}), float(value))

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["status"], data["job_state"] = self.status.value, self.job_state.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trial:
        """A trial from ``to_dict``'s output; fields an older version saved and this one no
        longer has are ignored, so its snapshots still restore."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})  # statuses: __post_init__

    def __str__(self) -> str:
        return self.name


def _update_analysis(stats: dict[str, Any], value: float) -> None:
    n = stats.get("n", 0) + 1
    stats["n"] = n
    stats["last"] = value
    stats["max"] = max(stats.get("max", value), value)
    stats["min"] = min(stats.get("min", value), value)
    stats["avg"] = stats.get("avg", 0.0) + (value - stats.get("avg", 0.0)) / n
    recent = (stats.get("recent", []) + [value])[-10:]
    stats["recent"] = recent
    stats["last-5-avg"] = sum(recent[-5:]) / len(recent[-5:])
    stats["last-10-avg"] = sum(recent) / len(recent)
