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


# -- Ray fidelity (tests/e2e/test_ray_fidelity.py) ---------------------------------------------------
class LocalActivation:
    """A plain class passed in a config, as a torch.nn module class would be."""

    def __call__(self, x):
        return max(0.0, x)


def double(x):
    return 2 * x


def describe(value):
    """Type and value of a config value, comparable between the driver and the trial."""
    import inspect

    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    if isinstance(value, dict):
        return {"type": kind, "items": [[describe(k), describe(v)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return {"type": kind, "items": [describe(v) for v in value]}
    if inspect.isclass(value):
        return {"type": "class", "name": f"{value.__module__}.{value.__qualname__}"}
    if inspect.isfunction(value):
        return {"type": "function", "name": value.__qualname__, "call": value(21)}
    if hasattr(value, "dtype"):
        return {"type": kind, "dtype": str(value.dtype), "value": value.tolist()}
    return {"type": kind, "value": repr(value)}


def config_probe(config):
    """Reports what it received: each value's type and value, and whether the class still works."""
    act = config["nested"]["act"]
    tune.report({"seen": describe(config), "act_works": type(act()) is act})


def yielding(config):
    """A generator function trainable (Ray's ``yield`` instead of report)."""
    for step in range(config.get("steps", 3)):
        yield {"score": config["x"] * (step + 1)}


def stops_in_long_iteration(config):
    """Reports once, then works for a long time; its finally block marks that it ran."""
    try:
        tune.report({"loss": config["x"]})
        time.sleep(config.get("iteration_s", 60))
        tune.report({"loss": config["x"]})
    finally:
        trial_dir = tune.get_context().get_trial_dir()
        open(os.path.join(trial_dir, "cleanup_started"), "w").close()
        time.sleep(config.get("cleanup_s", 0.0))
        with open(os.path.join(trial_dir, "cleaned_up"), "w") as f:
            f.write("yes")


class StopsInLongStep(tune.Trainable):
    """A class trainable whose second step takes long; cleanup() marks that it ran."""

    def setup(self, config):
        self.x = config["x"]

    def step(self):
        if self.iteration >= 1:
            time.sleep(60)
        return {"loss": self.x}

    def cleanup(self):
        with open(os.path.join(self.logdir, "cleaned_up"), "w") as f:
            f.write("yes")


class Introspective(tune.Trainable):
    """Reports what the Trainable attributes say, and keeps what log_result received."""

    @classmethod
    def default_resource_request(cls, config):
        return {"cpu": config["cpus"]}

    def setup(self, config):
        self.logged = []

    def step(self):
        return {
            "iteration_attr": self.iteration, "training_iteration_attr": self.training_iteration,
            "trial_id_attr": self.trial_id, "trial_name_attr": self.trial_name,
            "logdir_attr": self.logdir, "cpus": self.trial_resources.get("cpu"),
            "config_attr": dict(self.config), "logged": list(self.logged),
            "done": self.iteration + 1 >= 3,
        }

    def log_result(self, result):
        self.logged.append(result["training_iteration"])


def context_probe(config):
    """Reports every get_context() getter, get_trial_resources() and counted timesteps."""
    from hpctune.worker.session import get_trial_resources

    ctx = tune.get_context()
    for _ in range(2):
        tune.report({
            "timesteps_this_iter": 10, "episodes_this_iter": 1,
            "ctx": {"trial_id": ctx.get_trial_id(), "trial_name": ctx.get_trial_name(),
                    "trial_dir": ctx.get_trial_dir(), "experiment_name": ctx.get_experiment_name(),
                    "resources": ctx.get_trial_resources(), "local_rank": ctx.get_local_rank(),
                    "world_rank": ctx.get_world_rank(), "world_size": ctx.get_world_size(),
                    "node_rank": ctx.get_node_rank(), "local_world_size": ctx.get_local_world_size(),
                    "trial_fs_path": ctx.get_storage().trial_fs_path},
            "resources": get_trial_resources(),
        })


# -- Population Based Training (tests/e2e/test_pbt.py, bench/pbt.py) -----------------------------------
#: score = v - LR_PENALTY * lr, v += lr * (1 - v) per step: a high lr first and a low one last wins
LR_PENALTY = 0.5


def best_constant_lr_score(steps: int) -> float:
    """The best final score any constant learning rate reaches on ``lr_schedule_problem``."""
    return max(1 - (1 - lr) ** steps - LR_PENALTY * lr for lr in (i / 10000 for i in range(1, 10001)))


def lr_schedule_problem(config):
    """A toy whose optimum needs a learning-rate schedule. The checkpoint holds the state
    (``v``), the step and who wrote it, and each result says which checkpoint it resumed
    from (``restored_from``, ``restored_v``), so a test can follow every exploit."""
    import json
    import tempfile

    v, start, restored_from, restored_v = 0.0, 0, "", None
    checkpoint = tune.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as path, open(os.path.join(path, "state.json")) as f:
            state = json.load(f)
        v, start, restored_from, restored_v = state["v"], state["step"], state["writer"], state["v"]
    me = tune.get_context().get_trial_id()
    for step in range(start + 1, config.get("steps", 20) + 1):
        time.sleep(config.get("sleep", 0.1))
        lr = config["lr"]
        v = v + min(lr, 1.0) * (1 - v)
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, "state.json"), "w") as f:
                json.dump({"v": v, "step": step, "writer": me}, f)
            tune.report({"score": v - LR_PENALTY * lr, "v": v, "lr": lr, "step": step,
                         "restored_from": restored_from, "restored_v": restored_v},
                        checkpoint=tune.Checkpoint.from_directory(tmp))


class DictCheckpointed(tune.Trainable):
    """Counts steps; ``save_checkpoint`` returns a dict (Ray's dict checkpoints) and each result
    says what ``load_checkpoint`` received. ``fail_at``: raises once at that step (a retry
    restores from the checkpoint)."""

    def setup(self, config):
        self.count, self.loaded = 0, "nothing"

    def step(self):
        self.count += 1
        marker = os.path.join(self.logdir, "failed_once")
        if self.count == self.config.get("fail_at") and not os.path.exists(marker):
            open(marker, "w").close()
            raise RuntimeError("fails once")
        return {"count": self.count, "loaded": self.loaded, "should_checkpoint": True,
                "done": self.count >= self.config.get("steps", 3)}

    def save_checkpoint(self, checkpoint_dir):
        return {"count": self.count}

    def load_checkpoint(self, checkpoint):
        self.loaded = repr(type(checkpoint).__name__) + ":" + repr(checkpoint)
        self.count = checkpoint["count"]


class CountsToEnd(tune.Trainable):
    """Counts steps forever (a stopper ends it); its checkpoint is a file holding the count."""

    def setup(self, config):
        self.count = 0

    def step(self):
        self.count += 1
        time.sleep(self.config.get("sleep", 0.0))
        return {"count": self.count}

    def save_checkpoint(self, checkpoint_dir):
        with open(os.path.join(checkpoint_dir, "count"), "w") as f:
            f.write(str(self.count))
