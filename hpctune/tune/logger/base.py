"""Ray Tune's logger interface (``LoggerCallback``) and the batching base of hpctune's loggers.

Loggers are callbacks that run in the driver. ``BatchedLoggerCallback`` keeps each trial's new
results in memory (``log_trial_result`` only appends) and writes them in one batch per trial
once per driver step (``on_step_end``), before every snapshot (``get_state``) and when the
trial or the experiment ends, so logging costs the driver one write per trial per poll,
whatever the rate at which trials report.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hpctune.storage.user_files import OpenAppends
from hpctune.tune.callback import Callback


class LoggerCallback(Callback):
    """Ray's ``tune.logger.LoggerCallback``: override the ``log_trial_*`` hooks you need.

    The callback hooks call them: ``on_trial_start`` -> ``log_trial_start``,
    ``on_trial_restore``/``on_trial_save`` -> ``log_trial_restore``/``log_trial_save``,
    ``on_trial_result`` -> ``log_trial_result``, ``on_trial_complete``/``on_trial_error`` ->
    ``log_trial_end(trial, failed=...)``.
    """

    def log_trial_start(self, trial: Any) -> None:
        """The trial started (its first run)."""

    def log_trial_restore(self, trial: Any) -> None:
        """The trial runs again from a checkpoint."""

    def log_trial_save(self, trial: Any) -> None:
        """The trial saved a checkpoint."""

    def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
        """A new result of the trial (as reported, nested, with ``config``)."""

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        """The trial ended: finished or stopped, or ``failed``."""

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.log_trial_start(trial)

    def on_trial_restore(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.log_trial_restore(trial)

    def on_trial_save(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.log_trial_save(trial)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        self.log_trial_result(iteration, trial, result)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.log_trial_end(trial, failed=False)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.log_trial_end(trial, failed=True)


class BatchedLoggerCallback(LoggerCallback):
    """A logger that writes each trial's results in batches: subclasses implement ``write``.

    ``logged_until(trial)`` (optional) says up to which ``training_iteration`` a file of an
    earlier driver already holds the trial's results: a restored driver reads again the
    results it had handed on after its last snapshot, and those are not written twice.
    """

    def __init__(self) -> None:
        self._pending: dict[str, list[dict]] = {}
        self._trials: dict[str, Any] = {}
        self._checked: set[str] = set()
        self._failed_once: set[str] = set()

    # -- what subclasses implement ------------------------------------------------------------
    def write(self, trial: Any, results: list[dict]) -> None:
        """Write ``results`` (in order, at least one) of ``trial``."""
        raise NotImplementedError

    def logged_until(self, trial: Any) -> int | None:
        """The last ``training_iteration`` already in this logger's file of ``trial`` (None: none)."""
        return None

    def close_trial(self, trial: Any, failed: bool) -> None:
        """The trial ended and its results are written: release what is held for it."""

    def is_new(self, trial: Any) -> bool:
        """True for a trial this driver saw start for the first time: its files hold nothing
        yet, so nothing is read back (a read per trial start is metadata load at scale)."""
        return trial.trial_id in self.__dict__.get("_new", ())

    # -- the hooks of a trial's first start -----------------------------------------------------
    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.__dict__.setdefault("_new", set()).add(trial.trial_id)
        self.__dict__.setdefault("_checked", set()).add(trial.trial_id)
        super().on_trial_start(iteration, trials, trial, **info)

    # -- for subclasses -----------------------------------------------------------------------
    def append(self, trial: Any, path: Path, data: bytes) -> None:
        """Append ``data`` to the trial's file ``path``, kept open until the trial ends
        (``storage.user_files.OpenAppends``)."""
        appends, paths = self._open_files()
        paths.setdefault(trial.trial_id, set()).add(path)
        appends.append(path, data)

    def forget(self, path: Path) -> None:
        """Close ``path`` before it is replaced (a kept-open descriptor would write to the old file)."""
        self._open_files()[0].close(path)

    def _open_files(self) -> tuple[OpenAppends, dict[str, set[Path]]]:
        """The kept-open files and which trial each belongs to (made at first use: a subclass
        need not call ``__init__``)."""
        if "_appends" not in self.__dict__:
            self._appends, self._paths = OpenAppends(), {}
        return self._appends, self._paths

    # -- the hooks ----------------------------------------------------------------------------
    def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
        self._trials[trial.trial_id] = trial
        self._pending.setdefault(trial.trial_id, []).append(result)

    def log_trial_end(self, trial: Any, failed: bool = False) -> None:
        self._trials[trial.trial_id] = trial
        self._flush_trial(trial.trial_id)
        self._guarded(trial, "close", lambda: self.close_trial(trial, failed))
        self._trials.pop(trial.trial_id, None)
        appends, paths = self._open_files()
        for path in paths.pop(trial.trial_id, ()):
            appends.close(path)
        self.__dict__.get("_new", set()).discard(trial.trial_id)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        self.flush()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.flush()
        appends, paths = self._open_files()
        appends.close_all()
        paths.clear()

    def get_state(self) -> dict | None:
        """Called at every snapshot: what was read before it is written before it (no state)."""
        self.flush()
        return None

    def flush(self) -> None:
        """Write every trial's buffered results."""
        for trial_id in list(self._pending):
            self._flush_trial(trial_id)

    def _flush_trial(self, trial_id: str) -> None:
        results = self._pending.pop(trial_id, None)
        trial = self._trials.get(trial_id)
        if not results or trial is None:
            return
        if trial_id not in self._checked:  # the first batch of a trial that ran before this
            # driver (a restore): skip what its files already hold
            self._checked.add(trial_id)
            done = self._guarded(trial, "read", lambda: self.logged_until(trial))
            if done is not None:
                results = [r for r in results if _iteration(r) > done]
        if results:
            self._guarded(trial, "write", lambda: self.write(trial, results))

    def _guarded(self, trial: Any, what: str, action: Any) -> Any:
        """Run ``action``; a logger's failure (a full disk, a server down) never stops the
        experiment: it is said once per logger and trial, and the result log keeps everything."""
        try:
            return action()
        except Exception as exc:  # noqa: BLE001 - any library error
            key = f"{trial.trial_id}:{what}"
            if key not in self._failed_once:
                self._failed_once.add(key)
                print(f"hpctune: {type(self).__name__} could not {what} for trial {trial} "
                      f"({type(exc).__name__}: {exc}); the trial's result log "
                      f"(result.jsonl) still holds every result.", file=sys.stderr)
            return None


def _iteration(result: dict) -> float:
    value = result.get("training_iteration")
    return value if isinstance(value, (int, float)) else float("inf")
