"""What schedulers, searchers and callbacks may know about a trial: ids, config, status."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class TrialStatus(str, enum.Enum):
    """Life cycle of a trial, as Ray Tune names it (PENDING covers "queued in Slurm")."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    TERMINATED = "TERMINATED"
    ERROR = "ERROR"

    @property
    def is_finished(self) -> bool:
        return self in (TrialStatus.TERMINATED, TrialStatus.ERROR)


@dataclass(frozen=True)
class TrialInfo:
    """An immutable snapshot of a trial handed to pure decision logic (schedulers, stoppers)."""

    trial_id: str
    config: Mapping[str, Any] = field(default_factory=dict)
    experiment_tag: str = ""
