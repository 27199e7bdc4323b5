"""How a worker leaves a multi-task trial: rank 0 alone writes the requeue, terminate, pause or
final event and requeues the job; the other ranks write nothing and requeue nothing (the job
would otherwise be requeued once per rank, and the log hold one event per rank).

At the session/worker level, without Slurm: ``scontrol requeue`` is recorded at the one Slurm
command seam (``slurm_limits.shared_commands``)."""

from __future__ import annotations

import subprocess

import pytest

from hpctune.backends import slurm_limits
from hpctune.storage.events import EventKind, new_event
from hpctune.storage.result_log import read_events
from hpctune.worker import run
from hpctune.worker.session import PAUSE
from tests.unit.test_distributed import STEP_VARS, as_task, make_session, make_session_again

SIGNALS = ["SIGUSR1", "SIGUSR2", "SIGTERM", PAUSE]


class RecordingCommands:
    def __init__(self):
        self.calls: list[list[str]] = []

    def run(self, args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(args))
        return subprocess.CompletedProcess(args, 0, "", "")


@pytest.fixture
def slurm(monkeypatch):
    for name in (*STEP_VARS, run.POOL_JOB_ENV):  # a pool task requeues itself otherwise
        monkeypatch.delenv(name, raising=False)
    commands = RecordingCommands()
    monkeypatch.setattr(slurm_limits, "shared_commands", lambda: commands)
    return commands


def kinds(session) -> list[str]:
    return [e["event"] for e in read_events(session.log.path)] if session.log.path.exists() else []


@pytest.mark.parametrize("rank", [1, 3])
@pytest.mark.parametrize("signal_name", SIGNALS)
def test_other_ranks_neither_write_nor_requeue(tmp_path, monkeypatch, slurm, rank, signal_name):
    as_task(monkeypatch, rank)
    session = make_session(tmp_path)
    assert run._exit_for(signal_name, session) == 0
    assert kinds(session) == [] and slurm.calls == []


@pytest.mark.parametrize(("signal_name", "kind", "requeues"), [
    ("SIGUSR1", "requeued", [["scontrol", "requeue", "4242"]]),
    ("SIGUSR2", "requeued", [["scontrol", "requeue", "4242"]]),
    ("SIGTERM", "terminated", []), (PAUSE, "paused", [])])
def test_rank_zero_writes_the_event_and_requeues_once(tmp_path, monkeypatch, slurm, signal_name, kind, requeues):
    as_task(monkeypatch, 0)
    session = make_session(tmp_path)
    assert run._exit_for(signal_name, session) == 0
    assert kinds(session) == [kind] and slurm.calls == requeues


@pytest.mark.parametrize("kind", [EventKind.TERMINATED, EventKind.STOPPED, EventKind.COMPLETE])
def test_only_rank_zero_writes_the_trials_last_event(tmp_path, monkeypatch, slurm, kind):
    as_task(monkeypatch, 2)
    other = make_session(tmp_path)
    run._final_event(other, new_event(kind))
    assert kinds(other) == []
    as_task(monkeypatch, 0)
    run._final_event(make_session_again(other), new_event(kind))
    assert kinds(other) == [kind.value]
