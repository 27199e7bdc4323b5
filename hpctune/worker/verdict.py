"""Waiting for the driver's verdict on a result where a decision can fall (``core/decision_points``).

After appending a result at one of its trial's decision points, ``report()`` polls the trial's
control record until the driver answered that result: a ``proceed`` for its iteration, or a stop
or pause (which ``Session.check_control`` then enacts right there, so no iteration runs past the
result that decided it, as in Ray). The poll starts at a millisecond and backs off to
``MAX_POLL_S``: a driver that answers within its tick costs the trainable about one tick.

A driver that does not answer within ``timeout_s`` is taken for dead (or stuck): the worker
notes it on stderr and goes on without waiting for the rest of this run; a restored driver
re-decides from the log, as before waiting existed.

The driver learns of the waiting result as of any other: the append rang the change feed
(``storage/changes``), so the driver reads this trial's log in its next tick.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from hpctune.core.decision_points import NEVER, DecisionPoints
from hpctune.errors import HpctuneError
from hpctune.storage.control import ControlRecord, read_control

#: how long a worker waits for a verdict before it goes on without one
VERDICT_TIMEOUT_S = 60.0
FIRST_POLL_S = 0.001
MAX_POLL_S = 0.01


class Verdicts:
    """One run's waits: where (``points``), and on which control record."""

    def __init__(self, points: DecisionPoints, control_path: Path):
        self.points, self.control_path = points, control_path

    def waits_at(self, iteration: int) -> bool:
        return self.points.waits_at(iteration)

    def after(self, iteration: int) -> None:
        """Wait for the verdict on the result of ``iteration`` where one can fall (the caller
        enacts a stop or pause); after a timeout, wait no more in this run."""
        if not self.points.waits_at(iteration):
            return
        if await_verdict(self.control_path, iteration) is None:
            self.points = NEVER  # the driver is gone: no more waiting in this run


def await_verdict(control_path: Path, iteration: int, timeout_s: float = VERDICT_TIMEOUT_S,
                  clock: Callable[[], float] = time.monotonic,
                  sleep: Callable[[float], None] = time.sleep) -> ControlRecord | None:
    """The driver's answer to the result of ``iteration``: a stop or a pause (whatever result it
    followed), or the proceed for exactly this iteration; None when none came in ``timeout_s``."""
    deadline, delay = clock() + timeout_s, FIRST_POLL_S
    while True:
        record = read_request(control_path)
        if record is not None and (record.is_stop or record.is_pause or record.lets_go_on_after(iteration)):
            return record
        if clock() >= deadline:
            print(f"hpctune: the driver did not answer the result of iteration {iteration} within "
                  f"{timeout_s:g} s; going on without waiting for its decisions (a restored driver "
                  "decides from the result log).", file=sys.stderr, flush=True)
            return None
        sleep(delay)
        delay = min(delay * 2, MAX_POLL_S)


def read_request(path: Path) -> ControlRecord | None:
    """The driver's request (``read_control``); an unreadable record (garbage, a newer hpctune's)
    is no request: the trial goes on, and the job's stderr says why."""
    try:
        return read_control(path)
    except (HpctuneError, OSError) as exc:
        print(f"hpctune: ignoring the control record {path}: {exc}", file=sys.stderr, flush=True)
        return None
