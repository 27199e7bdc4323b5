"""The event schema (``storage/events.py``) is the one place that names event fields and says
what each kind means for a run, a job and who writes it."""

import ast
from pathlib import Path

import pytest

from hpctune.errors import HpctuneError
from hpctune.storage import events as ev
from hpctune.storage.events import EventKind, new_event

PACKAGE = Path(__file__).resolve().parents[2] / "hpctune"
SCHEMA = PACKAGE / "storage" / "events.py"
#: the builders of events: their keywords are event fields (``log_event``'s ``fsync`` aside)
BUILDERS = {"new_event": set(), "log_event": {"fsync"}}


def test_the_driver_kinds_are_every_kind_the_driver_writes():
    assert {"exploited", "stop_decided", "resources_changed", "meta"} == ev.DRIVER_KINDS
    assert {k for k in EventKind if k.by_driver} == {EventKind(v) for v in ev.DRIVER_KINDS}


@pytest.mark.parametrize("kind, ends_run, ends_job", [
    (EventKind.START, False, False), (EventKind.RESULT, False, False), (EventKind.HEARTBEAT, False, False),
    (EventKind.PREEMPTED, False, False),
    (EventKind.REQUEUED, True, False),  # the job runs again under its id
    (EventKind.TERMINATED, True, False),  # preempted: Slurm (or the pool task) runs it again
    (EventKind.PAUSED, True, True), (EventKind.COMPLETE, True, True), (EventKind.STOPPED, True, True),
    (EventKind.ERROR, True, True),
    (EventKind.EXPLOITED, False, True),  # the driver ended that job: the trial goes on in a new one
    (EventKind.STOP_DECIDED, False, False), (EventKind.RESOURCES_CHANGED, False, False), (EventKind.META, False, False),
])
def test_which_events_end_a_run_and_which_end_a_job(kind, ends_run, ends_job):
    assert (kind.ends_run, kind.ends_job) == (ends_run, ends_job)


def test_every_kind_declares_its_fields_and_new_event_refuses_others():
    assert set(ev.KIND_FIELDS) == set(EventKind)
    assert new_event(EventKind.STOPPED, reason="asha", trial_id="t")[ev.REASON] == "asha"
    with pytest.raises(HpctuneError, match=r"'complete' event cannot carry \['error'\].*KIND_FIELDS"):
        new_event(EventKind.COMPLETE, error="boom")
    with pytest.raises(HpctuneError, match="declare the field"):
        new_event(EventKind.RESULT, reslt={})


def _modules(root: Path) -> list[Path]:
    return [path for path in sorted(root.rglob("*.py")) if path != SCHEMA]


def _names_an_event(node: ast.expr) -> bool:
    """How the code names an event dict it reads: ``event``, ``e``, ``last_event``..."""
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return name in ("e", "event") or name.endswith("_event")


def literal_event_fields(root: Path) -> list[str]:
    """Event fields spelled as string literals outside the schema: ``event["time"]``,
    ``event.get("reason")``, ``new_event(..., **{"old_config": ...})``."""
    found = []
    for path in _modules(root):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            where = f"{path.relative_to(root)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Subscript) and _names_an_event(node.value):
                keys = [node.slice]
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr in ("get", "pop", "setdefault") and _names_an_event(node.func.value)):
                keys = node.args[:1]
            elif isinstance(node, ast.Call) and _builder(node) is not None:
                keys = [k for kw in node.keywords if kw.arg is None and isinstance(kw.value, ast.Dict)
                        for k in kw.value.keys]
            else:
                continue
            found += [f"{where}: {k.value!r}" for k in keys
                      if isinstance(k, ast.Constant) and k.value in ev.FIELDS]
    return found


def _builder(call: ast.Call) -> str | None:
    name = call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", None)
    return name if name in BUILDERS else None


def undeclared_keywords(root: Path) -> list[str]:
    """Keywords of ``new_event(EventKind.X, ...)`` that are not fields of kind X."""
    found = []
    for path in _modules(root):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call) or _builder(node) is None or not node.args:
                continue
            kind = node.args[0]
            allowed = ev.BASE_FIELDS | BUILDERS[_builder(node)]
            if isinstance(kind, ast.Attribute) and kind.attr in EventKind.__members__:
                allowed |= ev.KIND_FIELDS[EventKind[kind.attr]]
            else:  # a kind chosen at run time: any declared field
                allowed |= ev.FIELDS
            found += [f"{path.relative_to(root)}:{node.lineno}: {kw.arg}"
                      for kw in node.keywords if kw.arg is not None and kw.arg not in allowed]
    return found


def test_event_fields_are_read_and_written_through_the_schemas_names():
    assert literal_event_fields(PACKAGE) == []
    assert undeclared_keywords(PACKAGE) == []


def test_the_checks_find_literal_fields_and_undeclared_keywords(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('event.get("time")\nlast_event["reason"]\nresult["time"]\n'
                      'new_event(EventKind.EXPLOITED, **{"old_config": 1, ev.DONOR: 2})\n'
                      'new_event(EventKind.COMPLETE, error="x", trial_id="t")\n'
                      'session.log_event(EventKind.PREEMPTED, fsync=True, signal="SIGTERM")\n')
    assert literal_event_fields(tmp_path) == [
        "sample.py:1: 'time'", "sample.py:2: 'reason'", "sample.py:4: 'old_config'"]
    assert undeclared_keywords(tmp_path) == ["sample.py:5: error"]
