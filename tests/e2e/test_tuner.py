"""End to end: the same Tuner runs on the Slurm lab and as local processes.

Tests parametrised over ``backend`` run on both; Slurm-only checks (GPUs, sbatch errors)
are marked ``slurm``.
"""

import os
from itertools import combinations

import pytest

from hpctune import tune
from hpctune.errors import SlurmCommandError
from tests.conftest import unique_name
from tests.e2e import trainables

BACKENDS = ["local", pytest.param("slurm", marks=pytest.mark.slurm)]


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch):
    monkeypatch.setenv("HPCTUNE_BACKEND", request.param)
    return request.param


def fast_slurm():
    return tune.SlurmConfig(poll_interval_s=0.5, time_min=10)


def test_quickstart_grid(backend, tmp_path):
    exp_name = unique_name("qs")
    tuner = tune.Tuner(
        trainables.quadratic,
        param_space={"a": tune.grid_search([0.0, 1.0, 2.0]), "b": tune.choice([1, 2])},
        tune_config=tune.TuneConfig(metric="score", mode="min", max_concurrent_trials=3),
        run_config=tune.RunConfig(name=exp_name, storage_path=str(tmp_path), verbose=0,
                                  slurm=fast_slurm()),
    )
    grid = tuner.fit()
    assert len(grid) == 3 and grid.num_errors == 0 and grid.num_terminated == 3
    best = grid.get_best_result()
    assert best.config["a"] == 0.0
    assert best.metrics["training_iteration"] == 3
    assert best.metrics["score"] == pytest.approx(best.config["b"] + 1 / 3)
    df = grid.get_dataframe()
    assert sorted(df["config/a"]) == [0.0, 1.0, 2.0]
    assert set(df["training_iteration"]) == {3}
    assert len(best.metrics_dataframe) == 3
    trial_dir = best.path
    for name in ("params.json", "result.jsonl", "progress.csv"):  # result.json: only with its logger
        assert os.path.exists(os.path.join(trial_dir, name)), name
    again = tune.ResultGrid.from_path(tmp_path / exp_name)
    assert again.get_best_result().config == best.config
    assert again.num_terminated == 3


def test_erroring_trial_is_reported_and_others_finish(backend, tmp_path):
    grid = tune.Tuner(
        trainables.fails_for_negative,
        param_space={"x": tune.grid_search([-1, 1, 2])},
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0, slurm=fast_slurm()),
    ).fit()
    assert grid.num_errors == 1 and grid.num_terminated == 2
    (error,) = grid.errors
    assert "negative x=-1 is not allowed" in str(error)
    assert "Traceback" in str(error)
    values = sorted(r.metrics["value"] for r in grid if r.error is None)
    assert values == [2, 4]


def test_class_trainable(backend, tmp_path):
    grid = tune.Tuner(
        trainables.Counter,
        param_space={"limit": tune.grid_search([2, 4])},
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0, slurm=fast_slurm()),
    ).fit()
    assert sorted(r.metrics["count"] for r in grid) == [2, 4]
    assert sorted(r.metrics["training_iteration"] for r in grid) == [2, 4]


@pytest.mark.slurm
def test_sixteen_gpu_trials_each_see_their_own_gpu(tmp_path, monkeypatch):
    monkeypatch.setenv("HPCTUNE_BACKEND", "slurm")
    trainable = tune.with_resources(trainables.gpu_probe, {"cpu": 1, "gpu": 1})
    grid = tune.Tuner(
        trainable,
        param_space={"x": tune.grid_search(list(range(16))), "sleep": 2.0},
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0, slurm=fast_slurm()),
    ).fit()
    assert grid.num_terminated == 16, [str(e) for e in grid.errors]
    runs = [r.metrics for r in grid]
    assert sorted(m["x"] for m in runs) == list(range(16))
    assert {m["node"] for m in runs} == {"n1", "n2"}
    assert all(m["gpu"] in ("0", "1") for m in runs)
    overlapping = [(a, b) for a, b in combinations(runs, 2)
                   if a["node"] == b["node"] and a["start"] < b["end"] and b["start"] < a["end"]]
    # 16 two-second trials on 4 GPUs: pairs must have shared a node, else nothing was checked
    assert overlapping, f"no two trials ran at the same time on one node: {runs}"
    clashes = [(a["x"], b["x"]) for a, b in overlapping if a["gpu"] == b["gpu"]]
    assert not clashes, f"trials sharing a GPU at the same time: {clashes}"


@pytest.mark.slurm
def test_sbatch_errors_are_clear(tmp_path, monkeypatch):
    monkeypatch.setenv("HPCTUNE_BACKEND", "slurm")
    bad_partition = tune.Tuner(
        trainables.quadratic, param_space={"a": 1, "b": 1},
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0,
                                  slurm=tune.SlurmConfig(partition="nosuchpartition")),
    )
    with pytest.raises(SlurmCommandError) as info:
        bad_partition.fit()
    assert "sbatch" in str(info.value) and "sinfo" in str(info.value)
    too_many_gpus = tune.Tuner(
        tune.with_resources(trainables.quadratic, {"gpu": 5}), param_space={"a": 1, "b": 1},
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0, slurm=fast_slurm()),
    )
    with pytest.raises(SlurmCommandError) as info:
        too_many_gpus.fit()
    assert "with_resources" in str(info.value) or "GRES" in str(info.value)


@pytest.mark.slurm
def test_arrays_are_split_to_the_clusters_max_array_size(tmp_path, monkeypatch, slurm_lab):
    """With MaxArraySize=4 in slurm.conf, 10 trials go out as 3 arrays (4 + 4 + 2)."""
    monkeypatch.setenv("HPCTUNE_BACKEND", "slurm")
    with slurm_lab.config(max_array_size=4):
        grid = tune.Tuner(
            trainables.quadratic,
            param_space={"a": tune.grid_search(list(range(10))), "b": 0, "steps": 1},
            tune_config=tune.TuneConfig(reuse_actors=False),  # arrays of one job per trial
            run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0, slurm=fast_slurm()),
        ).fit()
    assert grid.num_terminated == 10, [str(e) for e in grid.errors]
    jobs = sorted((r.config["a"], r.metrics["slurm_job_id"].split("_")) for r in grid)
    arrays = sorted({array for _, (array, _) in jobs}, key=int)
    # in trial order: 4 trials in the first array, 4 in the second, 2 in the third
    assert [(a, arrays.index(array), int(task)) for a, (array, task) in jobs] == [
        (a, a // 4, a % 4) for a in range(10)]
