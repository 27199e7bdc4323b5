"""The control record: what the driver asks one trial's running job to do (``control.json``).

The event log carries what a job did to the driver; the control record is the other half of
the protocol, from the driver (or ``hpctune cancel``) to the job. It is read by the worker (at
each report, and on SIGTERM to tell a stop from a preemption), by a pool task (to end a run),
and by the driver itself (a restored driver finds the pause or stop it had asked for).

On disk: ``{"v": CONTROL_VERSION, "action": "stop" | "pause" | "proceed", "reason": ...,
"final": ..., "iteration": ..., "time": ...}``, written atomically (a reader never sees half a record) by ``write_control``
and read by ``read_control``, the only two functions that touch the file. A record without
``"v"`` (hpctune before records had versions) is version 1. It holds no code, so like the
other JSON files of an experiment it is read without the ownership checks pickles get
(``storage/secure``): at worst a foreign record stops or pauses a trial.
"""

from __future__ import annotations

import enum
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpctune.errors import ExperimentStateError
from hpctune.storage.atomic import write_json_atomic
from hpctune.storage.events import VERSION, check_version

#: the version of the control record this hpctune writes (and the newest it reads)
CONTROL_VERSION = 1

ACTION = "action"
REASON = "reason"
FINAL = "final"
ITERATION = "iteration"
TIME = "time"


class ControlAction(str, enum.Enum):
    """What the driver asks the trial's job to do."""

    STOP = "stop"    # end the trial (StopTrial in the trainable); ``final`` says if it is over
    PAUSE = "pause"  # checkpoint and exit: the driver resubmits the trial later
    #: the driver decided on the result of ``iteration`` and the trial goes on: a worker waiting
    #: there (``core/decision_points``) returns from ``report()``. Only written for a worker
    #: that waits, so a worker of an older hpctune never reads one.
    PROCEED = "proceed"


@dataclass(frozen=True)
class ControlRecord:
    """One request from the driver to a trial's job."""

    action: ControlAction
    #: why (a stop: the StopTrial's message, also the trial's stop reason)
    reason: str = ""
    #: a stop that ends the trial (a scheduler or stopper decided); False: the trial was
    #: cancelled (Ctrl+C, ``hpctune cancel``, a PBT exploit) and the driver decides what follows
    final: bool = False
    #: when the driver wrote it (for people reading the file; None in an old record)
    time: float | None = field(default_factory=time.time)
    #: the version it was read with (``CONTROL_VERSION`` for a new one)
    version: int = CONTROL_VERSION
    #: a proceed: the training_iteration of the result it answers
    iteration: int | None = None

    @classmethod
    def stop(cls, reason: str, final: bool = False) -> ControlRecord:
        return cls(ControlAction.STOP, reason=reason, final=final)

    @classmethod
    def pause(cls) -> ControlRecord:
        return cls(ControlAction.PAUSE)

    @classmethod
    def proceed(cls, iteration: int) -> ControlRecord:
        return cls(ControlAction.PROCEED, iteration=iteration)

    def lets_go_on_after(self, iteration: int) -> bool:
        """A proceed for the result of exactly ``iteration`` (an older one answers another wait)."""
        return self.action is ControlAction.PROCEED and self.iteration == iteration

    @property
    def is_stop(self) -> bool:
        return self.action is ControlAction.STOP

    @property
    def is_pause(self) -> bool:
        return self.action is ControlAction.PAUSE

    def to_json(self) -> dict[str, Any]:
        """The record as written (always at ``CONTROL_VERSION``)."""
        data = {VERSION: CONTROL_VERSION, ACTION: self.action.value, REASON: self.reason,
                FINAL: self.final, TIME: self.time}
        if self.iteration is not None:
            data[ITERATION] = self.iteration
        return data


def write_control(path: str | Path, record: ControlRecord) -> None:
    """Replace the trial's control record (atomically: the job reads the old or the new one)."""
    write_json_atomic(path, record.to_json(), fsync=False)


def read_control(path: str | Path) -> ControlRecord | None:
    """The trial's control record; None when there is none.

    Raises SchemaError for a record of a newer hpctune, and ExperimentStateError for a file
    that is not a control record (it names the file: delete it, the driver writes a new one).
    """
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise _not_a_record(path, "it is not a JSON object")
    version = check_version(data.get(VERSION, 1), CONTROL_VERSION, path, "control record")
    try:
        action = ControlAction(data.get(ACTION))
    except ValueError:
        raise _not_a_record(path, f"its action is {data.get(ACTION)!r}, not 'stop', 'pause' or "
                                  "'proceed'") from None
    moment, iteration = data.get(TIME), data.get(ITERATION)
    return ControlRecord(action, reason=str(data.get(REASON) or ""), final=bool(data.get(FINAL)),
                         iteration=iteration if isinstance(iteration, int) else None,
                         time=float(moment) if isinstance(moment, (int, float)) else None,
                         version=version)


def clear_control(path: str | Path) -> None:
    """Remove the trial's control record (the trial is launched again: nothing is asked of it)."""
    Path(path).unlink(missing_ok=True)


def _not_a_record(path: str | Path, why: str) -> ExperimentStateError:
    return ExperimentStateError(
        f"{path} is not an hpctune control record ({why}). Delete it: the driver writes a new "
        "one when it next stops or pauses the trial.")
