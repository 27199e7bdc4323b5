"""Small trainables shared by the end-to-end tests (pickled by value into each job)."""

import os
import time

from hpctune import tune


def quadratic(config):
    """Ray's quickstart objective, reporting a few iterations."""
    for step in range(config.get("steps", 3)):
        tune.report({"score": config["a"] ** 2 + config["b"] + 1.0 / (step + 1)})


def gpu_probe(config):
    """Records where it ran and which GPU it saw, with its time interval."""
    start = time.time()
    time.sleep(config.get("sleep", 1.0))
    tune.report({
        "node": os.environ.get("SLURMD_NODENAME", "local"),
        "gpu": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        "start": start,
        "end": time.time(),
        "x": config["x"],
    })


def fails_for_negative(config):
    tune.report({"value": config["x"]})
    if config["x"] < 0:
        raise ValueError(f"negative x={config['x']} is not allowed")
    return {"value": config["x"] * 2}


class Counter(tune.Trainable):
    """A class trainable that counts to its config's limit."""

    def setup(self, config):
        self.count = 0
        self.limit = config["limit"]

    def step(self):
        self.count += 1
        return {"count": self.count, "done": self.count >= self.limit}


def checkpointed_counter(config):
    """Counts to config["iterations"], checkpointing after every step; resumes from it."""
    import tempfile

    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as path, open(os.path.join(path, "n")) as f:
            start = int(f.read())
    for i in range(start, config["iterations"]):
        time.sleep(config.get("sleep", 0.5))
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, "n"), "w") as f:
                f.write(str(i + 1))
            tune.report({"n": i + 1, "restarts": tune.get_context().restart_count,
                         "node": os.environ.get("SLURMD_NODENAME", "local")},
                        checkpoint=tune.Checkpoint.from_directory(tmp))


def fails_first_time(config):
    """Raises on its first run (a marker in the trial directory remembers), then succeeds."""
    if not os.path.exists("ran_once"):
        open("ran_once", "w").close()
        raise RuntimeError("transient failure on the first run")
    tune.report({"ok": 1})


def learning_curve(config):
    """loss_t = a * exp(-b t) + c, one report per iteration of config["sleep"] seconds."""
    import math

    for t in range(1, config.get("max_t", 100) + 1):
        time.sleep(config["sleep"])
        tune.report({"loss": config["a"] * math.exp(-config["b"] * t) + config["c"]})


def slow_quadratic(config):
    """(x - 0.3)^2 + (y - 0.6)^2, reported over four slow iterations."""
    value = (config["x"] - 0.3) ** 2 + (config["y"] - 0.6) ** 2
    for step in range(4):
        time.sleep(config.get("sleep", 0.4))
        tune.report({"loss": value + 0.1 / (step + 1)})


def slow_fails_first_time(config):
    """Works for a second, then fails on its first run only."""
    time.sleep(1.0)
    if not os.path.exists("ran_once"):
        open("ran_once", "w").close()
        raise RuntimeError("transient failure on the first run")
    tune.report({"ok": 1})
