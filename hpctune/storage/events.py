"""The event schema of a trial's result log: kinds, field names, version, and one dispatcher.

Every line of ``result.jsonl`` is one event: ``{"event": <kind>, "v": SCHEMA_VERSION, ...}``
with the base fields a worker stamps on each (``BASE_FIELDS``: trial, Slurm job, restart
count, host, pid, time) and the kind's own fields (``KIND_FIELDS``, checked by ``new_event``,
so every name written is declared here). Readers go through ``dispatch``, so the meaning of
each kind is decided in one place per reader (the driver, ``ResultGrid``), and spell field
names with the constants below.

The driver writes four kinds itself (``EventKind.by_driver``). ``meta``: the trial's metadata
record (``storage/trial_meta``), the latest one wins. ``exploited`` (PBT): the trial
continues from a donor's checkpoint with a new config; ``slurm_job_id`` is the job the exploit
ended, ``checkpoint`` the copy's name in this trial, ``result`` the donor's result that went
with that checkpoint (a reader that maps checkpoints to results, or a worker continuing
running totals from a checkpoint, finds it as for any checkpoint), ``old_config`` and
``new_config`` are text views. ``stop_decided``: a stopper or scheduler ended the trial after
``at_iteration``. ``resources_changed`` (ResourceChangingScheduler): the trial is resubmitted
with ``new_resources`` instead of ``old_resources``, after ``at_iteration``.
"""

from __future__ import annotations

import enum
from typing import Any

from hpctune.errors import HpctuneError

SCHEMA_VERSION = 1

KIND = "event"
VERSION = "v"
# -- the base fields (``Session.base_fields``) ---------------------------------------------------
TRIAL_ID = "trial_id"
JOB_ID = "slurm_job_id"  # a Slurm job (``123`` or ``123_4``), a pool run (``pool-7``), a local one
RESTART_COUNT = "restart_count"  # Slurm's SLURM_RESTART_COUNT: which run of the job
HOSTNAME = "hostname"
PID = "pid"
TIME = "time"  # Unix time the event was written (the driver's: when it decided)
# -- a kind's own fields -------------------------------------------------------------------------
RESULT = "result"  # the reported metrics with Ray's auto-filled ones
CHECKPOINT = "checkpoint"  # a checkpoint directory's name in the trial's directory
WAITS = "waits"  # a result after which the worker waits for the driver's verdict (control.py)
ERROR = "error"  # the traceback
RANK = "rank"  # an error event written by a task other than rank 0 of a multi-task trial
RESTORED_ITERATION = "restored_iteration"  # the checkpoint a start restored (0: none)
WORLD_SIZE = "world_size"  # a multi-task trial's start: how many tasks ...
NODELIST = "nodelist"  # ... on which nodes
SIGNAL = "signal"  # the signal that announced a preemption or the time limit
REASON = "reason"  # why a trial stopped (or was cancelled)
AT_ITERATION = "at_iteration"
DONOR = "donor"
DONOR_ITERATION = "donor_iteration"
STEP = "step"
EXPLOIT_ID = "exploit_id"
OLD_CONFIG = "old_config"
NEW_CONFIG = "new_config"
DECIDED_AT = "decided_at"
OLD_RESOURCES = "old_resources"
NEW_RESOURCES = "new_resources"
META = "meta"  # the trial's metadata record (``storage/trial_meta``)


class EventKind(str, enum.Enum):
    """What happened to a trial, as its worker (or the driver: ``by_driver``) wrote it."""

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
    META = "meta"  # (driver) the trial's tag, resources, name, decision points (``trial_meta``)

    @property
    def by_driver(self) -> bool:
        """Only the driver writes it; every other kind comes from the worker of one job (and
        ``stopped`` from the driver too, for a paused trial that has no job to write it)."""
        return self in _BY_DRIVER

    @property
    def ends_run(self) -> bool:
        """The worker process of this run of the job exits after writing it: the last event of
        a run (``restart_count``). After ``requeued`` or ``terminated`` the same job id may run
        again (Slurm requeues it; a pool task resumes its claims), so the run ended, not the job."""
        return self in _ENDS_RUN

    @property
    def ends_job(self) -> bool:
        """The trial never runs again under this job id: the job completed, stopped, failed or
        paused (the driver resubmits a paused trial as a new job), or the driver exploited the
        trial away from it (PBT: the ``exploited`` event names the job it ended). What a
        restored driver and a pool task ask of a job; ``terminated`` is not in it, since a
        preempted job is requeued under its id."""
        return self in _ENDS_JOB


_BY_DRIVER = frozenset({EventKind.EXPLOITED, EventKind.STOP_DECIDED, EventKind.RESOURCES_CHANGED,
                        EventKind.META})
_ENDS_JOB = frozenset({EventKind.COMPLETE, EventKind.STOPPED, EventKind.ERROR, EventKind.PAUSED,
                       EventKind.EXPLOITED})
_ENDS_RUN = frozenset({EventKind.COMPLETE, EventKind.STOPPED, EventKind.ERROR, EventKind.PAUSED,
                       EventKind.REQUEUED, EventKind.TERMINATED})

#: the kinds the driver itself writes, as stored (``event[KIND] in DRIVER_KINDS``)
DRIVER_KINDS = frozenset(kind.value for kind in EventKind if kind.by_driver)

#: the fields every event a worker writes carries (the driver's own events: the trial and time)
BASE_FIELDS = frozenset({TRIAL_ID, JOB_ID, RESTART_COUNT, HOSTNAME, PID, TIME})
#: each kind's own fields, beyond ``KIND``, ``VERSION`` and ``BASE_FIELDS``
KIND_FIELDS: dict[EventKind, frozenset[str]] = {
    EventKind.START: frozenset({RESTORED_ITERATION, WORLD_SIZE, NODELIST}),
    EventKind.RESULT: frozenset({RESULT, CHECKPOINT, WAITS}),
    EventKind.HEARTBEAT: frozenset(),
    EventKind.PREEMPTED: frozenset({SIGNAL}),
    EventKind.REQUEUED: frozenset(),
    EventKind.TERMINATED: frozenset({REASON}),
    EventKind.PAUSED: frozenset({CHECKPOINT, RESULT}),  # a class trainable's, saved as it paused
    EventKind.COMPLETE: frozenset(),
    EventKind.STOPPED: frozenset({REASON, CHECKPOINT, RESULT}),  # checkpoint_at_end's, with its result
    EventKind.ERROR: frozenset({ERROR, RANK}),
    EventKind.EXPLOITED: frozenset({DONOR, DONOR_ITERATION, STEP, EXPLOIT_ID, CHECKPOINT, RESULT,
                                    OLD_CONFIG, NEW_CONFIG, DECIDED_AT}),
    EventKind.STOP_DECIDED: frozenset({AT_ITERATION, REASON}),
    EventKind.RESOURCES_CHANGED: frozenset({OLD_RESOURCES, NEW_RESOURCES, AT_ITERATION}),
    EventKind.META: frozenset({META}),
}
#: every field name an event may carry
FIELDS = frozenset({KIND, VERSION, *BASE_FIELDS}.union(*KIND_FIELDS.values()))


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
    """An event of ``kind`` stamped with the schema version. Its fields must be the base fields
    or the kind's own (``KIND_FIELDS``): a name not declared here is a bug, refused."""
    undeclared = fields.keys() - BASE_FIELDS - KIND_FIELDS[kind]
    if undeclared:
        raise HpctuneError(f"a {kind.value!r} event cannot carry {sorted(undeclared)}: declare the "
                           "field in hpctune/storage/events.py (KIND_FIELDS) first")
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
    def on_meta(self, event: dict[str, Any]) -> None: ...


_METHODS = {kind: f"on_{kind.value}" for kind in EventKind}


def dispatch(event: dict[str, Any], handler: EventHandler, source: object = "a result log") -> EventKind | None:
    """Call the handler's method for the event's kind; returns the kind (None: unknown, ignored)."""
    kind = event_kind(event, source)
    if kind is not None:
        getattr(handler, _METHODS[kind])(event)
    return kind
