"""Synchronous HyperBand (Li et al. 2018), as Ray Tune's HyperBandScheduler.

Trials fill brackets (``s_max + 1`` per band, sizes ``ceil(s_max_1 / (s + 1) * eta**s)``,
first milestones ``max_t * eta**-s``) in the order they are added. A trial that reaches its
bracket's milestone PAUSEs: it checkpoints and exits, releasing its Slurm allocation.
When every live trial of the bracket has reached it, the bracket is halved: the top
``1/eta`` go on (resumed: resubmitted from their checkpoints, ``resume_decision``
CONTINUE), the others STOP. A trial that ends or fails leaves its bracket, which may
complete the halving.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from hpctune.core.checks import check_number, require_number
from hpctune.core.decision_points import EVERY, DecisionPoints, at
from hpctune.core.objective import check_state_version
from hpctune.errors import ConfigError
from hpctune.tune.experiment.trial import TrialInfo
from hpctune.tune.schedulers.trial_scheduler import Decision, SchedulerDecision, TrialScheduler

STATE_VERSION = 1


@dataclass
class Bracket:
    """One bracket: its live trials' latest (time, signed score), and the halving schedule."""

    n: int
    r: int
    max_t: float
    eta: float
    halves: int
    stop_last_trials: bool = True
    cumul_r: float = 0
    live: dict[str, list[float] | None] = field(default_factory=dict)
    all_trials: list[str] = field(default_factory=list)
    total_work: int = 0
    completed_progress: float = 0.0

    def __post_init__(self) -> None:
        if not self.cumul_r:
            self.cumul_r = self.r
        if not self.total_work:
            self.total_work = self._total_work()

    def _total_work(self) -> int:
        work, n, r = 0, self.n, self.r
        for _ in range(self.halves + 1):
            work += int(n) * int(r)
            n = int(math.ceil(n / self.eta))
            r = self._next_r(r, self.cumul_r)
        return work

    def _next_r(self, r: float, cumul_r: float) -> int:
        """The resource of the bracket's next round (Ray's milestone update)."""
        return int(min(r * self.eta, self.max_t - cumul_r))

    def milestones(self) -> list[float]:
        """Where a trial of this bracket may pause or stop from now on: its current milestone and
        those of the halvings still to come."""
        found, r, cumul_r = [self.cumul_r], self.r, self.cumul_r
        for _ in range(self.halves):
            r = cumul_r = self._next_r(r, cumul_r)
            found.append(cumul_r)
        return found

    def filled(self) -> bool:
        return len(self.live) == self.n

    def add(self, trial_id: str) -> None:
        self.live[trial_id] = None
        self.all_trials.append(trial_id)

    def time_of(self, trial_id: str) -> float:
        entry = self.live[trial_id]
        return 0 if entry is None else entry[0]

    def cur_iter_done(self) -> bool:
        return all(self.time_of(t) >= self.cumul_r for t in self.live)

    def finished(self) -> bool:
        return self.stop_last_trials and self.halves == 0 and self.cur_iter_done()

    def continue_trial(self, trial_id: str) -> bool:
        if not self.stop_last_trials and self.halves == 0:
            return True
        return self.time_of(trial_id) < self.cumul_r

    def update(self, trial_id: str, time: float, score: float) -> None:
        self.completed_progress += time - self.time_of(trial_id)
        self.live[trial_id] = [time, score]

    def successive_halving(self) -> tuple[list[str], list[str]]:
        """(good, bad): the top ``ceil(n / eta)`` by score go on; Ray's milestone update."""
        if self.halves == 0 and not self.stop_last_trials:
            return list(self.live), []
        self.halves -= 1
        self.n = int(math.ceil(self.n / self.eta))
        self.r = self._next_r(self.r, self.cumul_r)
        self.cumul_r = self.r
        ranked = sorted(self.live, key=lambda t: self.live[t][1])  # stable: ties keep add order
        cut = len(ranked) - self.n
        return ranked[max(cut, 0):], ranked[:max(cut, 0)]

    def completion(self) -> float:
        if self.finished():
            return 1.0
        return min(self.completed_progress / self.total_work, 1.0) if self.total_work else 0.0


class HyperBandScheduler(TrialScheduler):
    """Synchronous HyperBand: halve brackets once all their trials reach a milestone.

    Args (as Ray's):
        time_attr: monotonically increasing result field measuring progress.
        metric, mode: objective and direction; may come from TuneConfig.
        max_t: the most ``time_attr`` a trial gets (trials are stopped there).
        reduction_factor: ``eta``: a halving keeps the top ``1/eta``.
        stop_last_trials: stop the last trials of a bracket at ``max_t``.
    """

    metric_required = True

    def __init__(self, time_attr: str = "training_iteration", metric: str | None = None,
                 mode: str | None = None, max_t: int = 81, reduction_factor: float = 3,
                 stop_last_trials: bool = True):
        super().__init__(metric, mode)
        check_number("max_t", max_t, 0)
        check_number("reduction_factor", reduction_factor, 1)
        self._time_attr = time_attr
        self._eta = reduction_factor
        self._max_t = max_t
        self._stop_last_trials = stop_last_trials
        self._s_max_1 = int(round(math.log(max_t) / math.log(reduction_factor))) + 1
        self._bands: list[list[Bracket | None]] = [[]]
        self._trial_bracket: dict[str, tuple[int, int]] = {}
        self._current: tuple[int, int] | None = None
        self._waiting: set[str] = set()  # paused at their bracket's milestone
        self._pending: dict[str, Decision] = {}  # decided for paused trials, handed out on resume
        self._num_stopped = 0

    def _n0(self, s: int) -> int:
        return int(math.ceil(self._s_max_1 / (s + 1) * self._eta ** s))

    def _r0(self, s: int) -> int:
        return int(self._max_t * self._eta ** (-s))

    # -- brackets ----------------------------------------------------------------------------------
    def on_trial_add(self, trial: TrialInfo) -> None:
        """Into the current bracket; a new bracket (a new band) when it is full (Ray's order)."""
        self._check_ready()
        bracket = self._bracket_at(self._current)
        if bracket is None or bracket.filled():
            while True:
                if len(self._bands[-1]) == self._s_max_1:
                    self._bands.append([])
                band = self._bands[-1]
                s = self._bracket_s(len(band))
                if self._r0(s) == 0:
                    band.append(None)  # too small a bracket: Ray skips it
                    continue
                band.append(Bracket(self._n0(s), self._r0(s), self._max_t, self._eta, s,
                                    self._stop_last_trials))
                self._current = (len(self._bands) - 1, len(band) - 1)
                break
        self._bracket_at(self._current).add(trial.trial_id)
        self._trial_bracket[trial.trial_id] = self._current

    def _bracket_s(self, position: int) -> int:
        """The halvings of the bracket at ``position`` in a band: the least aggressive first."""
        return position

    def _bracket_at(self, where: tuple[int, int] | None) -> Bracket | None:
        return None if where is None else self._bands[where[0]][where[1]]

    def _bracket_of(self, trial_id: str) -> Bracket | None:
        return self._bracket_at(self._trial_bracket.get(trial_id))

    # -- decisions ---------------------------------------------------------------------------------
    def on_trial_result(self, trial: TrialInfo, result: dict) -> SchedulerDecision:
        self._check_ready()
        if trial.trial_id not in self._trial_bracket:
            self.on_trial_add(trial)
        bracket = self._bracket_of(trial.trial_id)
        if trial.trial_id in self._waiting or trial.trial_id in self._pending:
            return Decision.CONTINUE  # reported before its pause took effect: already judged
        if bracket is None or trial.trial_id not in bracket.live:
            return Decision.CONTINUE
        owner = type(self).__name__
        time = require_number(result, self._time_attr, trial.trial_id, owner)
        value = require_number(result, self._metric, trial.trial_id, owner)
        bracket.update(trial.trial_id, time, -math.inf if math.isnan(value) else self._sign * value)
        if bracket.continue_trial(trial.trial_id):
            return Decision.CONTINUE
        return self._process_bracket(bracket, trial.trial_id)

    def _process_bracket(self, bracket: Bracket, current: str | None) -> Decision:
        """When every live trial reached the milestone: halve (or end) the bracket. The
        decision for ``current``; paused trials get theirs when resumed."""
        action = Decision.PAUSE
        if bracket.cur_iter_done():
            if bracket.finished():
                for tid in bracket.live:
                    self._decide_for(tid, current, Decision.STOP)
                return Decision.STOP
            good, bad = bracket.successive_halving()
            self._num_stopped += len(bad)
            for tid in bad:
                bracket.live.pop(tid, None)
                if tid == current:
                    action = Decision.STOP
                else:
                    self._decide_for(tid, current, Decision.STOP)
            for tid in good:
                if bracket.continue_trial(tid):
                    if tid == current:
                        action = Decision.CONTINUE
                    else:
                        self._decide_for(tid, current, Decision.CONTINUE)
        if current is not None:
            if action is Decision.PAUSE:
                self._waiting.add(current)
            else:
                self._waiting.discard(current)
        return action

    def _decide_for(self, trial_id: str, current: str | None, decision: Decision) -> None:
        if trial_id != current and trial_id in self._waiting:
            self._waiting.discard(trial_id)
            self._pending[trial_id] = decision

    def decision_points(self, trial: TrialInfo) -> DecisionPoints:
        """The milestones left to the trial's bracket and ``max_t``, when ``time_attr`` is
        ``training_iteration``; else (or before it has a bracket) every result."""
        bracket = self._bracket_of(trial.trial_id)
        if self._time_attr != "training_iteration" or bracket is None:
            return EVERY
        return at([*bracket.milestones(), self._max_t])

    def resume_decision(self, trial: TrialInfo) -> SchedulerDecision | None:
        if trial.trial_id in self._pending:
            return self._pending.pop(trial.trial_id)
        return None if trial.trial_id in self._waiting else Decision.CONTINUE

    def on_trial_remove(self, trial: TrialInfo) -> None:
        """The trial ended: out of its bracket, which it may complete (Ray's cleanup)."""
        self._waiting.discard(trial.trial_id)
        self._pending.pop(trial.trial_id, None)
        bracket = self._bracket_of(trial.trial_id)
        if bracket is None or trial.trial_id not in bracket.live:
            return
        bracket.live.pop(trial.trial_id)
        if not bracket.finished():
            self._process_bracket(bracket, None)

    def on_trial_complete(self, trial: TrialInfo, result: dict | None) -> None:
        self.on_trial_remove(trial)

    def on_trial_error(self, trial: TrialInfo) -> None:
        self.on_trial_remove(trial)

    # -- state ----------------------------------------------------------------------------------------
    def get_state(self) -> dict:
        return {
            "version": STATE_VERSION, "metric": self._metric, "mode": self._mode,
            "bands": [[None if b is None else asdict(b) for b in band] for band in self._bands],
            "trial_bracket": {t: list(w) for t, w in self._trial_bracket.items()},
            "current": None if self._current is None else list(self._current),
            "waiting": sorted(self._waiting), "pending": {t: d.value for t, d in self._pending.items()},
            "num_stopped": self._num_stopped,
        }

    def set_state(self, state: dict) -> None:
        check_state_version(state, STATE_VERSION, self)
        saved_max_t = [b["max_t"] for band in state["bands"] for b in band if b is not None]
        if saved_max_t and saved_max_t[0] != self._max_t:
            raise ConfigError(f"The saved HyperBand state has max_t={saved_max_t[0]!r}, but this "
                              f"scheduler has {self._max_t!r}: create HyperBandScheduler with the "
                              "same arguments as before.")
        self._metric, self._mode = state["metric"], state["mode"]
        self._bands = [[None if b is None else Bracket(**b) for b in band] for band in state["bands"]]
        self._trial_bracket = {t: (w[0], w[1]) for t, w in state["trial_bracket"].items()}
        self._current = None if state["current"] is None else tuple(state["current"])
        self._waiting = set(state["waiting"])
        self._pending = {t: Decision(d) for t, d in state["pending"].items()}
        self._num_stopped = state["num_stopped"]

    def debug_string(self) -> str:
        brackets = [b for band in self._bands for b in band if b is not None]
        lines = [f"Using HyperBand: num_stopped={self._num_stopped} total_brackets={len(brackets)}"]
        for i, band in enumerate(self._bands):
            lines.append(f"Round #{i}:")
            lines += [f"  Bracket(Max Size (n)={b.n}, Milestone (r)={b.cumul_r}, "
                      f"completed={b.completion():.1%})" for b in band if b is not None]
        return "\n".join(lines)
