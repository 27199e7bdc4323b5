"""Callbacks with Ray Tune's hooks, called by the controller as the experiment runs."""

from __future__ import annotations

from typing import Any


class Callback:
    """Subclass and override the hooks you need; each gets the trial and Ray's arguments."""

    def setup(self, **info: Any) -> None:
        pass

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        pass

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        pass

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        pass

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        pass

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        pass

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        pass

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        pass


class CallbackList:
    """Calls a hook on every callback, in order."""

    def __init__(self, callbacks: list[Callback]):
        self.callbacks = list(callbacks)

    def __bool__(self) -> bool:
        return bool(self.callbacks)

    def call(self, hook: str, **kwargs: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(**kwargs)
