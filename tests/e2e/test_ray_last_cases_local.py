"""Ray's last smaller cases of issue 22 run as a Ray user writes them, as local processes (the
PAUSE of a function trainable also on the Slurm lab, where the worker is the same):
``Result.path`` under ``trial_dirname_creator``, ``Tuner.restore(path, trainable,
param_space=...)``, a PAUSE at a result that carries no checkpoint, and the reproducibility
recipe with PBT."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from hpctune import tune
from hpctune.storage.checkpoints import checkpoint_dir_name
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.result_log import read_events


@pytest.fixture(autouse=True)
def local_backend(monkeypatch):
    monkeypatch.setenv("HPCTUNE_BACKEND", "local")


def named(config):
    tune.report({"acc": config["x"] / 10})


# -- Result.path under trial_dirname_creator ------------------------------------------------------
def test_result_path_is_the_directory_trial_dirname_creator_named(tmp_path):
    """Ray: ``trial_dirname_creator`` "generates the trial directory name"; the trial's path,
    Result.path, is that directory under the experiment's."""
    tuner = tune.Tuner(
        named, param_space={"x": tune.grid_search([1, 2])},
        tune_config=tune.TuneConfig(trial_dirname_creator=lambda t: f"trial_x={t.config['x']}",
                                    metric="acc", mode="max"),
        run_config=tune.RunConfig(name="exp", storage_path=str(tmp_path), verbose=0),
    )
    grid = tuner.fit()
    root = tmp_path / "exp"
    expected = {1: str(root / "trial_x=1"), 2: str(root / "trial_x=2")}
    for results in (grid, tune.ResultGrid.from_path(root), tune.Tuner.restore(str(root), named).get_results()):
        assert {r.config["x"]: r.path for r in results} == expected
        assert all((Path(r.path) / "result.jsonl").exists() and r.log_dir == Path(r.path) for r in results)
        assert {r.config["x"]: r.metrics_dataframe["acc"].tolist() for r in results} == {1: [0.1], 2: [0.2]}
    analysis = tune.ExperimentAnalysis(str(root))
    assert analysis.get_best_logdir("acc", "max") == expected[2]
    assert sorted(analysis.dataframe()["logdir"]) == sorted(expected.values())
    assert sorted(analysis.get_all_configs()) == sorted(expected.values())
    assert analysis.get_best_checkpoint(expected[2], "acc", "max") is None  # found by its named path


def test_without_a_dirname_creator_result_path_is_the_trials_directory(tmp_path):
    grid = tune.Tuner(named, param_space={"x": 1},
                      run_config=tune.RunConfig(name="exp", storage_path=str(tmp_path), verbose=0)).fit()
    assert Path(grid[0].path).parent == tmp_path / "exp" / "trials"


# -- a PAUSE at a result that carries no checkpoint ------------------------------------------------
def checkpoints_every_second(config):
    """Ray's function API: ``train.get_checkpoint()`` to resume, a checkpoint every second
    iteration (so HyperBand's milestones 1 and 3 come without one)."""
    start = tune.get_checkpoint()
    first = int(Path(start.path, "i").read_text()) if start else 0
    for i in range(first + 1, 10):
        if i % 2 == 0:
            with tempfile.TemporaryDirectory() as d:
                Path(d, "i").write_text(str(i))
                tune.report({"loss": config["c"] + 1.0 / i}, checkpoint=tune.Checkpoint.from_directory(d))
        else:
            tune.report({"loss": config["c"] + 1.0 / i})


class SavesWhenAsked(tune.Trainable):
    """Ray's class API without checkpoint_frequency: Tune saves it when it pauses it."""

    def setup(self, config):
        self.i = 0

    def step(self):
        self.i += 1
        return {"loss": self.config["c"] + 1.0 / self.i}

    def save_checkpoint(self, checkpoint_dir):
        Path(checkpoint_dir, "i").write_text(str(self.i))

    def load_checkpoint(self, checkpoint_dir):
        self.i = int(Path(checkpoint_dir, "i").read_text())


def runs(path: Path, trial_id: str) -> list[tuple[int, list[int], str]]:
    """The trial's runs: (iteration restored, iterations reported, how the run ended)."""
    found = []
    for event in read_events(ExperimentDir(path).result_log_path(trial_id)):
        kind = event["event"]
        if kind == "start":
            found.append((event.get("restored_iteration", 0), [], ""))
        elif kind == "result" and found:
            found[-1][1].append(event["result"]["training_iteration"])
        elif found and not found[-1][2] and kind in ("paused", "complete", "stopped", "error"):
            found[-1] = (*found[-1][:2], kind)
    return found


def hyperband_run(tmp_path, trainable):
    """max_t=3, eta=3: trials c=0, 1 form a bracket with its milestone at 3; trials c=2, 3, 4 one
    with its milestones at 1, then 2."""
    scheduler = tune.schedulers.HyperBandScheduler(max_t=3, reduction_factor=3)
    grid = tune.Tuner(trainable, param_space={"c": tune.grid_search([0.0, 1.0, 2.0, 3.0, 4.0])},
                      tune_config=tune.TuneConfig(metric="loss", mode="min", scheduler=scheduler),
                      run_config=tune.RunConfig(storage_path=str(tmp_path), name="exp", verbose=0,
                                                slurm=tune.SlurmConfig(poll_interval_s=1.0, time_min=10))).fit()
    assert grid.num_errors == 0, [str(e) for e in grid.errors]
    return grid


@pytest.mark.parametrize("backend", ["local", pytest.param("slurm", marks=pytest.mark.slurm)])
def test_a_paused_function_trainable_stops_at_the_result_and_resumes_from_its_last_checkpoint(
        tmp_path, monkeypatch, backend, request):
    """Ray pauses a function trainable at the result the scheduler judged and restores it from
    its latest checkpoint (``train.get_checkpoint()``): iterations after it run again."""
    if backend == "slurm":
        request.getfixturevalue("slurm_lab")
    monkeypatch.setenv("HPCTUNE_BACKEND", backend)
    grid = hyperband_run(tmp_path, checkpoints_every_second)
    paused = 0
    for result in grid:
        trial_runs = runs(tmp_path / "exp", result.metrics["trial_id"])
        for (_, iterations, end), following in zip(trial_runs, trial_runs[1:] + [None], strict=True):
            if end != "paused":
                continue
            paused += 1
            milestones = {3} if result.config["c"] < 2 else {1, 2}
            assert iterations and iterations[-1] in milestones, trial_runs  # no iteration past it
            if following is not None:  # resumed: from the latest checkpoint, an even iteration
                assert following[0] == iterations[-1] - iterations[-1] % 2, trial_runs
                assert following[1][0] == following[0] + 1, trial_runs
    assert paused >= 3
    logs = "".join(p.read_text(errors="replace") for p in sorted((tmp_path / "exp" / "jobs").iterdir()))  # one log per job
    assert "was paused at iteration 1, whose result carried no checkpoint: it resumes from the start" in logs
    assert "was paused at iteration 3, whose result carried no checkpoint: it resumes from its checkpoint of iteration 2" in logs


def test_a_paused_class_trainable_is_saved_at_the_result_and_resumes_there(tmp_path):
    """Ray saves a class trainable when it pauses it (``save_checkpoint``) and restores that."""
    grid = hyperband_run(tmp_path, SavesWhenAsked)
    resumed = 0
    for result in grid:
        trial_runs = runs(tmp_path / "exp", result.metrics["trial_id"])
        for (_, iterations, end), following in zip(trial_runs, trial_runs[1:] + [None], strict=True):
            if end == "paused":
                assert iterations[-1] in ({3} if result.config["c"] < 2 else {1, 2}), trial_runs
                saved = Path(result.path, checkpoint_dir_name(iterations[-1]))
                assert Path(saved, "i").read_text() == str(iterations[-1])
                if following is not None:
                    resumed += 1
                    assert following[0] == iterations[-1] and following[1][0] == iterations[-1] + 1
    assert resumed >= 1


# -- Tuner.restore(path, trainable, param_space=...) ------------------------------------------------
class ModelHandle:
    """Stands for a Ray object reference: it points to an object of the session that made it."""

    def __init__(self, name: str, session: int):
        self.name, self.session = name, session


def uses_model(config):
    """Ray's example: each trial uses one of several large pre-trained models, by reference."""
    handle = config["model"]
    if handle.session != int(os.environ["MODEL_SESSION"]):
        raise RuntimeError(f"the object {handle.name} of session {handle.session} no longer exists")
    if handle.name == "b" and os.environ["MODEL_SESSION"] == "1":
        raise RuntimeError("node lost")  # the first session ends with trial b unfinished
    tune.report({"score": config["lr"], "model": handle.name, "session": handle.session})


def models(session: int) -> dict:
    return {"model": tune.grid_search([ModelHandle("a", session), ModelHandle("b", session)]), "lr": 0.1}


@pytest.fixture
def first_session(tmp_path, monkeypatch):
    """An experiment whose trial b errored in session 1; then session 2 begins."""
    monkeypatch.setenv("MODEL_SESSION", "1")
    grid = tune.Tuner(uses_model, param_space=models(1),
                      run_config=tune.RunConfig(name="exp", storage_path=str(tmp_path), verbose=0)).fit()
    assert sorted((r.config["model"].name, r.status) for r in grid) == [("a", "TERMINATED"), ("b", "ERROR")]
    monkeypatch.setenv("MODEL_SESSION", "2")
    return tmp_path / "exp"


def test_restore_with_param_space_re_specifies_the_objects(first_session):
    """Ray: "To restore, we just need to re-specify the param_space via Tuner.restore"."""
    grid = tune.Tuner.restore(str(first_session), trainable=uses_model, resume_errored=True,
                              param_space=models(2)).fit()
    assert grid.num_errors == 0, [str(e) for e in grid.errors]
    by_name = {r.config["model"].name: r for r in grid}
    assert by_name["b"].metrics["session"] == 2  # it ran with the new object
    assert {r.config["model"].session for r in grid} == {2}  # every trial's config refers to it
    again = tune.ResultGrid.from_path(first_session)  # params.pkl holds it too
    assert {r.config["model"].session for r in again if r.config["model"].name == "b"} == {2}


def test_restore_without_param_space_keeps_the_old_objects(first_session):
    """Ray: without it, "attempting to retrieve these objects will not work properly"."""
    grid = tune.Tuner.restore(str(first_session), trainable=uses_model, resume_errored=True).fit()
    assert grid.num_errors == 1 and "of session 1 no longer exists" in str(grid.errors[0])


@pytest.mark.parametrize(("space", "named"), [
    ({"model": tune.grid_search([ModelHandle("a", 2), ModelHandle("b", 2)]), "lr": 0.2}, "'lr': 0.1 became 0.2"),
    ({"model": tune.grid_search([ModelHandle("a", 2)]), "lr": 0.1}, "changes 'model'"),
    ({"model": tune.grid_search([ModelHandle("a", 2), ModelHandle("b", 2)]), "lr": 0.1, "wd": 1}, "keys"),
    ({"model": tune.grid_search([ModelHandle("a", 2), 3]), "lr": 0.1}, "became 3"),
])
def test_restore_refuses_a_param_space_that_changes_more_than_objects(first_session, space, named):
    """Ray: "It should not be used to introduce new hyperparameters to tune" (a ValueError)."""
    with pytest.raises(ValueError, match="Tuner.restore\\(param_space=...\\) changes") as error:
        tune.Tuner.restore(str(first_session), trainable=uses_model, param_space=space)
    assert named in str(error.value)


# -- the reproducibility recipe with PBT ------------------------------------------------------------
def perturbed_run(tmp_path, name: str) -> list[tuple]:
    """Ray's FAQ: ``random.seed(1234)`` and ``np.random.seed(5678)`` on the driver, then the
    Tuner with PBT (no ``seed=``); the trainable is deterministic. The perturbations, by trial."""
    import random

    import numpy as np

    from tests.e2e import trainables

    random.seed(1234)
    np.random.seed(5678)
    pbt = tune.schedulers.PopulationBasedTraining(
        time_attr="training_iteration", perturbation_interval=3, quantile_fraction=0.5, synch=True,
        hyperparam_mutations={"lr": tune.uniform(0.01, 1.0)})
    grid = tune.Tuner(
        trainables.lr_schedule_problem,
        param_space={"lr": tune.grid_search([0.02, 0.1, 0.4, 0.9]), "steps": 7, "sleep": 0.0},
        tune_config=tune.TuneConfig(metric="score", mode="max", scheduler=pbt),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0)).fit()
    assert grid.num_errors == 0, [str(e) for e in grid.errors]
    tag_of = {r.trial_id: r.metrics["experiment_tag"].split("_")[0] for r in grid}
    exp = ExperimentDir(tmp_path / name)
    found = []
    for result in grid:
        for event in read_events(exp.result_log_path(result.trial_id)):
            if event["event"] == "exploited":
                found.append((tag_of[result.trial_id], event.get("step"), tag_of[event["donor"]],
                              round(event["new_config"]["lr"], 12)))
    return sorted(found)


def test_the_reproducibility_recipe_gives_pbt_the_same_perturbations(tmp_path):
    first = perturbed_run(tmp_path, "first")
    assert len(first) >= 2, first
    assert perturbed_run(tmp_path, "second") == first
