"""The sbatch script hpctune submits, pinned line by line (rendered by submitit, no Slurm needed);
whole scripts are pinned byte for byte by test_golden_sbatch.py."""

from pathlib import Path

import pytest

from hpctune.backends.sbatch_script import render_array_script
from hpctune.backends.slurm import SlurmBackend
from hpctune.config import SlurmConfig


def render(tmp_path, resources, count=16, throttle=4, **config):
    backend = SlurmBackend(tmp_path / "exp", SlurmConfig(requeue=config.pop("requeue", False), **config))
    return backend.render_script(resources, count, throttle, Path("/x/array_1.trials"))


def directives(script: str) -> list[str]:
    return [line for line in script.splitlines() if line.startswith("#SBATCH")]


def test_gpu_array_script(tmp_path):  # no --error: stderr goes to the task's .out (one log per task)
    script = render(tmp_path, {"cpu": 2, "gpu": 1, "mem_gb": 8}, partition="gpu", time_min=120,
                    setup=["module load cuda/12"], sbatch_options={"reservation": "ml"})
    out = tmp_path / "exp" / "jobs"
    assert directives(script) == [
        "#SBATCH --array=0-15%4",
        "#SBATCH --comment=hpctune:1",
        "#SBATCH --cpus-per-task=2",
        "#SBATCH --gres=gpu:1",
        "#SBATCH --job-name=hpctune-exp",
        "#SBATCH --mem=8GB",
        "#SBATCH --nodes=1",
        "#SBATCH --open-mode=append",
        f"#SBATCH --output={out}/%A_%a_0_log.out",
        "#SBATCH --partition=gpu",
        "#SBATCH --reservation=ml",
        "#SBATCH --signal=B:USR1@90",
        "#SBATCH --time=120",
        "#SBATCH --wckey=hpctune",
    ]
    assert "module load cuda/12" in script
    assert script.rstrip().endswith(
        f"-u -m hpctune.worker {tmp_path / 'exp'} --manifest /x/array_1.trials")
    assert "\nexec " in script  # the worker replaces the batch shell and gets B: signals


def test_requeue_fractional_memory_and_srun(tmp_path):
    script = render(tmp_path, {"cpu": 1, "gpu": 0, "mem_gb": 1.5}, requeue=True, use_srun=True,
                    signal="USR2", signal_lead_s=300)
    lines = directives(script)
    assert "#SBATCH --requeue" in lines and "#SBATCH --mem=1536MB" in lines
    # srun's tasks get the warning (no B:): the batch shell running srun would die of it
    assert "#SBATCH --signal=USR2@300" in lines
    assert not any("gres" in line for line in lines)
    assert "srun" in script and "\nexec " not in script


def test_preview_shows_the_array_fit_submits_first(monkeypatch):
    """README's example: a 2-value grid x num_samples=16 runs through 8 pool tasks by default;
    with one job per trial it is one array of 32 tasks, 8 at a time."""
    from hpctune import tune

    monkeypatch.setattr("hpctune.tune.tuner.choose_backend", lambda requested: "slurm")

    def tuner(**reuse):
        return tune.Tuner(
            tune.with_resources(lambda config: None, {"cpu": 2, "gpu": 1}),
            param_space={"lr": tune.loguniform(1e-4, 1e-1), "layers": tune.grid_search([2, 4])},
            tune_config=tune.TuneConfig(num_samples=16, max_concurrent_trials=8, **reuse),
            run_config=tune.RunConfig(name="lr-sweep", slurm=tune.SlurmConfig(requeue=False)))

    pooled = tuner().preview_sbatch()
    assert "#SBATCH --array=0-7%8" in directives(pooled) and "hpctune.pool" in pooled
    per_trial = tuner(reuse_actors=False)
    assert "#SBATCH --array=0-31%8" in directives(per_trial.preview_sbatch())
    assert "#SBATCH --array=0-2%3" in directives(per_trial.preview_sbatch(3))  # 3: 3 at once


def test_preview_of_a_model_based_search_is_one_window_of_trials(monkeypatch):
    pytest.importorskip("optuna")  # a test dependency: installed by scripts/test.sh
    from hpctune import tune
    from hpctune.tune.search.optuna import OptunaSearch

    monkeypatch.setattr("hpctune.tune.tuner.choose_backend", lambda requested: "slurm")
    tuner = tune.Tuner(
        lambda config: None, param_space={"lr": tune.uniform(0, 1)},
        tune_config=tune.TuneConfig(metric="loss", mode="min", num_samples=100, max_concurrent_trials=4,
                                    search_alg=OptunaSearch()),
        run_config=tune.RunConfig(name="opt", slurm=tune.SlurmConfig(requeue=False)))
    lines = directives(tuner.preview_sbatch())
    assert "#SBATCH --array=0-3%4" in lines  # one window of max_concurrent_trials


def test_preview_with_reuse_actors_shows_the_pool_array(monkeypatch, tmp_path):
    """reuse_actors=True: the first submission is the pool array, one task per slot, each asking
    for its trials' resources (0.5 GPU x 2 trials = one GPU), and nothing is written."""
    from hpctune import tune

    monkeypatch.setattr("hpctune.tune.tuner.choose_backend", lambda requested: "slurm")
    tuner = tune.Tuner(
        tune.with_resources(lambda config: None, {"cpu": 2, "gpu": 0.5}),
        param_space={"lr": tune.loguniform(1e-4, 1e-1)},
        tune_config=tune.TuneConfig(num_samples=40, max_concurrent_trials=8, reuse_actors=True),
        run_config=tune.RunConfig(name="pooled", storage_path=str(tmp_path),
                                  slurm=tune.SlurmConfig(requeue=False)))
    text = tuner.preview_sbatch()
    lines = directives(text)
    assert "#SBATCH --array=0-3%4" in lines and "#SBATCH --gres=gpu:1" in lines, lines
    assert "#SBATCH --cpus-per-task=4" in lines and "-m hpctune.pool" in text
    assert not any(tmp_path.iterdir())


class PartitionAnswers:
    """Answers ``scontrol show partition -o`` with ``lines``; records every command."""

    def __init__(self, lines):
        self.lines, self.calls, self.counts = lines, [], {}

    def run(self, args, check=True):
        import subprocess

        self.calls.append(list(args))
        named = args[-1] if args[-1] != "-o" else None  # scontrol shows only that partition
        lines = [line for line in self.lines if named is None or f"PartitionName={named} " in line]
        return subprocess.CompletedProcess(args, 0, "\n".join(lines) + "\n", "")


@pytest.mark.parametrize("partition, requeue", [(None, True), ("short", False)])
def test_requeue_follows_the_partition_and_is_asked_once_before_rendering(tmp_path, partition, requeue):
    slurm = PartitionAnswers(["PartitionName=long Default=YES PreemptMode=REQUEUE",
                              "PartitionName=short Default=NO PreemptMode=OFF"])
    backend = SlurmBackend(tmp_path / "exp", SlurmConfig(partition=partition), commands=slurm)
    spec = backend.array_script({"cpu": 1}, 2, 2, Path("/x/array_1.trials"))
    assert spec.requeue is requeue
    assert slurm.calls == [["scontrol", "show", "partition", "-o", *([partition] if partition else [])]]
    assert ("#SBATCH --requeue" in directives(render_array_script(spec))) is requeue
    backend.render_script({"cpu": 1}, 2, 2)
    assert len(slurm.calls) == 1  # looked up once per backend; rendering itself asks nothing
