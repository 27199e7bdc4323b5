"""The driver's allocation meter: measures what the experiment used, enforces its budget.

``AllocationMeter.measure`` gathers the records ``accounting/usage.py`` turns into hours: each
trial's events (its job ids, and their spans when accounting is off), the pool's measured
wall time of each run (``PoolQueue.run_walls``) and one ``sacct`` for every Slurm job and pool array of the experiment
(``slurm_commands.sacct_usage_args``; never one per job). The driver measures at most once per
``interval_s`` (the poll interval with a budget, else ``LIVE_INTERVAL_S``) and once at the end,
and writes ``usage.json`` (``accounting/usage_record.py``) for the tables, report and exports.

With a budget (``accounting/budget.py``) the controller asks ``admit`` which waiting trials may
launch and ``stop_reason`` whether to stop the experiment.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from hpctune.accounting.budget import Budget, admissible, committed, stop_reason
from hpctune.accounting.estimate import TrialShape
from hpctune.accounting.usage import (
    SACCT_FIELDS,
    ExperimentUsage,
    SacctRecord,
    event_bounds,
    experiment_usage,
    final_arrays,
    parse_sacct,
    sacct_by_job,
    trial_usage,
    usage_lines,
)
from hpctune.accounting.usage_record import write_usage
from hpctune.core.ids import array_of, is_slurm_job, run_job_id
from hpctune.storage.events import JOB_ID
from hpctune.storage.pool_queue import PoolQueue
from hpctune.storage.result_log import LogTail

#: without a budget, the live figures are refreshed this often at most (seconds)
LIVE_INTERVAL_S = 30.0


def shape_of(resources: dict[str, Any] | None) -> TrialShape:
    """What a trial holds, from its resources (the default request when it has none)."""
    return TrialShape.from_resources(resources or {"cpu": 1})


class TrialEvents:
    """What a trial's result log says about its jobs, read incrementally (the driver's meter
    reads only the lines added since its last measurement): job ids, and each run's span."""

    def __init__(self, path: Any):
        self.tail = LogTail(path)
        self.jobs: dict[str, None] = {}
        self.first: dict[tuple[str, int], float] = {}
        self.last: dict[tuple[str, int], float] = {}

    def read(self) -> TrialEvents:
        events = self.tail.read_new()
        self.jobs.update(dict.fromkeys(str(e[JOB_ID]) for e in events if e.get(JOB_ID)))
        for key, (start, end) in event_bounds(events).items():
            self.first[key] = min(self.first.get(key, start), start)
            self.last[key] = max(self.last.get(key, end), end)
        return self

    @property
    def spans(self) -> dict[tuple[str, int], float]:
        return {key: self.last[key] - self.first[key] for key in self.first}


def measure(
    root: Any,
    trials: Iterable[Any],
    commands: Any = None,
    cache: dict[str, TrialEvents] | None = None,
    final: dict[str, list[SacctRecord]] | None = None,
) -> tuple[ExperimentUsage, bool]:
    """The experiment's usage now, and whether ``sacct`` answered (accounting on). ``trials``:
    objects with ``trial_id``, ``job_id`` and ``resources``; ``commands``: a ``SlurmCommands``
    (None: no Slurm, events and pool records only); ``cache``: each trial's log as read so far
    (kept between calls: only new lines are read); ``final``: the sacct records of arrays that
    ended for good (kept between calls: sacct is asked only about the others)."""
    from hpctune.storage.experiment import ExperimentDir

    exp, queue = ExperimentDir(root), PoolQueue(root)
    cache = {} if cache is None else cache
    pool_arrays = _pool_arrays(queue)
    walls = {run_job_id(seq): wall for seq, wall in queue.run_walls().items()}
    pool_walls = {job: wall.wall_s for job, wall in walls.items()}
    pool_slots = {job: pool_arrays.get(array_of(wall.task), (0.0, 1))[1] for job, wall in walls.items()}
    found = []
    for trial in trials:
        seen = cache.get(trial.trial_id)
        if seen is None:
            seen = cache[trial.trial_id] = TrialEvents(exp.result_log_path(trial.trial_id))
        seen.read()
        jobs = [*seen.jobs, *([str(trial.job_id)] if trial.job_id else [])]
        found.append((trial, jobs, seen.spans))
    slurm_ids = sorted(
        {array_of(j) for _, jobs, _ in found for j in jobs if is_slurm_job(j)} | set(pool_arrays)
    )
    records = _sacct(commands, slurm_ids, final)
    by_job = sacct_by_job(records) if records is not None else None
    per_trial = {
        t.trial_id: trial_usage(shape_of(t.resources), jobs, spans, by_job, pool_walls, pool_slots)
        for t, jobs, spans in found
    }
    tasks = (
        None
        if records is None
        else [
            r.hours_for(pool_arrays[array_of(r.job_id)][0])
            for r in records
            if array_of(r.job_id) in pool_arrays
        ]
    )
    return experiment_usage(per_trial, tasks), records is not None


def _sacct(
    commands: Any, arrays: list[str], final: dict[str, list[SacctRecord]] | None
) -> list[SacctRecord] | None:
    """The records of ``arrays``: one sacct for those not known to have ended (None: no
    Slurm, or sacct failed: accounting off); arrays that ended for good go into ``final``."""
    from hpctune.backends.slurm_commands import sacct_usage_args

    final = {} if final is None else final
    if commands is None or not arrays:
        return None
    ask = [array for array in arrays if array not in final]
    fresh: list[SacctRecord] = []
    if ask:
        proc = commands.run(sacct_usage_args(ask, SACCT_FIELDS), check=False)
        if proc.returncode != 0:
            return None
        fresh = parse_sacct(proc.stdout)
        final.update(final_arrays(fresh, array_of))
    return fresh + [r for array in arrays if array not in ask for r in final[array]]


def _pool_arrays(queue: PoolQueue) -> dict[str, tuple[float, int]]:
    """{pool array job id: (GPUs each of its tasks holds, its slots)}: the shape's GPUs x its
    slots (what the idle figure needs where sacct records no GPUs), and how many runs share
    a task's node."""
    from hpctune.core.ids import validate_job_id
    from hpctune.errors import ConfigError, HpctuneError
    from hpctune.pool.slots import task_resources
    from hpctune.storage.pool_manifest import read_manifest

    found = {}
    for uid in queue.array_uids():
        manifest, _, job_id = queue.array_paths(uid)
        try:
            array = validate_job_id(job_id.read_text().strip())
        except (OSError, ConfigError):
            continue
        try:
            line = read_manifest(manifest, 0)
            held = task_resources(queue.read_shape(line.shape), line.slots)
            found[array] = (shape_of(held).gpus, line.slots)
        except (OSError, ValueError, HpctuneError):
            found[array] = (0.0, 1)
    return found


def allocation_lines(meter: AllocationMeter | None) -> list[str]:
    """The live table's footer lines: the last measurement and the budget (none: no meter)."""
    if meter is None:
        return []
    budget = None if meter.budget is None else {**meter.budget.to_json(), "stopped": meter.stopped}
    return usage_lines(meter.latest, budget)


class AllocationMeter:
    """Measures (rate-limited) and, with a budget, admits trials and says when to stop."""

    def __init__(
        self,
        budget: Budget | None = None,
        worst_trial_hours: float | None = None,
        interval_s: float = LIVE_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.budget, self.worst_trial_hours = budget, worst_trial_hours
        self.interval_s, self.clock = interval_s, clock
        self.root: Any = None
        self.commands: Any = None
        self.latest: ExperimentUsage | None = None
        self.accounting: bool | None = None  # sacct answered at the last measurement
        self.stopped: str | None = None
        self._last = -float("inf")
        #: trials that ran at the last measurement or were admitted since: one that no longer
        #: runs is counted at its worst case until measured again (at most ``interval_s``
        #: later), never at a stale figure
        self._measured_running: dict[str, Any] = {}
        self._events: dict[str, TrialEvents] = {}
        self._final: dict[str, list[SacctRecord]] = {}

    def bind(self, root: Any, backend: Any) -> None:
        """The experiment and the backend's Slurm commands (counted with the driver's own)."""
        self.root, self.commands = root, getattr(backend, "commands", None)

    def update(self, trials: Iterable[Any], force: bool = False) -> ExperimentUsage | None:
        """Measure and write ``usage.json`` if ``interval_s`` passed since the last time (or ``force``)."""
        if self.root is None or (not force and self.clock() - self._last < self.interval_s):
            return self.latest
        self._last = self.clock()
        trials = list(trials)
        self.latest, self.accounting = measure(
            self.root, trials, self.commands, self._events, self._final
        )
        self._measured_running = {t.trial_id: t for t in trials if t.job_id and not t.is_finished}
        self._write()
        return self.latest

    def _write(self) -> None:
        budget = None if self.budget is None else {**self.budget.to_json(), "stopped": self.stopped}
        if self.latest is not None:
            write_usage(self.root, self.latest, budget)

    # -- the budget -------------------------------------------------------------------------------
    def _worst(self, trial: Any) -> float:
        """A trial's worst case in the budget's unit (its resources for its whole time limit)."""
        assert self.budget is not None
        hours = self.worst_trial_hours if self.worst_trial_hours is not None else float("inf")
        shape = shape_of(trial.resources)
        return hours * (shape.gpus if self.budget.unit == "gpu" else shape.cpus)

    def _used(self) -> float:
        assert self.budget is not None
        return 0.0 if self.latest is None else self.latest.used.of(self.budget.unit)

    def _running_left(self, running: list[Any]) -> float:
        assert self.budget is not None
        usage = self.latest.trials if self.latest is not None else {}
        return sum(
            committed(
                self._worst(t),
                [usage[t.trial_id].used.of(self.budget.unit) if t.trial_id in usage else 0.0],
            )
            for t in running
        )

    def admit(self, waiting: list[Any], all_trials: list[Any], running: list[Any]) -> list[Any]:
        """The waiting trials (in order) that may launch within the budget (all without one).
        Those admitted count at their worst case once they stopped running, until a
        measurement includes them (a trial may start and end between two measurements)."""
        if self.budget is None or not waiting or self.stopped:
            return [] if self.stopped else waiting
        self.update(all_trials)
        chosen = waiting[: self._admissible(waiting, running)]
        self._measured_running.update({t.trial_id: t for t in chosen})
        return chosen

    def _admissible(self, waiting: list[Any], running: list[Any]) -> int:
        assert self.budget is not None
        worst = max(self._worst(t) for t in waiting)
        return admissible(
            self.budget,
            self._used(),
            self._running_left(running + self._ended_since(running)),
            worst,
            len(waiting),
        )

    def _ended_since(self, running: list[Any]) -> list[Any]:
        """Trials that ran at the last measurement, or were admitted since, and no longer run:
        their figure is not measured yet."""
        now = {t.trial_id for t in running}
        return [t for tid, t in self._measured_running.items() if tid not in now]

    def stop_reason(
        self, all_trials: list[Any], running: list[Any], waiting: list[Any]
    ) -> str | None:
        """Why the experiment stops for its budget now (None: it goes on); said once."""
        if self.budget is None or self.stopped:
            return None
        self.update(all_trials)
        if self._ended_since(running):
            return None  # decide on figures that include the trials that just ended
        worst = max((self._worst(t) for t in waiting), default=0.0)
        admitted = self._admissible(waiting, running) if waiting else 0
        reason = stop_reason(self.budget, self._used(), len(running), len(waiting), admitted, worst)
        if reason is not None:
            self.stopped = reason
            self._write()
            print(
                f"hpctune: the experiment stops: {reason}. Trials that never started stay PENDING; "
                f"`hpctune resume EXP --{self.budget.unit}-hours-budget N` continues with a larger "
                "budget.",
                file=sys.stderr,
            )
        return reason
