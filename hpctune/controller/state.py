"""The driver's own state: the run's trials (``TrialTable``) and where the run is (``RunState``).

Both are plain records the loop's parts share; a part gets the one it reads or changes, never
the whole ``Controller``. A trial's own state changes only through ``TrialLifecycle``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hpctune.errors import StorageFullError
from hpctune.storage.result_log import LogTail
from hpctune.tune.experiment.trial import Trial

#: finished trials are packed (``TrialTable.pack``) once the run has at least this many trials:
#: below it their full records cost little, and a small experiment keeps them as they are
PACK_FROM_TRIALS = 2000


class TrialTable:
    """Every trial of the run, the unfinished ones (each step looks only at these), the
    reader of each one's result log, and which logs to read in the next step (the change
    feed named them, or events in them wait for a later step)."""

    def __init__(self, log_path: Callable[[str], Path] | None = None) -> None:
        #: a trial's result log (``ExperimentDir.result_log_path``): a packed trial brought back
        #: has its log opened again; without it trials are never packed
        self.log_path = log_path
        self.trials: dict[str, Trial] = {}
        self.live: dict[str, Trial] = {}
        self.tails: dict[str, LogTail] = {}
        self._in_order: list[Trial] = []
        self._changed: set[str] = set()
        #: trials added, retired or brought back since the last snapshot (``take_dirty``)
        self.dirty: set[str] = set()

    def add(self, trial: Trial, tail: LogTail) -> None:
        """A trial of the run (live unless it is finished), its log read from ``tail``."""
        self.trials[trial.trial_id] = trial
        self.tails[trial.trial_id] = tail
        if not trial.is_finished:
            self.live[trial.trial_id] = trial
        self.dirty.add(trial.trial_id)

    def retire(self, trial: Trial) -> None:
        """Out of the loop: the trial ended, or the experiment stopped before it started."""
        self.live.pop(trial.trial_id, None)
        tail = self.tails.get(trial.trial_id)
        if tail is not None:
            tail.close()
        self.dirty.add(trial.trial_id)

    def pack(self, trial: Trial) -> bool:
        """A finished trial out of the loop, whose record a snapshot has just written, in its
        compact form (``Trial.pack``), without its log's reader (nothing reads a finished
        trial's log; ``bring_back`` opens it again): True if packed. Only from
        ``PACK_FROM_TRIALS`` trials on."""
        if (self.log_path is None or len(self.trials) < PACK_FROM_TRIALS or trial.trial_id in self.live
                or not trial.pack()):
            return False
        tail = self.tails.pop(trial.trial_id, None)
        if tail is not None:
            tail.close()
        return True

    def mark_changed(self, trial_ids: set[str]) -> None:
        """Logs the change feed says grew: read them in this step (unknown ids are ignored)."""
        self._changed.update(trial_ids)

    def read_again(self, trial_id: str) -> None:
        """A log whose events wait for a later step: read it again then, rung or not."""
        self._changed.add(trial_id)

    def take_changed(self) -> list[Trial]:
        """The live trials whose logs are to be read, in id order; the set starts over."""
        changed, self._changed = self._changed, set()
        return [self.live[i] for i in sorted(changed) if i in self.live]

    def bring_back(self, trial: Trial) -> None:
        """Into the loop again (an errored trial a restore runs again); a packed trial's log is
        read again from where its record says it was read up to."""
        if trial.trial_id not in self.tails and self.log_path is not None:
            self.tails[trial.trial_id] = LogTail(self.log_path(trial.trial_id), trial.log_offset,
                                                 keep_open=True)
        self.live[trial.trial_id] = trial
        self.dirty.add(trial.trial_id)

    def take_dirty(self) -> set[str]:
        """The trials a snapshot must look at besides the live ones: marked since the last
        call (the snapshot's journal writes those whose record changed)."""
        dirty, self.dirty = self.dirty, set()
        return dirty

    @property
    def all(self) -> list[Trial]:
        """Every trial, in creation order (rebuilt only when trials were added: callbacks get it
        with every result, and trials are never removed)."""
        if len(self._in_order) != len(self.trials):
            self._in_order = list(self.trials.values())
        return self._in_order

    @property
    def unfinished(self) -> list[Trial]:
        return list(self.live.values())

    def any_submitted(self) -> bool:
        """True if an unfinished trial has a job (stops at the first)."""
        return any(t.job_id for t in self.live.values())

    def submitted(self) -> list[Trial]:
        """The unfinished trials that have a job (queued or running)."""
        return [t for t in self.live.values() if t.job_id]


@dataclass
class RunState:
    """Where the run is: its step count, whether the searcher or the experiment is done, and
    the error that ended it (a trial's with ``fail_fast``, or a full filesystem)."""

    iteration: int = 0
    searcher_finished: bool = False
    stop_everything: bool = False
    fatal_error: str | None = None
    storage_full: StorageFullError | None = None
