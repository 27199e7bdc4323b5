"""Callbacks with Ray Tune's hooks, called by the controller as the experiment runs."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from hpctune.core.checkpoint import Checkpoint
from hpctune.core.metrics import AUTO_METRICS, flatten
from hpctune.storage.checkpoints import checkpoint_dir_name


class Callback:
    """Subclass and override the hooks you need; each gets the trial and Ray's arguments.

    Stateful callbacks override ``get_state``/``set_state``: the state is saved with the
    driver's snapshot and handed back to the callback of a restored experiment.
    """

    def setup(self, **info: Any) -> None:
        pass

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        pass

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        pass

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        pass

    def on_trial_restore(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """The trial runs again from a checkpoint (after a failure, preemption or pause)."""

    def on_trial_save(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """The trial saved a checkpoint (called with ``on_checkpoint``)."""

    def on_checkpoint(self, iteration: int, trials: list, trial: Any, checkpoint: Checkpoint,
                      **info: Any) -> None:
        """A result came with a checkpoint, now persisted in the trial directory."""

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        pass

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        pass

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        pass

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """The trial failed and will be retried (within FailureConfig(max_failures))."""

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        pass

    def get_state(self) -> dict | None:
        """The callback's state to save with the experiment (None: nothing to save)."""
        return None

    def set_state(self, state: dict) -> None:
        """Take back the state ``get_state`` returned, in a restored experiment."""


class CallbackList:
    """Calls a hook on every callback, in order (a callback without the hook is skipped)."""

    def __init__(self, callbacks: list[Callback]):
        self.callbacks = list(callbacks)

    def __bool__(self) -> bool:
        return bool(self.callbacks)

    def call(self, hook: str, **kwargs: Any) -> None:
        for callback in self.callbacks:
            method = getattr(callback, hook, None)
            if method is not None:
                method(**kwargs)

    def result_hooks(self, iteration: int, trials: list, trial: Any, result: dict) -> None:
        """The hooks of one new result: ``on_trial_restore`` first when it is the first result of
        a run resumed from a checkpoint, then ``on_trial_result``, then ``on_trial_save`` and
        ``on_checkpoint`` when the result came with a checkpoint."""
        iteration_of_result = result.get("training_iteration", 0)
        run_key = f"{result.get('hostname')}:{result.get('pid')}:{result.get('slurm_job_id')}"
        restored = (run_key != trial.run_key
                    and result.get("iterations_since_restore", iteration_of_result) < iteration_of_result)
        trial.run_key = run_key
        info = {"iteration": iteration, "trials": trials, "trial": trial}
        if restored:
            self.call("on_trial_restore", **info)
        self.call("on_trial_result", **info, result=result)
        if trial.checkpoint and trial.checkpoint == checkpoint_dir_name(iteration_of_result):
            self.call("on_trial_save", **info)
            self.call("on_checkpoint", **info, checkpoint=Checkpoint(Path(trial.path) / trial.checkpoint))

    def get_state(self) -> list[Any]:
        """Each callback's ``get_state()`` (None for those without state), in order. The loggers
        hpctune adds by default (``added_by_default``) are asked too (they write what they hold
        before a snapshot) but have no place in the list."""
        states = []
        for callback in self.callbacks:
            state = getattr(callback, "get_state", lambda: None)()
            if not getattr(callback, "added_by_default", False):
                states.append(state)
        return states

    def set_state(self, states: list[Any]) -> None:
        """Hand each callback its saved state (the callbacks are the experiment's, in order)."""
        mine = [c for c in self.callbacks if not getattr(c, "added_by_default", False)]
        for callback, state in zip(mine, states or [], strict=False):
            if state is not None and hasattr(callback, "set_state"):
                callback.set_state(state)


class TrialProgressPrinter(Callback):
    """Ray's ``verbose=2`` (a line for each trial that finishes or fails) and ``verbose=3`` (also
    its results, at most one line per trial every ``interval_s`` seconds)."""

    def __init__(self, verbose: int, out: TextIO | None = None, interval_s: float = 5.0):
        self.verbose, self.out, self.interval_s = verbose, out, interval_s
        self._last: dict[str, float] = {}

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        now = time.monotonic()
        if self.verbose >= 3 and now - self._last.get(trial.trial_id, -1e9) >= self.interval_s:
            self._last[trial.trial_id] = now
            self._print(f"Result for {trial}: {brief_result(result)}")

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        self._print(f"Trial {trial} completed after {result.get('training_iteration', 0)} "
                    f"iterations. Last result: {brief_result(result)}")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        lines = [ln for ln in (trial.error or "").splitlines() if ln.strip()]
        self._print(f"Trial {trial} errored: {lines[-1] if lines else 'unknown error'} "
                    f"(full traceback: Result.error, or `hpctune logs`)")

    def _print(self, line: str) -> None:
        print(line, file=self.out or sys.stdout, flush=True)


def brief_result(result: dict) -> str:
    """``key=value`` of the user's metrics (nested ones as ``a/b``), for one log line."""
    shown = {k: v for k, v in flatten(result).items() if k not in AUTO_METRICS and not k.startswith("config/")}
    return ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()) or "{}"


class TrialErrorPrinter(Callback):
    """Ray's ``TUNE_PRINT_ALL_TRIAL_ERRORS=1``: each trial's error, traceback and all, printed
    (to stderr) as it happens."""

    def __init__(self, out: TextIO | None = None):
        self.out = out

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        print(f"Trial {trial} errored:\n{(trial.error or 'unknown error').rstrip()}",
              file=self.out or sys.stderr, flush=True)


#: Ray's switch for printing every trial's error as it happens
PRINT_ALL_TRIAL_ERRORS_ENV = "TUNE_PRINT_ALL_TRIAL_ERRORS"


def progress_callbacks(verbose: int) -> list[Callback]:
    """The callbacks that print trial progress at Ray's verbosity ``verbose`` (0-3), and every
    trial's error with ``TUNE_PRINT_ALL_TRIAL_ERRORS=1`` (unset: the status table's error rows
    and ``Result.error`` hold them, a quieter default than Ray's)."""
    printers: list[Callback] = [TrialProgressPrinter(verbose)] if verbose >= 2 else []
    if os.environ.get(PRINT_ALL_TRIAL_ERRORS_ENV, "0").strip() == "1":
        printers.append(TrialErrorPrinter())
    return printers
