"""Creating trials from the searcher's suggestions and submitting them within the throttles.

A non-adaptive search (random, grid) goes out as one throttled array per batch
(``--array=0-N%K``), and the next batch waits for it to drain; an adaptive one keeps
``max_concurrent_trials`` (default ``DEFAULT_ADAPTIVE_WINDOW``) trials in flight.
Retried and paused trials wait for a free slot, so the throttle holds with them too; a
paused trial goes out once its scheduler lets it (a synchronous barrier holds it).
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from hpctune.config.ray_env import max_pending_trials
from hpctune.controller.resource_change import apply_pending
from hpctune.space import format_experiment_tag
from hpctune.storage.result_log import LogTail
from hpctune.tune.experiment.trial import JobState, Trial, TrialStatus
from hpctune.tune.search.searcher import Searcher

if TYPE_CHECKING:
    from hpctune.controller.controller import Controller

EAGER_BATCH = 10_000
DEFAULT_ADAPTIVE_WINDOW = 32


def first_batch_size(searcher: Searcher, max_concurrent: int | None) -> int:
    """How many trials the first launch holds: a finite random/grid search all at once (up to
    EAGER_BATCH), an endless one a few rounds of slots, a model-based one a window of slots."""
    slots = max_concurrent or DEFAULT_ADAPTIVE_WINDOW
    if searcher.adaptive:
        return slots
    total = getattr(searcher, "total_trials", None)
    return min(total, EAGER_BATCH) if total is not None else 4 * slots


class Launcher:
    """Asks the searcher for trials and submits pending ones for the controller."""

    def __init__(self, controller: Controller):
        self.ctl = controller
        self._eager_batch_size: int | None = None
        self._created_since_save = False
        self._max_pending = max_pending_trials()

    # -- creating -----------------------------------------------------------------------
    def create_trials(self) -> None:
        ctl = self.ctl
        for _ in range(self._room_for_new_trials()):
            trial_id = f"{ctl.settings.trial_id_prefix}_{len(ctl.trials):05d}"
            config = ctl.searcher.suggest(trial_id)
            if config == Searcher.FINISHED:
                ctl.searcher_finished = True
                return
            if config is None:
                return
            self._add_trial(trial_id, config)

    def _room_for_new_trials(self) -> int:
        """How many trials to ask the searcher for now (``TUNE_MAX_PENDING_TRIALS_PG`` caps
        the trials waiting to run)."""
        ctl = self.ctl
        if ctl.searcher_finished:
            return 0
        live = len(ctl.live)
        if not ctl.searcher.adaptive:  # one throttled array per batch; wait for it to drain
            submitted = sum(1 for t in ctl.live.values() if t.job_id is not None)
            room = 0 if submitted else max(0, self._eager_batch() - live)
        else:
            room = max(0, (ctl.settings.max_concurrent or DEFAULT_ADAPTIVE_WINDOW) - live)
        if self._max_pending is not None:
            waiting = sum(1 for t in ctl.live.values() if t.status is TrialStatus.PENDING)
            room = min(room, max(0, self._max_pending - waiting))
        return room

    def _eager_batch(self) -> int:
        """How many trials of a non-adaptive search go into one array: all of a finite
        search (up to EAGER_BATCH), a few rounds of slots of an endless one."""
        if self._eager_batch_size is None:  # a finite search is asked once more: for FINISHED
            finite = getattr(self.ctl.searcher, "total_trials", None) is not None
            slots = self.ctl.settings.max_concurrent or DEFAULT_ADAPTIVE_WINDOW
            self._eager_batch_size = EAGER_BATCH if finite else 4 * slots
        return self._eager_batch_size

    def _add_trial(self, trial_id: str, config: dict) -> None:
        """Record a new trial; its config is written exactly as the searcher made it (params.pkl,
        read by the worker) and as text (params.json). A value that cannot be pickled is a
        ConfigError naming its key, raised here (so by ``fit()``) before the trial exists."""
        ctl = self.ctl
        resources = ctl.settings.resources_for(config)
        ctl.exp.write_params(trial_id, config)
        tag = format_experiment_tag(len(ctl.trials), config, ctl.settings.param_space)
        trial = Trial(trial_id, config, tag, str(ctl.exp.trial_dir(trial_id)), resources=resources)
        ctl.exp.write_trial_meta(trial_id, {"trial_id": trial_id, "experiment_tag": tag,
                                            "resources": trial.resources})
        ctl.trials[trial_id] = ctl.live[trial_id] = trial
        ctl.tails[trial_id] = LogTail(ctl.exp.result_log_path(trial_id))
        ctl.scheduler.on_trial_add(trial.info)
        self._created_since_save = True

    # -- launching ----------------------------------------------------------------------
    def launch_pending(self, only: set[str] | None = None) -> None:
        """Submit waiting trials, one backend launch per resource shape (``only``: just these
        trials, if they wait: PBT's recipients in the step that enacted their exploits)."""
        groups = self._pending_by_resources(only)
        self.ctl.exploits.enacted.clear()
        if not groups:
            return
        ctl = self.ctl
        if self._created_since_save:  # a restored driver must know every trial it may submit
            ctl.save()
        throttle = ctl.settings.max_concurrent if not ctl.searcher.adaptive else None
        room = ctl.backend.submit_room(sum(1 for t in ctl.live.values() if t.job_id))
        for batch in groups.values():
            if room is not None:  # stay within the user's MaxSubmitJobs; the rest waits
                batch, room = batch[:room], room - min(room, len(batch))
            if not batch:
                continue
            job_ids = ctl.backend.launch([t.trial_id for t in batch], batch[0].resources, throttle)
            now = ctl.clock()
            for trial, job_id in zip(batch, job_ids, strict=True):
                trial.launch(job_id, now)
        ctl.save()  # a restored driver must know every submitted job
        self._created_since_save = False

    def _pending_by_resources(self, only: set[str] | None = None) -> dict[str, list[Trial]]:
        """New trials first, then retried and paused ones as far as the throttle allows."""
        ctl = self.ctl
        throttle = ctl.settings.max_concurrent if not ctl.searcher.adaptive else None
        waiting = [t for t in ctl.live.values() if t.job_id is None and t.status is TrialStatus.PENDING
                   and (only is None or t.trial_id in only)]
        fresh = [t for t in waiting if not t.awaiting_restart]
        pausing = [t for t in waiting if t.awaiting_restart and self._pause_requested(t)]
        again = [t for t in waiting if t.awaiting_restart and t not in pausing]
        paused = [t for t in ctl.live.values() if t.status is TrialStatus.PAUSED] if only is None else []
        again += [t for t in paused + pausing if ctl.exploits.resume(t)]  # at the back; may be held
        budget = self._relaunch_budget(throttle)
        groups: dict[str, list[Trial]] = defaultdict(list)
        for trial in fresh + (again if budget is None else again[:budget]):
            if trial.status is TrialStatus.PAUSED:
                trial.resume()
            if trial.awaiting_restart:
                ctl.exp.clear_control(trial.trial_id)
                apply_pending(ctl, trial)  # ResourceChangingScheduler's new request
            groups[repr(sorted(trial.resources.items()))].append(trial)
        return groups

    def _pause_requested(self, trial: Trial) -> bool:
        """A trial whose job ended before it could pause (a restored driver's local jobs, a
        failure while pausing) is resumed as a paused one: its scheduler may still hold it."""
        record = self.ctl.exp.read_control(trial.trial_id)
        return record is not None and record.is_pause

    def _relaunch_budget(self, throttle: int | None) -> int | None:
        """How many retried or paused trials may go out now (None: all of them).

        A throttled array caps only its own tasks, so a resubmitted trial would run beside
        it: resubmissions wait until that array has no queued task that never ran and a slot
        is free. A resubmission still queued holds its slot in the count, but does not hold
        back the next one (PBT's exploits of one round go out together).
        """
        in_slurm = [t for t in self.ctl.live.values() if t.job_id]
        if throttle is None or not in_slurm:
            return None
        if any(t.job_state is JobState.PENDING and t.started_at is None for t in in_slurm):
            return 0
        return max(0, throttle - len(in_slurm))
