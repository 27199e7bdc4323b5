"""Creating trials from the searcher's suggestions and submitting them within the throttles.

A non-adaptive search (random, grid) goes out as one throttled array per batch
(``--array=0-N%K``), and the next batch waits for it to drain (without a throttle, the next
batch goes out once half of this one ended); an adaptive one keeps
``max_concurrent_trials`` (default ``DEFAULT_ADAPTIVE_WINDOW``) trials in flight.
Retried and paused trials wait for a free slot, so the throttle holds with them too; a
paused trial goes out once its scheduler lets it (a synchronous barrier holds it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING

from hpctune.backends.base import Backend
from hpctune.config.ray_env import max_pending_trials
from hpctune.controller.enactor import Deciders
from hpctune.controller.live_subset import LiveSubset
from hpctune.controller.paused import PausedTrials
from hpctune.controller.resource_change import apply_pending
from hpctune.controller.state import RunState, TrialTable
from hpctune.core.decision_points import META_KEY as POINTS_KEY
from hpctune.space import format_experiment_tag
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.result_log import LogTail
from hpctune.tune.experiment.trial import JobState, Trial, TrialStatus
from hpctune.tune.search.searcher import Searcher

if TYPE_CHECKING:
    from hpctune.controller.controller import ControllerSettings

EAGER_BATCH = 10_000
DEFAULT_ADAPTIVE_WINDOW = 32
_PAUSED = TrialStatus.PAUSED


def first_batch_size(searcher: Searcher, max_concurrent: int | None) -> int:
    """How many trials the first launch holds: a finite random/grid search all at once (up to
    EAGER_BATCH), an endless one a few rounds of slots, a model-based one a window of slots."""
    slots = max_concurrent or DEFAULT_ADAPTIVE_WINDOW
    if searcher.adaptive:
        return slots
    total = getattr(searcher, "total_trials", None)
    return min(total, EAGER_BATCH) if total is not None else 4 * slots


class Launcher:
    """Asks the searcher for trials and submits the waiting ones within the throttles."""

    def __init__(self, table: TrialTable, state: RunState, exp: ExperimentDir, backend: Backend,
                 deciders: Deciders, settings: ControllerSettings, paused: PausedTrials,
                 clock: Callable[[], float], save: Callable[[], None]):
        self.table, self.state, self.exp, self.backend = table, state, exp, backend
        self.searcher, self.scheduler, self.deciders = deciders.searcher, deciders.scheduler, deciders
        self.settings, self.paused, self.clock, self.save = settings, paused, clock, save
        self._eager_batch_size: int | None = None
        self._created_since_save = False
        self._max_pending = max_pending_trials()
        #: the live trials without a job or paused (kept between steps: ``LiveSubset``)
        self.idle = LiveSubset(table, _without_job)

    # -- creating -----------------------------------------------------------------------
    def create_trials(self) -> None:
        for _ in range(self._room_for_new_trials()):
            trial_id = f"{self.settings.trial_id_prefix}_{len(self.table.trials):05d}"
            config = self.searcher.suggest(trial_id)
            if config == Searcher.FINISHED:
                self.state.searcher_finished = True
                return
            if config is None:
                return
            self._add_trial(trial_id, config)

    def _room_for_new_trials(self) -> int:
        """How many trials to ask the searcher for now (``TUNE_MAX_PENDING_TRIALS_PG`` caps
        the trials waiting to run)."""
        if self.state.searcher_finished:
            return 0
        live = len(self.table.live)
        # a backend that queues runs instead of submitting arrays (the pool: no Slurm call, and
        # its throttle is its pool tasks' cap, whatever is queued) tops up at this fraction
        top_up = getattr(self.backend, "top_up_fraction", None)
        if not self.searcher.adaptive and (self.settings.max_concurrent is None or top_up is not None):
            # no throttle to keep: the next batch goes out once half of this one has ended, so
            # that the queue never runs dry (waiting for a drain left a third of 2,000 slots
            # idle over 100,000 trials, bench/driver_scale.py); arrays stay half a batch or more
            room = max(0, self._eager_batch() - live)
            floor = int(self._eager_batch() * (top_up or 0.5))
            room = room if room >= floor or not self.table.any_submitted() else 0
        elif not self.searcher.adaptive:  # one throttled array per batch; wait for it to drain
            room = 0 if self.table.any_submitted() else max(0, self._eager_batch() - live)
        else:
            room = max(0, (self.settings.max_concurrent or DEFAULT_ADAPTIVE_WINDOW) - live)
        if self._max_pending is not None:
            waiting = sum(1 for t in self.table.live.values() if t.status is TrialStatus.PENDING)
            room = min(room, max(0, self._max_pending - waiting))
        return room

    def _eager_batch(self) -> int:
        """How many trials of a non-adaptive search go into one array: all of a finite search
        (up to EAGER_BATCH), a few rounds of slots of an endless one. A finite search gets room
        beyond its last trial, so that it is asked once more in the same step and answers
        FINISHED: the run knows then that no more trials come."""
        if self._eager_batch_size is None:
            finite = getattr(self.searcher, "total_trials", None) is not None
            slots = self.settings.max_concurrent or DEFAULT_ADAPTIVE_WINDOW
            self._eager_batch_size = EAGER_BATCH if finite else 4 * slots
        return self._eager_batch_size

    def _add_trial(self, trial_id: str, config: dict) -> None:
        """Record a new trial; its config is written exactly as the searcher made it (params.pkl,
        read by the worker) and as text (params.json), or as the scheduler completed it (PBT
        fills the keys the search space lacks). A value that cannot be pickled is a ConfigError
        naming its key, raised here (so by ``fit()``) before the trial exists."""
        exp = self.exp
        resources = self.settings.resources_for(config)
        # a new directory's files in few metadata operations, none read back (storage/new_trial)
        with exp.new_trial(trial_id) as new:
            exp.write_params(trial_id, config)
            tag = format_experiment_tag(len(self.table.trials), config, self.settings.param_space)
            trial = Trial(trial_id, config, tag, str(exp.trial_dir(trial_id)), resources=resources)
            tail = LogTail(exp.result_log_path(trial_id), keep_open=True)
            self.table.add(trial, tail)
            self.scheduler.on_trial_add(trial.info)  # first: a scheduler's decision points follow from it
            # what naming wrote during on_trial_add (trial_name_creator's names) is kept
            exp.write_trial_meta(trial_id, {**exp.read_trial_meta(trial_id), "trial_id": trial_id,
                                            "experiment_tag": tag, "resources": trial.resources,
                                            **self._points_meta(trial)})
            initial = self.scheduler.initial_config(trial.info)
            if initial is not None:
                trial.config = dict(initial)
                exp.write_params(trial_id, trial.config)
            log = new.take_log()
            if log is not None:  # read through the descriptor written with, from after the meta
                tail.adopt(*log)
        self._created_since_save = True

    # -- launching ----------------------------------------------------------------------
    def launch_pending(self, only: set[str] | None = None) -> None:
        """Submit waiting trials, one backend launch per resource shape (``only``: just these
        trials, if they wait: PBT's recipients in the step that enacted their exploits).

        New trials go first, then retried and paused ones as far as the throttle allows (the
        scheduler says which paused ones may go on)."""
        fresh, again, paused = self._waiting(only)
        again += self.paused.ready(paused)  # at the back
        budget = self._relaunch_budget() if again else None
        chosen = fresh + (again if budget is None else again[:budget])
        if self.settings.allocation is not None:  # TuneConfig's allocation budget (accounting/meter.py)
            chosen = self.settings.allocation.admit(chosen, self.table.all, self.table.submitted())
        if not chosen:
            return
        for trial in chosen:
            self._prepare(trial)
        if self._created_since_save:  # a restored driver must know every trial it may submit
            self.save()
        room = self.backend.submit_room(len(self.table.submitted()))
        for batch in _by_resources(chosen):
            if room is not None:  # stay within the user's MaxSubmitJobs; the rest waits
                batch, room = batch[:room], room - min(room, len(batch))
            if not batch:
                continue
            job_ids = self.backend.launch([t.trial_id for t in batch], batch[0].resources, self._throttle())
            now = self.clock()
            for trial, job_id in zip(batch, job_ids, strict=True):
                trial.launch(job_id, now)
        self.save()  # a restored driver must know every submitted job
        self._created_since_save = False

    def waiting(self) -> list[Trial]:
        """Every trial waiting for a job (new, retried, paused): what a budget must still fit."""
        fresh, again, paused = self._waiting(None)
        return fresh + again + paused

    def _waiting(self, only: set[str] | None) -> tuple[list[Trial], list[Trial], list[Trial]]:
        """The trials without a job, in three lists: new ones; those to resubmit from their
        checkpoint (retried, exploited, restored); paused ones, and pausing ones whose job ended
        before it could pause (a restored driver's local jobs, a failure while pausing)."""
        fresh: list[Trial] = []
        again: list[Trial] = []
        paused: list[Trial] = []
        pausing: list[Trial] = []
        for t in self.idle.trials():
            if only is not None and t.trial_id not in only:
                continue
            if t.job_id is None and t.status is TrialStatus.PENDING:
                if not t.awaiting_restart:
                    fresh.append(t)
                elif self._pause_requested(t):
                    pausing.append(t)
                else:
                    again.append(t)
            elif t.status is _PAUSED and only is None:
                paused.append(t)
        return fresh, again, paused + pausing

    def _pause_requested(self, trial: Trial) -> bool:
        record = self.exp.read_control(trial.trial_id)
        return record is not None and record.is_pause

    def _prepare(self, trial: Trial) -> None:
        """Before its resubmission: a paused trial resumes, an old control record goes, and a
        request ResourceChangingScheduler decided becomes the trial's."""
        if trial.status is TrialStatus.PAUSED:
            trial.resume()
        if trial.awaiting_restart:
            self.exp.clear_control(trial.trial_id)
            apply_pending(self.exp, trial)
            self.exp.write_trial_meta(trial.trial_id, {**self.exp.read_trial_meta(trial.trial_id),
                                                       **self._points_meta(trial)})

    def _points_meta(self, trial: Trial) -> dict:
        """The trial meta's entry of where its worker waits for the driver's verdict (a
        scheduler's points move as the run goes: PBT's next perturbation, HyperBand's halvings)."""
        return {POINTS_KEY: self.deciders.decision_points(trial).to_json()}

    def _throttle(self) -> int | None:
        """The array throttle (``%K``): ``max_concurrent_trials`` of a non-adaptive search."""
        return self.settings.max_concurrent if not self.searcher.adaptive else None

    def _relaunch_budget(self) -> int | None:
        """How many retried or paused trials may go out now (None: all of them).

        A throttled array caps only its own tasks, so a resubmitted trial would run beside
        it: resubmissions wait until that array has no queued task that never ran and a slot
        is free. A resubmission still queued holds its slot in the count, but does not hold
        back the next one (PBT's exploits of one round go out together).
        """
        throttle, in_slurm = self._throttle(), self.table.submitted()
        if throttle is None or not in_slurm:
            return None
        if any(t.job_state is JobState.PENDING and t.started_at is None for t in in_slurm):
            return 0
        return max(0, throttle - len(in_slurm))


def _without_job(trial: Trial) -> bool:
    """Without a job (new, retried, exploited), or paused: what a launch may take."""
    return trial.job_id is None or trial.status is _PAUSED


def _by_resources(trials: list[Trial]) -> list[list[Trial]]:
    """The trials grouped by resource request (one launch each), in order."""
    groups: dict[str, list[Trial]] = defaultdict(list)
    for trial in trials:
        groups[repr(sorted(trial.resources.items()))].append(trial)
    return list(groups.values())
