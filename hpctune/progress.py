"""Progress output of the driver: a short status line at a bounded rate."""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import Any, TextIO

from hpctune.config import RunConfig, TuneConfig
from hpctune.storage.experiment import ExperimentDir


class StatusLineReporter:
    """Prints ``== Status ==`` lines: trials by state, best metric, experiment directory."""

    def __init__(self, exp: ExperimentDir, metric: str | None, mode: str | None,
                 interval_s: float = 10.0, out: TextIO = sys.stdout):
        self.exp, self.metric, self.mode = exp, metric, mode
        self.interval_s, self.out = interval_s, out
        self._last = 0.0

    def maybe_report(self, controller: Any) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval_s:
            self._last = now
            self.out.write(self.status_line(controller.trial_list) + "\n")
            self.out.flush()

    def status_line(self, trials: list) -> str:
        counts = Counter(t.status.value for t in trials)
        states = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        line = f"== Status == {len(trials)} trials ({states or 'none yet'}) | {self.exp.root}"
        best = self._best(trials)
        return line + (f" | best {self.metric}={best:.6g}" if best is not None else "")

    def _best(self, trials: list) -> float | None:
        if not (self.metric and self.mode):
            return None
        values = [t.last_result[self.metric] for t in trials
                  if isinstance(t.last_result.get(self.metric), (int, float))]
        if not values:
            return None
        return min(values) if self.mode == "min" else max(values)


def make_reporter(run_config: RunConfig, tune_config: TuneConfig, exp: ExperimentDir) -> Any:
    """The reporter for this run: the user's, a status line, or none (verbose=0)."""
    if run_config.progress_reporter is not None:
        return run_config.progress_reporter
    if run_config.verbose == 0:
        return None
    return StatusLineReporter(exp, tune_config.metric, tune_config.mode)
