# Ray Tune reference (ray-tune-docs.rst), section "How to Build Custom Tune Loggers?":
# code block 31 of 45, at line 4036. Copied verbatim: tests/e2e/test_ray_reference_examples.py
# adds what it uses from its page, applies the rewrites it lists and switches imports to hpctune.
import json
import os
from typing import Dict, List

from ray.tune.logger import LoggerCallback


class CustomLoggerCallback(LoggerCallback):
    """Custom logger interface"""

    def __init__(self, filename: str = "log.txt"):
        self._trial_files = {}
        self._filename = filename

    def log_trial_start(self, trial: "Trial"):
        trial_logfile = os.path.join(trial.logdir, self._filename)
        self._trial_files[trial] = open(trial_logfile, "at")

    def log_trial_result(self, iteration: int, trial: "Trial", result: Dict):
        if trial in self._trial_files:
            self._trial_files[trial].write(json.dumps(result))

    def on_trial_complete(self, iteration: int, trials: List["Trial"],
                          trial: "Trial", **info):
        if trial in self._trial_files:
            self._trial_files[trial].close()
            del self._trial_files[trial]
