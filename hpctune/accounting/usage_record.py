"""The allocation an experiment used, as the driver last measured it (``<exp>/usage.json``).

Written by the driver's meter (``accounting/meter.py``) at most once per poll interval and at
the end; read by ``hpctune status``, ``trials``, ``ls``, the HTML report, the HDF5 export and
``ResultGrid.get_dataframe()``, so none of them runs ``sacct`` itself. One record, versioned::

    {"v": 1, "updated": <unix time>, "used": {node_hours, cpu_hours, gpu_hours, wall_hours},
     "idle": {...} | null, "queued_s": float | null,
     "trials": {trial id: {"used": {...}, "queued_s": float | null, "source": "sacct"}},
     "budget": {"unit": "gpu", "limit": 10.0, "stopped": "..." | null} | null}
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpctune.accounting.usage import ExperimentUsage, Hours, TrialUsage
from hpctune.errors import ExperimentStateError
from hpctune.storage.atomic import read_json, write_json_atomic
from hpctune.storage.events import check_version

#: the version of ``usage.json`` this hpctune writes (and the newest it reads)
USAGE_VERSION = 1
USAGE_FILE = "usage.json"


@dataclass(frozen=True)
class UsageRecord:
    """What ``usage.json`` holds: the usage, when it was measured, the budget and its verdict."""

    usage: ExperimentUsage
    updated: float
    budget: dict[str, Any] | None = None


def usage_path(root: str | Path) -> Path:
    return Path(root) / USAGE_FILE


def write_usage(
    root: str | Path, usage: ExperimentUsage, budget: dict[str, Any] | None = None
) -> None:
    """Replace the record (atomically: a reader sees the old one or the new one)."""
    trials = {
        tid: {"used": u.used.to_json(), "queued_s": u.queued_s, "source": u.source}
        for tid, u in usage.trials.items()
    }
    write_json_atomic(
        usage_path(root),
        {
            "v": USAGE_VERSION,
            "updated": time.time(),
            "used": usage.used.to_json(),
            "idle": None if usage.idle is None else usage.idle.to_json(),
            "queued_s": usage.queued_s,
            "trials": trials,
            "budget": budget,
        },
        fsync=False,
    )


def read_usage(root: str | Path) -> UsageRecord | None:
    """The last record, or None (none written yet: an experiment of an older hpctune, or one
    not measured yet). SchemaError for a newer record; ExperimentStateError for a damaged one."""
    path = usage_path(root)
    try:
        data = read_json(path, None)
    except ValueError:
        data = {}
    if data is None:
        return None
    try:
        check_version(data.get("v"), USAGE_VERSION, path, "usage record")
        trials = {
            str(tid): TrialUsage(
                Hours.from_json(t["used"]), t.get("queued_s"), str(t.get("source", ""))
            )
            for tid, t in data["trials"].items()
        }
        idle = None if data.get("idle") is None else Hours.from_json(data["idle"])
        usage = ExperimentUsage(trials, idle, data.get("queued_s"), Hours.from_json(data["used"]))
        return UsageRecord(usage, float(data.get("updated") or 0.0), data.get("budget"))
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ExperimentStateError(
            f"{path} is not an hpctune usage record ({exc!r}): remove it; "
            "the driver writes it again at its next poll."
        ) from None
