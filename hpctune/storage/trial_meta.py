"""A trial's metadata: its tag, resources, name and decision points, as the driver set them.

The driver writes it as a ``meta`` event in the trial's result log (``write_meta``), each time
the whole record (the latest wins), at the trial's creation and whenever it changes (a
resubmission with new resources, a PBT exploit's new tag). The worker reads it as it starts
(``get_trial_resources()``, ``get_trial_name()``, where it waits for a verdict); a restore and
``ResultGrid.from_path`` read it from the log they replay anyway (``meta_of``). It lives in the
log, not in a file of its own, so that a trial keeps one file fewer (an inode each, at
100,000 trials); it is written before the trial's job is launched, so a driver killed at any
point leaves it for the next one.

hpctune before this wrote it to ``trials/<id>/trial.json``; that file is still read when no
``meta`` event is in the log (an experiment from before, restored or read by this version).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpctune.storage import events as ev
from hpctune.storage.atomic import read_json
from hpctune.storage.result_log import ResultLog, encode_events, read_events


def meta_event(trial_id: str, meta: dict[str, Any]) -> dict[str, Any]:
    """The ``meta`` event that holds ``meta``, the trial's whole record."""
    # no time: the driver orders events across trials by their time, and one without comes
    # first (a record, not something that happened: it never waits behind a worker's events)
    return ev.new_event(ev.EventKind.META, trial_id=trial_id, meta=meta)


def write_meta(log: ResultLog, trial_id: str, meta: dict[str, Any]) -> None:
    """Append ``meta``, the trial's whole record, to its result log ``log`` (under the log's
    lock; ``ExperimentDir.result_log``, which rings the change feed as every writer does)."""
    try:
        log.append(meta_event(trial_id, meta))
    finally:
        log.close()


def meta_line(trial_id: str, meta: dict[str, Any]) -> bytes:
    """The log line of ``meta_event`` (for the driver writing a new trial's log: ``storage/new_trial``)."""
    return encode_events([meta_event(trial_id, meta)])


def read_meta(log_path: Path, legacy_path: Path) -> Any:
    """The trial's latest record: its log's last ``meta`` event's, else the old ``trial.json``'s,
    else ``{}``. Not checked: a damaged record comes back as it is (``meta_of``'s caller
    decides); a ``trial.json`` that is not JSON raises ValueError."""
    return meta_of(read_events(log_path), legacy_path)


def meta_of(events: list[dict[str, Any]], legacy_path: Path) -> Any:
    """The trial's record in ``events`` (its whole log, in order); see ``read_meta``."""
    for event in reversed(events):
        if event.get(ev.KIND) == ev.EventKind.META.value and ev.META in event:
            return event[ev.META]
    return read_json(legacy_path, default={}) or {}
