"""Ray Tune's own documentation examples, run on hpctune (issue 17, item 9).

Ray Tune's reference (``ray-tune-docs.rst``) has 45 ``code-block:: python`` blocks (its other
examples are ``literalinclude`` directives of files the reference does not contain). Each block
that can run here is ``ray_examples/exNN_<name>.py`` (NN: its number in the reference), copied
verbatim under a header naming its section and line. At run time the test builds the script
that runs and switches it to hpctune:

1. ``context`` + the block (verbatim) + ``epilogue``: most blocks are fragments that use names
   their page defines in prose or in other blocks (``trainable``, ``np``, ``RunConfig``); the
   context defines them, as Ray code. An epilogue, also Ray code, calls what a block only
   defines (a trainable, a ``TuneConfig``) or prints what ``fit()`` returned.
2. the example's ``rewrites``, one per line with its reason: placeholders (``...``) filled,
   paths moved into the test's directory, numbers shrunk where a block is too slow for CI; each
   must still match the reference's text;
3. ``IMPORTS``: Ray's modules to hpctune's (``from ray import tune`` -> ``from hpctune import
   tune``...).

The script (kept in the test's directory for a reader) runs in a subprocess, in that
directory, on the local backend (``HPCTUNE_BACKEND=local``, ``HPCTUNE_STORAGE_PATH`` there). It
must exit 0, or, where the reference's code is wrong in Ray too, fail with Ray's error
(``expect_error``); its check then asserts what it did: experiments, trials, configs, files,
output. An example that shows an hpctune bug is marked ``xfail(strict=True)`` with the bug; one
whose results once showed a bug also has a ``bug_check`` asserting what Ray reports, run by
``test_results_are_what_ray_reports``.

``NOT_RUN`` lists the blocks that cannot run here, and why.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hpctune.storage.trial_meta import read_meta
from tests.conftest import REPO_ROOT

EXAMPLES_DIR = Path(__file__).resolve().parent / "ray_examples"
TIMEOUT_S = 60
NUM_BLOCKS = 45  # code-block:: python in ray-tune-docs.rst

# The blocks that do not run here: block -> (section, why).
NOT_RUN: dict[int, tuple[str, str]] = {
    8: ("Configuring Tune with cloud storage (AWS S3, Google Cloud Storage)",
        "cloud storage: storage_path='s3://...'"),
    11: ("Example: Running Tune with cloud storage",
         "cloud storage: storage_path='s3://...'; imports my_trainable from `your_module`"),
    12: ("Example: Running Tune with cloud storage",
         "cloud storage: Tuner.restore('s3://...')"),
    13: ("Running a Distributed Tune Experiment",
         "Ray cluster: ray.init(address=...), and `tune.Tuner(...)` is a placeholder"),
    14: ("Storage Options in a Distributed Tune Run",
         "cloud storage: storage_path='s3://...'; imports my_trainable from `my_module`"),
    16: ("Restore a Tune Experiment", "cloud storage: Tuner.restore(path='s3://...')"),
    17: ("Tune Experiment Restoration with Ray Object References (Advanced)",
          "Ray Data: ray.data.from_items (and `Tuner.restore(...)` is a placeholder)"),
    30: ("How do you log arbitrary files from a Tune Trainable? (Class API)",
         "not Python: `class CustomLogging(tune.Trainable)` lacks its ':'; its step() returns "
         "None, which Ray refuses too; `logging_library` stands for mlflow/wandb"),
    31: ("How to Build Custom Tune Loggers?",
         "runs as the context of block 32, which uses the CustomLoggerCallback it defines"),
    37: ("Saving and Restoring Tune Search Algorithms",
         "not yet in hpctune: HyperOptSearch (hyperopt); Searcher.save/restore work with "
         "OptunaSearch"),
    38: ("Saving and Restoring Tune Search Algorithms",
         "not yet in hpctune: HyperOptSearch (hyperopt); restore_from_dir works with OptunaSearch"),
    43: ("Population Based Bandits (PB2) (tune.schedulers.pb2.PB2)",
         "not yet in hpctune: PB2; and not Python (a bare `...` entry in a dict literal)"),
    44: ("Advanced: Reusing Actors in Tune",
         "a fragment of a PyTorch ConvNet trainable on MNIST: get_data_loaders() downloads "
         "MNIST (internet), ConvNet is defined elsewhere; reset_config is never called here "
         "(each trial is its own process, no actor reuse)"),
    45: ("Advanced Resource Allocation",
         "Ray placement groups: tune.PlacementGroupFactory bundles (5 GPUs); a Slurm job is "
         "one allocation (with_resources nodes/tasks_per_node)"),
}

# The import switch, applied to the whole script (context, example and epilogue) after the
# example's own rewrites: Ray's module -> hpctune's module of the same names.
IMPORTS: list[tuple[str, str]] = [
    ("from ray import train, tune", "from hpctune import train, tune"),
    ("from ray import tune", "from hpctune import tune"),
    ("from ray import train", "from hpctune import train"),
    ("from ray.train import ", "from hpctune.train import "),
    ("from ray.tune.search.optuna import ", "from hpctune.tune.search.optuna import "),
    ("from ray.tune.schedulers import ", "from hpctune.tune.schedulers import "),
    # the reference's typo for ray.tune.schedulers (blocks 39 and 40; fails in Ray too)
    ("from tune.schedulers import ", "from hpctune.tune.schedulers import "),
    ("from ray.tune.logger import ", "from hpctune.tune.logger import "),
    ("from ray.tune.experiment.trial import ", "from hpctune.tune.experiment.trial import "),
    ("from ray.tune import ", "from hpctune.tune import "),
]


@dataclass
class Run:
    """What one example did: its process and the directory it ran in."""

    proc: subprocess.CompletedProcess[str]
    cwd: Path
    script: Path

    @property
    def out(self) -> str:
        return self.proc.stdout

    @property
    def storage(self) -> Path:
        return self.cwd / "storage"

    def experiments(self, root: Path | None = None) -> list[Path]:
        """The experiment directories under ``root`` (default: the storage path), oldest first."""
        root = root or self.storage
        found = [p.parent for p in root.rglob("experiment.json")]
        return sorted(found, key=lambda p: p.stat().st_mtime_ns)


@dataclass
class Example:
    """One code block of the reference and how the test runs and checks it."""

    file: str  # in ray_examples/
    check: Callable[[Run], None]  # asserts what the script did
    context: str = ""  # Ray code before the example: what the reference defines around it
    epilogue: str = ""  # Ray code after it: the call that uses what it defines, or a print
    rewrites: list[tuple[str, str, str]] = field(default_factory=list)  # (old, new, reason)
    marks: list = field(default_factory=list)  # xfail (with the hpctune bug), skipif
    expect_error: str | None = None  # the reference's code is wrong in Ray too: this error here
    extra_files: dict[str, str] = field(default_factory=dict)  # name -> text, written in cwd
    # an hpctune bug this example shows without failing: ``bug_check`` asserts Ray's behaviour,
    # and runs in test_hpctune_bug_shown_by_example as an xfail(strict=True) with ``bug``
    bug: str = ""
    bug_check: Callable[[Run], None] | None = None


def results_of(experiment: Path):
    from hpctune import ResultGrid

    return ResultGrid.from_path(experiment)


def assert_all_terminated(experiment: Path, count: int):
    grid = results_of(experiment)
    assert len(grid) == count, (experiment, len(grid))
    assert grid.num_errors == 0, grid.errors
    assert grid.num_terminated == count
    return grid


def build_script(example: Example) -> str:
    """context + the example (verbatim) + epilogue, with the example's rewrites, then IMPORTS."""
    code = (EXAMPLES_DIR / example.file).read_text()
    for old, new, reason in example.rewrites:
        assert old in code, f"rewrite {old!r} ({reason}) no longer matches {example.file}"
        code = code.replace(old, new)
    parts = [example.context.strip("\n"), f"# ---- {example.file} (verbatim, rewritten)\n" + code]
    if example.epilogue:
        parts.append("# ---- epilogue (the test's)\n" + example.epilogue.strip("\n"))
    script = "\n\n".join(p for p in parts if p) + "\n"
    for old, new in IMPORTS:
        script = script.replace(old, new)
    assert not re.search(r"^\s*(from ray\b|import ray\b)", script, re.M), script
    return script


def run_example(example: Example, cwd: Path) -> Run:
    """Run the example's script (written to ``cwd`` for a reader) in ``cwd``, on the local backend."""
    for name, text in example.extra_files.items():
        (cwd / name).write_text(text)
    script = cwd / example.file
    script.write_text(build_script(example))
    env = {**os.environ, "HPCTUNE_BACKEND": "local", "HPCTUNE_STORAGE_PATH": str(cwd / "storage"),
           "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(cwd)])}
    for name in ("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "HPCTUNE_CHDIR_TO_TRIAL_DIR",
                 "RAY_CHDIR_TO_TRIAL_DIR", "TUNE_RESULT_DELIM"):
        env.pop(name, None)
    proc = subprocess.run([sys.executable, script.name], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT_S)
    return Run(proc, cwd, script)


def fit_lines(run: Run) -> list[list[float]]:
    """The numbers of each ``FIT`` line an epilogue printed (see ``show_fit``)."""
    return [[float(x) for x in line.split()[1:]] for line in run.out.splitlines()
            if line.startswith("FIT ")]


def show_fit(name: str) -> str:
    """An epilogue line: what ``fit()`` returned for the first trial (last iteration, rows)."""
    return (f'print("FIT", {name}[0].metrics["training_iteration"], '
            f'len({name}[0].metrics_dataframe))\n')


# ------------------------------------------------------------------------------------ contexts
# What the reference's prose defines around its fragments, written as Ray code (the import
# switch applies to it too). Trainables report something their check can recognise.
TRAINABLE = """
from ray import train, tune


def trainable(config):
    train.report({"score": 1.0})
"""

MY_TRAINABLE = """
from ray import train, tune


def my_trainable(config):
    train.report({"score": 1.0})
"""

NUMPY = "import numpy as np\n"
RUN_CONFIG = "from ray.train import RunConfig\n"
GRID_VALUES = """
from ray.tune import grid_search

a, b, c = "a", "b", "c"
"""

LOG_TRAINABLE = """
import sys

from ray import train, tune


def trainable(config):
    print("a line to stdout")
    print("a line to stderr", file=sys.stderr)
    train.report({"score": 1.0})
"""

# ``logging_library`` stands for mlflow or wandb in the reference: a stand-in module that
# records where it was told to log.
LOGGING_LIBRARY = '''
import os

CALLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "logging_library_calls.txt")


def _record(line):
    with open(CALLS, "a") as f:
        f.write(line + "\\n")


def init(**kwargs):
    _record("init " + kwargs["name"])


def set_log_path(path):
    _record("set_log_path " + os.path.realpath(path))


def log_model(*args):
    pass


def log(results, step):
    pass
'''

MY_TRAINABLE_CLASS = """
from ray import tune


class MyTrainableClass(tune.Trainable):
    def setup(self, config):
        self.value = 0.0

    def step(self):
        self.value += 1
        return {"value": self.value, "done": self.value >= 3}
"""

# Population based training needs a trainable that checkpoints and resumes from a checkpoint:
# written as Ray's documentation writes one. ``lr`` and ``alpha`` come from the scheduler's
# ``hyperparam_mutations`` (Ray samples a key missing from the config there).
PBT_TRAIN_FN = """
import json
import os
import tempfile
import time

from ray import train
from ray.train import Checkpoint


def train_fn(config):
    step, loss = 0, 10.0
    checkpoint = train.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as checkpoint_dir:
            with open(os.path.join(checkpoint_dir, "state.json")) as f:
                step, loss = json.load(f)
    while step < 4:
        step += 1
        time.sleep(0.2)
        loss = loss * (1 - 100 * config["lr"]) + config["alpha"]
        with tempfile.TemporaryDirectory() as checkpoint_dir:
            with open(os.path.join(checkpoint_dir, "state.json"), "w") as f:
                json.dump([step, loss], f)
            train.report({"loss": loss}, checkpoint=Checkpoint.from_directory(checkpoint_dir))
"""


# fixed hpctune bugs an example showed, kept as the reason its ``bug_check`` exists
RESULTS_AFTER_STOP = ("results logged after a STOP were taken as the trial's (fixed: the driver "
                      "records its stop decision in the log, and every reader stops there)")


def trial_resources(result) -> dict:
    trial_dir = Path(result.path)  # the trial's metadata: meta events in its log
    return read_meta(trial_dir / "result.jsonl", trial_dir / "trial.json")["resources"]


# ------------------------------------------------------------------------------------ checks
def check_01(run: Run):
    (exp,) = run.experiments()
    grid = assert_all_terminated(exp, 2)
    assert sorted(r.config["bar"] for r in grid) == [False, True]


def check_02(run: Run):
    (exp,) = run.experiments()
    (result,) = assert_all_terminated(exp, 1)
    config = result.config
    assert config["const"] == "hello"
    assert config["param1"] in (True, False)
    assert 0 <= config["bar"] <= 10
    assert 1 <= config["alpha"] <= 100**2  # np.random.uniform(100): low=100, high=1.0


def check_03(run: Run):
    # the comment above each fit() says how many configs it makes (the last: 18, shrunk from 45)
    counts = [13, 13, 4, 3, 6, 9, 18, 18]
    experiments = run.experiments()
    assert [len(results_of(e)) for e in experiments] == counts
    grids = [assert_all_terminated(e, n) for e, n in zip(experiments, counts, strict=True)]
    assert {r.config["x"] for r in grids[0]} <= {0, 1, 2}
    assert all(isinstance(r.config["y"], float) for r in grids[1])
    assert sorted(r.config["x"] for r in grids[2]) == [1, 2, 3, 4]
    assert sorted(r.config["x"] for r in grids[4]) == [1, 1, 2, 2, 3, 3]
    for grid, repeats in zip(grids[5:], (1, 2, 2), strict=True):
        pairs = sorted((r.config["x"], r.config["y"]) for r in grid)
        expected = sorted((x, y) for x in (1, 2, 3) for y in "abc")
        assert pairs == sorted(expected * repeats)


def check_04(run: Run):
    (exp,) = run.experiments()
    grid = assert_all_terminated(exp, 6)
    assert sorted(r.config["y"] for r in grid) == ["a", "a", "b", "b", "c", "c"]
    assert len({r.config["x"] for r in grid}) == 6  # sampled once per trial


def _check_conditional(grid, repeats: int):
    layers = sorted(tuple(r.config["nn_layers"]) for r in grid)
    assert layers == sorted([(x, y) for x in (16, 64, 256) for y in (16, 64, 256)] * repeats)
    for r in grid:
        assert 1 <= r.config["alpha"] <= 100
        assert isinstance(r.config["beta"], float)  # spec.config.alpha was resolved first


def check_05(run: Run):
    (exp,) = run.experiments()
    assert exp.name == "my_trainable"
    _check_conditional(assert_all_terminated(exp, 2 * 9), 2)


def check_06(run: Run):
    (exp,) = run.experiments()
    (result,) = assert_all_terminated(exp, 1)
    assert 1 <= result.config["alpha"] <= 100
    assert isinstance(result.config["beta"], float)


def check_07(run: Run):
    (exp,) = run.experiments()
    assert exp.name == "my_trainable"
    _check_conditional(assert_all_terminated(exp, 9), 1)


def check_09(run: Run):
    (exp,) = run.experiments(run.cwd / "nfs")
    assert exp == run.cwd / "nfs/path/to/shared/storage/experiment_name"
    assert_all_terminated(exp, 1)
    assert not run.storage.exists()


def check_10(run: Run):
    (exp,) = run.experiments(run.cwd / "custom")
    assert exp == run.cwd / "custom/storage/path/experiment_name"
    assert_all_terminated(exp, 1)


def check_15(run: Run):
    (exp,) = run.experiments()
    grid = assert_all_terminated(exp, 10)
    assert all(0 <= r.config["x"] <= 1 for r in grid)
    assert len({r.config["x"] for r in grid}) == 10


def check_18(run: Run):
    (exp,) = run.experiments()
    grid = assert_all_terminated(exp, 10)
    assert all(trial_resources(r) == {"cpu": 1, "gpu": 0} for r in grid)


def check_19(run: Run):
    experiments = run.experiments()
    assert len(experiments) == 4, experiments
    # 4 CPUs on a machine with fewer: the local backend runs one trial at a time
    for exp, cpus in zip(experiments, (2, 4, 1, 1), strict=True):
        grid = assert_all_terminated(exp, 4)
        for r in grid:
            assert trial_resources(r)["cpu"] == cpus
            assert trial_resources(r)["gpu"] == 0
    assert "cpu=0.5 rounded up to 1" in run.proc.stderr  # said, as Slurm gives whole CPUs


def check_20(run: Run):
    experiments = run.experiments()
    assert len(experiments) == 2
    for exp, cpus in zip(experiments, (1, 2), strict=True):
        for r in assert_all_terminated(exp, 10):
            assert trial_resources(r) == {"cpu": cpus, "gpu": 1}
            assert r.metrics["cuda_visible_devices"] not in ("", None)


def check_21(run: Run):
    (exp,) = run.experiments()
    grid = assert_all_terminated(exp, 4)
    spans = sorted((r.metrics["start"], r.metrics["end"]) for r in grid)
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert start >= end, spans  # max_concurrent_trials=1: one trial at a time


def check_22(run: Run):
    lines = [line for line in run.out.splitlines() if line.startswith("Got result:")]
    assert lines == [f"Got result: {i}" for i in range(10)], run.out


def check_23(run: Run):
    function_exp, class_exp = run.experiments()
    (result,) = assert_all_terminated(function_exp, 1)
    df = result.metrics_dataframe
    assert list(df["training_iteration"]) == [1, 2, 3]  # num_epochs reports
    assert (list(df["acc"]), list(df["metric_foo"]), list(df["bar"])) == ([0.9] * 3, [0.5] * 3, [2.0] * 3)
    (result,) = assert_all_terminated(class_exp, 1)
    assert {result.metrics["acc"], result.metrics["metric_foo"], result.metrics["bar"]} == {0.9, 0.5, 2.0}
    function_fit, class_fit = fit_lines(run)
    assert function_fit == [3, 3]
    assert class_fit[0] == 3  # fit(): the class trainable stopped at training_iteration 3


def check_23_bug(run: Run):
    _, class_exp = run.experiments()
    _, class_fit = fit_lines(run)
    (result,) = results_of(class_exp)
    assert (class_fit[1], result.metrics["training_iteration"], len(result.metrics_dataframe)) == (3, 3, 3)


def check_24(run: Run):
    assert not run.storage.exists()  # refused before anything ran


def check_25(run: Run):
    (exp,) = run.experiments(run.cwd / "results")
    assert exp == run.cwd / "results" / "test_experiment"
    assert_all_terminated(exp, 2)


def check_26(run: Run):
    (exp,) = run.experiments()
    grid = assert_all_terminated(exp, 4)
    assert sorted((r.config["lr"], r.config["momentum"]) for r in grid) == [
        (1e-5, 0), (1e-5, 0.9), (1e-4, 0), (1e-4, 0.9)]
    for r in grid:
        assert list(Path(r.path).glob("events.out.tfevents.*")), r.path  # TensorBoard files


def check_27(run: Run):
    (exp,) = run.experiments()
    (result,) = assert_all_terminated(exp, 1)
    trial_dir = Path(result.path)
    assert "a line to stdout" in (trial_dir / "stdout").read_text()
    assert "a line to stderr" in (trial_dir / "stderr").read_text()


def check_28(run: Run):
    combined, pair = run.experiments()
    (result,) = assert_all_terminated(combined, 1)
    text = (Path(result.path) / "std_combined.log").read_text()
    assert "a line to stdout" in text and "a line to stderr" in text
    (result,) = assert_all_terminated(pair, 1)
    trial_dir = Path(result.path)
    assert "a line to stdout" in (trial_dir / "my_stdout.log").read_text()
    assert "a line to stderr" in (trial_dir / "my_stderr.log").read_text()
    assert "a line to stdout" not in (trial_dir / "my_stderr.log").read_text()


def check_29(run: Run):
    (exp,) = run.experiments()
    (result,) = assert_all_terminated(exp, 1)
    trial_dir = Path(result.path)
    artifacts = sorted(p.name for p in trial_dir.glob("artifact_*.txt"))
    assert artifacts == sorted(f"artifact_{i}.txt" for i in range(100))
    assert (trial_dir / "artifact_99.txt").read_text() == "Artifact Data"
    assert result.metrics["training_iteration"] == 100
    calls = (run.cwd / "logging_library_calls.txt").read_text().splitlines()
    # os.getcwd() in the trainable is the trial directory
    assert calls == ["init my-trial", f"set_log_path {trial_dir.resolve()}"]


def _json_objects(text: str) -> list[dict]:
    decoder, pos, found = json.JSONDecoder(), 0, []
    while pos < len(text):
        obj, pos = decoder.raw_decode(text, pos)
        found.append(obj)
    return found


def check_32(run: Run):
    (exp,) = run.experiments()
    assert exp.name == "experiment_name"
    (result,) = assert_all_terminated(exp, 1)
    logged = _json_objects((Path(result.path) / "log_test.txt").read_text())
    assert [r["value"] for r in logged] == [1.0, 2.0, 3.0]
    assert [r["training_iteration"] for r in logged] == [1, 2, 3]


def check_33(run: Run):
    (exp,) = run.experiments()
    (result,) = assert_all_terminated(exp, 1)
    assert result.metrics["custom_metric"] == 0.25
    header = next(line for line in run.out.splitlines() if line.startswith("Trial name"))
    assert "custom_metric" in header, run.out


def check_34(run: Run):
    terminated, per_trial = run.experiments()
    assert_all_terminated(terminated, 1)
    assert_all_terminated(per_trial, 1)
    # each reporter reported once, when the trial had terminated (a default reporter also
    # reports the trial PENDING/RUNNING)
    reports = run.out.split("== Status ==")[1:]
    assert len(reports) == 2, run.out
    assert all("(1 TERMINATED)" in report for report in reports), run.out


def check_35(run: Run):
    (exp,) = run.experiments()
    (result,) = assert_all_terminated(exp, 1)
    trial_name = f"my_trainable_{result.metrics['trial_id']}"  # Ray's str(trial): <trainable>_<trial_id>
    assert trial_name in run.out.splitlines(), run.out  # print(str(trial)) for each trial


def check_36(run: Run):
    (exp,) = run.experiments()
    grid = assert_all_terminated(exp, 16)
    losses = [r.metrics["loss"] for r in grid]
    assert all(0 <= x <= 1 for x in losses)
    assert len(set(losses)) == 16
    assert grid.get_best_result().metrics["loss"] == min(losses)
    assert grid.get_dataframe()["config/param"].tolist() == losses


def check_39(run: Run):
    (exp,) = run.experiments()
    grid = assert_all_terminated(exp, 10)
    assert all(r.metrics["loss"] == r.config["param"] for r in grid)


def check_40(run: Run):
    (exp,) = run.experiments()
    assert_all_terminated(exp, 1)
    (fit,) = fit_lines(run)
    assert fit[0] == 100  # fit(): ASHA's max_t stopped the endless loop at iteration 100


def check_40_bug(run: Run):
    (exp,) = run.experiments()
    (fit,) = fit_lines(run)
    (result,) = results_of(exp)
    assert (fit[1], result.metrics["training_iteration"], len(result.metrics_dataframe)) == (100, 100, 100)


def check_41(run: Run):
    (exp,) = run.experiments()
    grid = assert_all_terminated(exp, 4)
    lrs = [1e-3, 5e-4, 1e-4, 5e-5, 1e-5]
    for r in grid:
        assert r.config["lr"] in lrs  # sampled from hyperparam_mutations (no param_space)
        assert r.config["alpha"] >= 0  # sampled in [0, 1], perturbed by 0.8 or 1.2
        assert r.checkpoint is not None  # train_fn reports one with each result
    # Ray's PBT log: one line per exploit, [target, donor, target it., donor it., old, new config]
    exploits = [json.loads(line) for line in (exp / "pbt_global.txt").read_text().splitlines()]
    assert exploits, "no exploit in 4 trials x 4 iterations with perturbation_interval=1"
    for target, donor, _, _, old, new in exploits:
        assert target != donor and new["lr"] in lrs and old != new


def check_42(run: Run):
    # experiment_dir= and trial_id= name the trial's policy file, read before anything is written
    assert "ray_results/pbt_experiment/pbt_policy_XXXXX_00001.txt" in run.proc.stderr, run.proc.stderr
    assert not run.storage.exists()


# ------------------------------------------------------------------------------------ examples
def _verbatim(name: str) -> str:
    return (EXAMPLES_DIR / name).read_text()


def _has_gpu() -> bool:
    return bool(shutil.which("nvidia-smi")) and subprocess.run(
        ["nvidia-smi", "-L"], capture_output=True).returncode == 0


PLACEHOLDER_TRAINABLE = ("    ...,\n", "    trainable,\n",
                         "the reference leaves the trainable out (`...`)")

EXAMPLES = [
    Example("ex01_grid_search_bool.py", check_01, context=TRAINABLE),
    Example("ex02_search_space_primitives.py", check_02, context=NUMPY + TRAINABLE),
    Example("ex03_num_samples_and_grids.py", check_03, context=TRAINABLE + GRID_VALUES, rewrites=[
        ("tune.TuneConfig(num_samples=5)", "tune.TuneConfig(num_samples=2)",
         "111 trials in 8 fits take over 10 s on 2 cores: the last grid is repeated 2 times, "
         "not 5 (18 configs, not 45)"),
        ("tune.randn([0, 1, 2])", "tune.randn(0, 1)",
         "the reference's typo: randn(mean, sd) takes numbers (Ray fails on this list too, in "
         "numpy; hpctune refuses it with a SearchSpaceError)"),
    ]),
    Example("ex04_sample_from_with_grid.py", check_04, context=NUMPY + TRAINABLE + GRID_VALUES,
            rewrites=[("tune.sample_from(...)", "tune.sample_from(lambda spec: np.random.uniform())",
                       "the reference leaves the function out (`...`)")]),
    Example("ex05_conditional_nested_grid.py", check_05, context=NUMPY + RUN_CONFIG + MY_TRAINABLE,
            rewrites=[("num_samples=10", "num_samples=2", "10 x 9 grid points = 90 trials: too slow")]),
    Example("ex06_custom_conditional_space.py", check_06, context=NUMPY + TRAINABLE,
            rewrites=[PLACEHOLDER_TRAINABLE]),
    Example("ex07_conditional_space_tuner.py", check_07, context=NUMPY + RUN_CONFIG + MY_TRAINABLE,
            epilogue="tuner.fit()"),
    Example("ex09_storage_nfs.py", check_09, context=TRAINABLE, rewrites=[
        ('"/mnt/path/to/shared/storage/"', '"./nfs/path/to/shared/storage/"',
         "the test's stand-in for the NFS mount"),
    ]),
    Example("ex10_storage_local_path.py", check_10, context=TRAINABLE, rewrites=[
        ('"/tmp/custom/storage/path"', '"./custom/storage/path"',
         "a fresh directory for each run of the test (the reference's is shared by all)"),
    ]),
    Example("ex15_tuner_fit_uniform.py", check_15, context=MY_TRAINABLE),
    Example("ex18_parallelism_default.py", check_18, context=TRAINABLE),
    Example("ex19_with_resources.py", check_19, context=TRAINABLE, rewrites=[
        ("tune.TuneConfig(num_samples=10)", "tune.TuneConfig(num_samples=4)",
         "4 fits of 10 trials, two of them one trial at a time on 2 cores: too slow"),
        ("if spec.config.use_gpu else", 'if spec.config.get("use_gpu") else',
         "the reference's Tuner has no param_space, so the config has no use_gpu (an error in "
         "Ray too)"),
    ]),
    Example("ex20_gpu_resources.py", check_20, context="""
import os

from ray import train, tune


def trainable(config):
    train.report({"cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")})
""", marks=[pytest.mark.skipif(not _has_gpu(), reason="needs a GPU (nvidia-smi -L)")]),
    Example("ex21_max_concurrent_trials.py", check_21, context="""
import time

from ray import train, tune


def trainable(config):
    start = time.time()
    time.sleep(0.5)
    train.report({"start": start, "end": time.time()})
""", epilogue="""
tuner = tune.Tuner(trainable, tune_config=config)
tuner.fit()
""", rewrites=[
        ("num_samples=100", "num_samples=4", "100 trials: too slow"),
        ("max_concurrent_trials=10", "max_concurrent_trials=1",
         "10 is more than the 2 cores run at once: 1 makes the limit visible"),
    ]),
    Example("ex22_callback_on_trial_result.py", check_22),
    Example("ex23_log_metrics_function_and_class.py", check_23, context="""
from ray import train, tune

num_epochs = 3
accuracy, random_metric_1, metric_2 = 0.9, 0.5, 2.0
""", epilogue="""
function_results = tune.Tuner(trainable).fit()
class_results = tune.Tuner(Trainable, run_config=train.RunConfig(stop={"training_iteration": 3})).fit()
""" + show_fit("function_results") + show_fit("class_results"), bug=RESULTS_AFTER_STOP,
            bug_check=check_23_bug),
    Example("ex24_logging_default_dirs.py", check_24, context=RUN_CONFIG + TRAINABLE,
            expect_error="num_samples"),
    Example("ex25_logging_storage_path.py", check_25, context=RUN_CONFIG + TRAINABLE),
    Example("ex26_tensorboard_grid.py", check_26, context="""
from ray import train, tune


def trainable(config):
    for step in range(3):
        train.report({"loss": config["lr"] * (1 - config["momentum"]) / (step + 1)})
""", rewrites=[PLACEHOLDER_TRAINABLE]),
    Example("ex27_log_to_file_true.py", check_27, context=RUN_CONFIG + LOG_TRAINABLE),
    Example("ex28_log_to_file_names.py", check_28, context=RUN_CONFIG + LOG_TRAINABLE),
    Example("ex29_artifacts_function.py", check_29, context="""
import os

from ray import tune

# the names the fragment uses without defining them
trial_id = "my-trial"
results = {"loss": 0.5}
""", epilogue="tune.Tuner(trainable).fit()", extra_files={"logging_library.py": LOGGING_LIBRARY}),
    Example("ex32_custom_logger_tuner.py", check_32,
            context=_verbatim("ex31_custom_logger_callback.py") + MY_TRAINABLE_CLASS,
),
    Example("ex33_cli_reporter_columns.py", check_33, context="""
from ray import train, tune


def my_trainable(config):
    train.report({"custom_metric": 0.25})
"""),
    Example("ex34_reporter_should_report.py", check_34, context="""
import time

from ray import train, tune
from ray.train import RunConfig
from ray.tune import CLIReporter


def my_trainable(config):
    for step in range(4):
        time.sleep(0.3)
        train.report({"score": step})
"""),
    Example("ex35_custom_progress_reporter.py", check_35, context=RUN_CONFIG + MY_TRAINABLE),
    Example("ex36_optuna_search.py", check_36, rewrites=[
        ("num_samples=100", "num_samples=16", "100 trials: too slow"),
    ]),
    Example("ex39_asha_tune_config.py", check_39),
    Example("ex40_asha_scheduler.py", check_40, context="""
from ray import train


def train_fn(config):
    step = 0
    while True:  # ASHA's max_t ends it
        step += 1
        train.report({"loss": 1.0 / step})
""", epilogue=show_fit("results"), bug=RESULTS_AFTER_STOP, bug_check=check_40_bug),
    Example("ex41_pbt_scheduler.py", check_41, context=PBT_TRAIN_FN),
    # the reference's form (experiment_dir=, trial_id=) is taken; its directory holds no such run
    Example("ex42_pbt_replay.py", check_42, context=PBT_TRAIN_FN, expect_error="Policy file not found"),
]


def test_every_reference_block_is_run_or_said_why_not():
    run = {int(e.file[2:4]) for e in EXAMPLES}
    assert not run & set(NOT_RUN)
    assert run | set(NOT_RUN) == set(range(1, NUM_BLOCKS + 1))
    on_disk = sorted(p.name for p in EXAMPLES_DIR.glob("ex*.py"))
    assert on_disk == sorted([e.file for e in EXAMPLES] + ["ex31_custom_logger_callback.py"])


@pytest.fixture(scope="module")
def run_once(tmp_path_factory):
    """Each example runs once; its test and its bug test share the run."""
    runs: dict[str, Run] = {}

    def get(example: Example) -> Run:
        if example.file not in runs:
            runs[example.file] = run_example(example, tmp_path_factory.mktemp(example.file[:-3]))
        return runs[example.file]
    return get


@pytest.mark.parametrize(
    "example", [pytest.param(e, id=e.file[:-3], marks=e.marks) for e in EXAMPLES])
def test_reference_example(example: Example, run_once):
    run = run_once(example)
    output = f"{run.script}\n--- stdout\n{run.out[-3000:]}\n--- stderr\n{run.proc.stderr[-5000:]}"
    if example.expect_error:
        assert run.proc.returncode != 0, output
        assert example.expect_error in run.proc.stderr, output
    else:
        assert run.proc.returncode == 0, output
    example.check(run)


@pytest.mark.parametrize("example", [pytest.param(e, id=e.file[:-3]) for e in EXAMPLES if e.bug_check])
def test_results_are_what_ray_reports(example: Example, run_once):
    """Results a trial logs after its STOP (fast trainables run on until they see it) are not
    the trial's: every reader shows the result the stop was decided on (was RESULTS_AFTER_STOP)."""
    run = run_once(example)
    assert run.proc.returncode == 0, run.proc.stderr[-5000:]
    example.bug_check(run)
