"""The event schema of a trial's result log: kinds, field names, version, and one dispatcher.

Every line of ``result.jsonl`` is one event: ``{"event": <kind>, "v": SCHEMA_VERSION,
"trial_id", "slurm_job_id", "restart_count", "hostname", "pid", "time", ...}`` plus the
kind's own fields (``result`` and ``checkpoint`` for a result, ``error`` for an error,
``signal`` for a preemption, ``reason`` for a stop; ``world_size`` and ``nodelist`` in the start
event of a trial of several tasks, ``rank`` in the error event a task of such a trial wrote).
Readers go through ``dispatch``, so the meaning of each kind is decided in one place per
reader (the driver, ``ResultGrid``).

``exploited`` is the one event the driver writes itself (PBT): the trial continues from a
donor's checkpoint with a new config. Its fields: ``donor``, ``donor_iteration`` (the
checkpoint's), ``step`` (the trial's iteration at the decision), ``old_config``,
``new_config`` (text views), ``checkpoint`` (the copy's name in this trial), ``result`` (the
donor's result that went with that checkpoint: a reader that maps checkpoints to results,
or a worker continuing running totals from a checkpoint, finds it as for any checkpoint),
``exploit_id`` and ``decided_at``. ``resources_changed`` (driver, ResourceChangingScheduler):
the trial is resubmitted with ``new_resources`` instead of ``old_resources``, after
``at_iteration``.
"""

from __future__ import annotations

import enum
from typing import Any

from hpctune.errors import HpctuneError

SCHEMA_VERSION = 1

KIND = "event"
VERSION = "v"
RESULT = "result"
CHECKPOINT = "checkpoint"
ERROR = "error"
JOB_ID = "slurm_job_id"
RESTART_COUNT = "restart_count"
RANK = "rank"  # an error event written by a task other than rank 0 of a multi-task trial
AT_ITERATION = "at_iteration"
DONOR = "donor"
DONOR_ITERATION = "donor_iteration"
STEP = "step"
EXPLOIT_ID = "exploit_id"


class EventKind(str, enum.Enum):
    """What happened to a trial, as its worker wrote it."""

    START = "start"            # a worker started (or restarted) the trial
    RESULT = "result"          # train.report(): metrics, and a checkpoint name if one was saved
    HEARTBEAT = "heartbeat"    # the worker is alive
    PREEMPTED = "preempted"    # Slurm announced preemption or the time limit
    REQUEUED = "requeued"      # the worker checkpointed and requeued its own job
    TERMINATED = "terminated"  # SIGTERM: preempted (Slurm requeues) or cancelled
    PAUSED = "paused"          # checkpointed and exited on the driver's request
    COMPLETE = "complete"      # the trainable returned
    STOPPED = "stopped"        # ended on a stop decision
    ERROR = "error"            # the trainable raised; ``error`` holds the traceback
    EXPLOITED = "exploited"    # (driver) continues from a donor's checkpoint with a new config
    STOP_DECIDED = "stop_decided"  # (driver) ended by a stopper/scheduler after ``at_iteration``
    RESOURCES_CHANGED = "resources_changed"  # (driver) resubmitted with ``new_resources``


#: the kinds the driver itself writes (every other kind comes from the worker of one job)
DRIVER_KINDS = frozenset({EventKind.EXPLOITED.value, EventKind.STOP_DECIDED.value})


class SchemaError(HpctuneError):
    """A file written by a newer hpctune than this one: a result log, a control record, a pool record."""


def check_version(version: object, newest: int, source: object, what: str) -> int:
    """``version`` of a record read from ``source`` if this hpctune can read it (``newest`` or
    older). Raises SchemaError for a newer one (or no number at all): reading it as ours could
    misinterpret the experiment. Every versioned record of ``storage/`` checks through here."""
    if not isinstance(version, int) or isinstance(version, bool) or version > newest:
        raise SchemaError(
            f"{source} was written by a newer hpctune ({what} {version!r}, this hpctune "
            f"reads up to {newest}): upgrade hpctune (`pip install -U hpctune`) to read it.")
    return version


def new_event(kind: EventKind, **fields: Any) -> dict[str, Any]:
    """An event of ``kind`` stamped with the schema version."""
    return {KIND: kind.value, VERSION: SCHEMA_VERSION, **fields}


def event_kind(event: dict[str, Any], source: object = "a result log") -> EventKind | None:
    """The kind of ``event``; None for a kind this version does not know.

    Raises SchemaError for an event of a newer schema: reading it as ours could
    misinterpret the experiment.
    """
    check_version(event.get(VERSION, 1), SCHEMA_VERSION, source, "event schema")
    try:
        return EventKind(event.get(KIND))
    except ValueError:
        return None


class EventHandler:
    """One method per event kind, each a no-op here: readers override what they act on."""

    def on_start(self, event: dict[str, Any]) -> None: ...
    def on_result(self, event: dict[str, Any]) -> None: ...
    def on_heartbeat(self, event: dict[str, Any]) -> None: ...
    def on_preempted(self, event: dict[str, Any]) -> None: ...
    def on_requeued(self, event: dict[str, Any]) -> None: ...
    def on_terminated(self, event: dict[str, Any]) -> None: ...
    def on_paused(self, event: dict[str, Any]) -> None: ...
    def on_complete(self, event: dict[str, Any]) -> None: ...
    def on_stopped(self, event: dict[str, Any]) -> None: ...
    def on_error(self, event: dict[str, Any]) -> None: ...
    def on_exploited(self, event: dict[str, Any]) -> None: ...
    def on_stop_decided(self, event: dict[str, Any]) -> None: ...
    def on_resources_changed(self, event: dict[str, Any]) -> None: ...


_METHODS = {kind: f"on_{kind.value}" for kind in EventKind}


def dispatch(event: dict[str, Any], handler: EventHandler, source: object = "a result log") -> EventKind | None:
    """Call the handler's method for the event's kind; returns the kind (None: unknown, ignored)."""
    kind = event_kind(event, source)
    if kind is not None:
        getattr(handler, _METHODS[kind])(event)
    return kind
