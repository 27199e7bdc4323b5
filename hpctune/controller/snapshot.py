"""The driver's state on disk: snapshots, restoring from one, and Ctrl+C.

A snapshot appends the trials that changed to ``state.journal`` (now and then it rewrites the
base, ``state.json``, instead: ``storage/journal``), then writes ``driver-state.pkl``
(searcher and scheduler state, for ``Tuner.restore``, paired with the journal by the
snapshot's number), the searcher's own ``searcher-state.pkl`` and ``summary.json`` (for
``hpctune ls``). The result logs remain the source of truth: a restored driver re-reads them
from the offsets the snapshot recorded.
"""

from __future__ import annotations

import contextlib
import dataclasses
import operator
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpctune.backends.base import Backend
from hpctune.controller.enactor import Deciders
from hpctune.controller.events import Reading
from hpctune.controller.exploit import Exploits
from hpctune.controller.output import note
from hpctune.controller.paused import PausedTrials
from hpctune.controller.recovery import (
    check_experiment_file,
    collect_leftovers,
    damaged_file,
    interrupted_by_full_storage,
    orphan_checkpoints,
    strings_in,
    unsafe_id,
)
from hpctune.controller.state import RunState, TrialTable
from hpctune.core.ids import job_number
from hpctune.storage.atomic import write_json_atomic
from hpctune.storage.checkpoints import discard_checkpoints
from hpctune.storage.control import ControlRecord
from hpctune.storage.driver_state import save_driver_state
from hpctune.storage.events import JOB_ID, event_kind
from hpctune.storage.experiment import ExperimentDir, config_view
from hpctune.storage.journal_writer import JournalWriter
from hpctune.storage.result_log import LogTail, read_events
from hpctune.storage.summary import SummaryTally
from hpctune.tune.experiment.trial import AssignedTrials, Trial, TrialStatus, watch_assignments

if TYPE_CHECKING:
    from hpctune.controller.controller import ControllerSettings


@dataclass
class SnapshotBook:
    """What the driver's snapshots remember between them: the journal's writer, the number
    of the last snapshot, and each trial's fingerprint as last written."""

    writer: JournalWriter | None = None
    seq: int = 0
    written: dict[str, tuple] = field(default_factory=dict)
    #: the summary's counts and best, updated with the trials that changed
    tally: SummaryTally = field(default_factory=lambda: SummaryTally(None, None))
    #: restored from the files (``written`` holds the trials as read): the first snapshot
    #: appends to the journal on disk instead of rewriting the base (``JournalWriter.adopt``)
    restored: bool = False
    #: the trials assigned to since the last snapshot looked at them (``Trial`` adds itself):
    #: of the live trials, only these and those whose log was read further can have changed
    assigned: AssignedTrials = field(default_factory=watch_assignments)


@dataclass(frozen=True)
class DriverParts:
    """The parts of the driver whose state a snapshot keeps and a restore brings back."""

    exp: ExperimentDir
    backend: Backend
    table: TrialTable
    state: RunState
    deciders: Deciders
    exploits: Exploits
    paused: PausedTrials
    settings: ControllerSettings
    #: the snapshots' own bookkeeping (``save_trials``)
    snapshots: SnapshotBook = field(default_factory=SnapshotBook)


def save_snapshot(parts: DriverParts, status: str = "running") -> None:
    """Write the driver's state: the trials that changed to the journal (``save_trials``),
    then the searcher and scheduler state paired with that snapshot, then the summary."""
    deciders, exp, book = parts.deciders, parts.exp, parts.snapshots
    book.seq += 1
    save_trials(parts, final=status != "running")
    save_driver_state(exp, {
        "journal_seq": book.seq,  # a restore replays the journal up to this snapshot
        "searcher": deciders.searcher.get_state(),
        "scheduler": deciders.scheduler.get_state(),
        "stopper": deciders.stopper.get_state(),
        "callbacks": deciders.callbacks.get_state(),
        "exploits": {**parts.exploits.get_state(), **parts.paused.get_state()},
        "searcher_finished": parts.state.searcher_finished,
        "trial_id_prefix": parts.settings.trial_id_prefix,
    })
    deciders.searcher.save_to_dir(exp.root)
    write_json_atomic(exp.summary_path, book.tally.summary(status, parts.backend.command_counts()), fsync=True)


def save_trials(parts: DriverParts, final: bool = False) -> int:
    """Append the trials whose record changed since the last snapshot to the journal, or
    rewrite the base with every trial when a compaction is due (and at the end of a run,
    ``final``); the number of trial records written.

    Only the live trials and those the table marked (added, retired, brought back) can have
    changed: each step reads only the live trials' logs; and of the live ones only those
    assigned to since the last snapshot (``SnapshotBook.assigned``) or whose log was read
    further. Of these, a trial is written when its fingerprint differs from the one written
    last."""
    table, exp, book = parts.table, parts.exp, parts.snapshots
    if book.writer is None:
        book.writer = JournalWriter(exp)
        book.tally = SummaryTally(parts.settings.metric, parts.settings.mode)
        if book.restored and book.writer.adopt(book.seq - 1):  # as restored: no rewrite
            book.tally.update(table.all)
    run = {"searcher_finished": parts.state.searcher_finished,
           "backend_commands": parts.backend.command_counts(), "updated": time.time()}
    changed = []
    dirty = table.take_dirty()
    looked = table.trials if final else dirty | _assigned_live(table, book)
    for trial_id in looked:  # the last snapshot: every trial looked at
        trial, tail = table.trials[trial_id], table.tails.get(trial_id)
        if tail is not None:  # a packed trial has none: its offset is in its record
            trial.log_offset = tail.offset  # where a restored driver resumes reading
        key = fingerprint(trial)
        if book.written.get(trial_id) != key:
            book.written[trial_id] = key
            changed.append(trial)
    book.assigned.clear()  # each trial assigned to was looked at (its offset's own assignment too)
    book.tally.update(table.all if final else changed)
    book.writer.poll()  # a background compaction that ended: its generation's journal starts
    due = book.writer.due()
    if final and book.writer.generation is not None:  # appended, never a rewrite in the step
        with contextlib.suppress(FileNotFoundError):  # moved away: a new base below
            book.writer.append(book.seq, (_record(t) for t in changed), run)
            waited = book.writer.finish()
            if waited >= 1.0:
                note(f"waited {waited:.1f} s for the compaction of {exp.state_path.name} to end")
            return len(changed)
    if not final and (not due or book.writer.background()):
        try:
            book.writer.append(book.seq, (_record(t) for t in changed), run)
            if due:  # a large base: rewritten from the files up to the last snapshot, aside
                book.writer.compact_in_background(book.seq - 1)
            _pack_written(table, book, dirty)  # (a live trial is never packed)
            return len(changed)
        except FileNotFoundError:  # the journal was moved away: a new base starts a new one
            pass
    for trial_id, tail in table.tails.items():
        table.trials[trial_id].log_offset = tail.offset
    book.written = {t.trial_id: fingerprint(t) for t in table.all}
    book.assigned.clear()
    book.tally.update(table.all)  # what changed unseen (a finished trial edited) is counted now
    book.writer.compact(book.seq, (_record(t) for t in table.all), run)  # streamed
    _pack_written(table, book, table.trials)
    return len(table.all)


def _assigned_live(table: TrialTable, book: SnapshotBook) -> set[str]:
    """The live trials assigned to since the last snapshot, or whose log was read further
    (its reader's offset moved past the trial's ``log_offset``): of the live trials, the only
    ones that can have changed. The pass over the live trials reads one field of each, not
    the whole record."""
    live, tails, assigned = table.live, table.tails, book.assigned
    if not assigned.watching:  # the run ended: every live trial
        return set(live)
    ids = {t.trial_id for t in assigned if live.get(t.trial_id) is t}
    for trial_id, trial in live.items():
        tail = tails.get(trial_id)
        if tail is not None and tail.offset != trial.log_offset:
            ids.add(trial_id)
    return ids


def _pack_written(table: TrialTable, book: SnapshotBook, trial_ids: Iterable[str]) -> None:
    """The finished trials among ``trial_ids``, whose records the journal now holds, in their
    compact form (``TrialTable.pack``); what a snapshot compares them with is the packed form
    (any change unpacks a trial, and it is written again)."""
    for trial_id in trial_ids:
        trial = table.trials[trial_id]
        if trial.status.is_finished and trial.packed is None and table.pack(trial):
            book.written[trial_id] = fingerprint(trial)


def _record(trial: Trial) -> dict[str, Any]:
    return {**trial.to_dict(), "config": config_view(trial.config)}


#: a trial's fields but its metric analysis (it changes only with ``num_results``)
_FIELDS = operator.attrgetter(*(f.name for f in dataclasses.fields(Trial) if f.name != "metric_analysis"))


def fingerprint(trial: Trial) -> tuple | bytes:
    """What tells whether a trial changed: its fields, as one tuple (built in C). Compared with
    the tuple of the last snapshot: an unchanged field is the same object (equal at once); a
    replaced dict or list compares by value. One edited in place compares equal to itself, so
    the scalar fields that move with such an edit tell instead: ``num_results`` with the
    metric analysis, ``job_id`` with ``cancelled_jobs``, ``log_offset`` with anything an
    event of the trial's log changes."""
    packed = trial.packed  # a packed trial's blob (compared as the same object): any change unpacks it
    return packed if packed is not None else _FIELDS(trial)


def restore_trials(parts: DriverParts, snapshot: dict[str, Any], read_logs: Callable[[Reading], None],
                   clock: Callable[[], float], resume_unfinished: bool = True,
                   resume_errored: bool = False, restart_errored: bool = False) -> None:
    """Continue from a snapshot: trials re-attach to their jobs, logs replay from offsets."""
    table, deciders, exp, backend = parts.table, parts.deciders, parts.exp, parts.backend
    check_experiment_file(exp)
    deciders.searcher.set_state(snapshot["searcher"])
    deciders.scheduler.set_state(snapshot["scheduler"])
    deciders.stopper.set_state(snapshot.get("stopper", {}))
    deciders.callbacks.set_state(snapshot.get("callbacks") or [])  # snapshots before callback states: none
    parts.exploits.set_state(snapshot.get("exploits") or {})  # PBT exploits pinned, not yet enacted
    parts.paused.set_state(snapshot.get("exploits") or {})  # and those held for a donor's pause
    parts.state.searcher_finished = snapshot["searcher_finished"]
    parts.snapshots.seq = int(snapshot.get("journal_seq", 0))  # the next snapshots go on from it
    for problem in snapshot.get("state_problems", []):
        note(problem)
    quarantined = {t.trial_id: t.error for t in _add_trials(table, exp, snapshot["trials"])}
    if "state_problems" in snapshot:  # read from base and journal: later changes append to them
        parts.snapshots.written = {t.trial_id: fingerprint(t) for t in table.all if t.trial_id not in quarantined}
        parts.snapshots.restored = True
    _reattach_unrecorded_launches(table, backend, exp, clock)
    # Exactly once: what the trials wrote after the snapshot decides before anything is
    # relaunched, so a trial that finished while no driver ran is never run again.
    read_logs(Reading.RESTORE)
    for trial in table.all:
        if trial.trial_id in quarantined:
            if trial.job_id and trial.status is TrialStatus.ERROR and trial.error == quarantined[trial.trial_id]:
                backend.cancel([trial.job_id])  # nobody would read what it writes
            continue  # its files must be fixed first (its message says how)
        interrupted = trial.status is TrialStatus.ERROR and interrupted_by_full_storage(
            trial.error, exp.job_log_paths(trial.job_id)[1] if trial.job_id else None)
        if interrupted and not restart_errored:  # not the trial's error: it goes on from its checkpoint
            failures = max(0, trial.num_failures - 1)
            trial.revive()
            trial.num_failures = failures
            table.bring_back(trial)
        elif trial.status is TrialStatus.ERROR and (resume_errored or restart_errored):
            if restart_errored:  # from scratch: its old iterations and checkpoints are gone
                discard_checkpoints(Path(trial.path))
                trial.checkpoint, trial.checkpoints, trial.max_iteration = None, [], 0
            trial.revive()
            table.bring_back(trial)
        elif not trial.is_finished and not resume_unfinished:
            if trial.job_id:
                backend.cancel([trial.job_id])
            trial.finish()
            table.retire(trial)
        elif not trial.is_finished and trial.job_id and not backend.jobs_survive_driver:
            trial.mark_for_relaunch()
    writing = {t.trial_id for t in table.submitted()} if backend.jobs_survive_driver else set()
    idle = [t.trial_id for t in table.all if t.trial_id not in writing | set(quarantined)]
    for path in collect_leftovers(exp, idle, keep=strings_in(snapshot.get("exploits"))):
        note(f"removed {path}: left by a write that was killed")


def _add_trials(table: TrialTable, exp: ExperimentDir, records: list[dict[str, Any]]) -> list[Trial]:
    """The snapshot's trials into the table; those whose files are damaged are quarantined
    (ERROR, with a message naming the file and the fix) and their logs are not read. A
    checkpoint whose result line was torn is counted with the others (``num_to_keep``)."""
    quarantined = []
    for data in records:
        forged = unsafe_id(data.get("trial_id"))
        if forged is not None:  # names no directory of ours: nothing of it can be restored
            note(f"left out a trial of {exp.state_path.name}: {forged}")
            continue
        problem = damaged_file(exp, data["trial_id"])
        trial = Trial.from_dict(data)
        if problem is not None:
            note(problem)
            if not trial.is_finished:  # a finished trial keeps its end (its config: the text view)
                trial.fail(problem)
            quarantined.append(trial)
        else:
            trial.config = exp.read_config(trial.trial_id)  # params.pkl, not the text view
            known = [c[0] for c in trial.checkpoints]
            for name in orphan_checkpoints(exp.trial_dir(trial.trial_id), known,
                                           exp.result_log_path(trial.trial_id)):
                trial.checkpoints.append([name, None])  # its result line is lost; the copy is not
        table.add(trial, LogTail(exp.result_log_path(trial.trial_id), trial.log_offset, keep_open=True))
    return quarantined


def _reattach_unrecorded_launches(table: TrialTable, backend: Backend, exp: ExperimentDir,
                                  clock: Callable[[], float]) -> None:
    """Jobs submitted after the snapshot (the driver died between ``sbatch`` and its next
    snapshot) are adopted from the backend's launch records, not submitted again."""
    for trial_id, job_id in backend.recorded_launches().items():
        trial = table.live.get(trial_id)
        if trial is None or job_id == trial.job_id or not _newer(job_id, trial.job_id):
            continue
        if job_id in trial.cancelled_jobs:
            continue  # cancelled on purpose (Ctrl+C): the trial runs again in a new job
        if job_id in _ended_jobs(exp.result_log_path(trial_id)):
            continue  # that job ran and ended (paused, failed): the snapshot knows what follows
        trial.adopt_launch(job_id, clock())


def _newer(job_id: str, than: str | None) -> bool:
    if than is None:
        return True
    new, old = job_number(job_id), job_number(than)  # Slurm's 123_4 -> 123, pool-12 -> 12
    return new is not None and old is not None and new > old


def _ended_jobs(log_path: Path) -> set[str]:
    return {e.get(JOB_ID) for e in read_events(log_path)
            if (kind := event_kind(e, log_path)) is not None and kind.ends_job}


def on_interrupt(table: TrialTable, backend: Backend, exp: ExperimentDir, keep_jobs: bool) -> None:
    """Ctrl+C: stop submitting; cancel the jobs unless told to keep them (``keep_jobs``); the
    loop saves the state after it."""
    live = table.submitted()
    resume = f"Resume with Tuner.restore('{exp.root}') or `hpctune resume {exp.root}`."
    if keep_jobs:
        note(f"interrupted; {len(live)} trials keep running in Slurm. {resume}")
        return
    for trial in live:  # the workers exit at once instead of checkpointing
        exp.write_control(trial.trial_id, ControlRecord.stop("interrupted"))
    backend.cancel([t.job_id for t in live])
    for trial in live:  # resumed from their checkpoints by Tuner.restore
        trial.cancel_for_relaunch()
    note(f"interrupted; cancelled {len(live)} running trials. {resume} To keep trials "
             "running when you press Ctrl+C, set RunConfig(keep_jobs_on_interrupt=True).")


@contextlib.contextmanager
def interrupt_flag() -> Iterator[threading.Event]:
    """The first Ctrl+C (SIGINT) or SIGUSR1 sets the flag (the loop ends at a clean point, as
    in Ray); a second one raises KeyboardInterrupt. SIGUSR1 is taken only while nobody else
    handles it (a detached driver requeues itself on it). ``TUNE_DISABLE_SIGINT_HANDLER=1``
    leaves both signals alone, as in Ray: Ctrl+C then stops the driver at once."""
    flag = threading.Event()
    disabled = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER", "0").strip() not in ("", "0")
    if threading.current_thread() is not threading.main_thread() or disabled:
        yield flag
        return

    def handler(signum: int, frame: Any) -> None:
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()

    wanted = [signal.SIGINT]
    if signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, None):
        wanted.append(signal.SIGUSR1)
    previous = {signum: signal.signal(signum, handler) for signum in wanted}
    try:
        yield flag
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
