"""Ray's smaller cases, as the reference phrases them: a one-bundle PlacementGroupFactory as a
trial's request, and TUNE_PRINT_ALL_TRIAL_ERRORS."""

import io

from hpctune import tune
from hpctune.core.resources import resources_for
from hpctune.tune.callback import TrialErrorPrinter, progress_callbacks
from hpctune.tune.experiment.trial import Trial


def objective(config):
    tune.report({"score": 1})


def test_with_resources_takes_a_placement_group_factory_of_one_bundle():
    """Ray: ``tune.with_resources(trainable, tune.PlacementGroupFactory([{"CPU": 2, "GPU": 1}]))``."""
    trainable = tune.with_resources(objective, tune.PlacementGroupFactory([{"CPU": 2, "GPU": 1}]))
    assert resources_for(trainable, {}) == {"cpu": 2, "gpu": 1}


def test_default_resource_request_may_return_a_placement_group_factory():
    """Ray: a Trainable's ``default_resource_request(config)`` returns a PlacementGroupFactory."""

    class Wide(tune.Trainable):
        @classmethod
        def default_resource_request(cls, config):
            return tune.PlacementGroupFactory([{"CPU": config["cpus"]}])

        def step(self):
            return {"score": 1}

    assert resources_for(Wide, {"cpus": 3}) == {"cpu": 3, "gpu": 0}


def test_print_all_trial_errors_prints_each_error_with_its_traceback(monkeypatch):
    """Ray: "TUNE_PRINT_ALL_TRIAL_ERRORS: If 1, will print all trial errors as they come up"."""
    monkeypatch.setenv("TUNE_PRINT_ALL_TRIAL_ERRORS", "1")
    printers = [c for c in progress_callbacks(verbose=1) if isinstance(c, TrialErrorPrinter)]
    assert len(printers) == 1
    out = io.StringIO()
    printers[0].out = out
    trial = Trial("t_00000", {}, "0", "/tmp/t", trial_name="lr=0.1")
    trial.error = "Traceback (most recent call last):\n  File \"x.py\"\nValueError: bad lr"
    printers[0].on_trial_error(0, [trial], trial)
    assert out.getvalue() == ("Trial lr=0.1 errored:\nTraceback (most recent call last):\n"
                              "  File \"x.py\"\nValueError: bad lr\n")


def test_without_the_variable_errors_stay_in_the_table(monkeypatch):
    monkeypatch.delenv("TUNE_PRINT_ALL_TRIAL_ERRORS", raising=False)
    assert not [c for c in progress_callbacks(verbose=1) if isinstance(c, TrialErrorPrinter)]
    monkeypatch.setenv("TUNE_PRINT_ALL_TRIAL_ERRORS", "0")
    assert not [c for c in progress_callbacks(verbose=1) if isinstance(c, TrialErrorPrinter)]


def fails(config):
    raise ValueError("bad lr 0.5")


def test_a_run_prints_the_failing_trials_traceback_as_it_happens(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HPCTUNE_BACKEND", "local")
    monkeypatch.setenv("TUNE_PRINT_ALL_TRIAL_ERRORS", "1")
    grid = tune.Tuner(fails, run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0)).fit()
    assert grid.num_errors == 1
    err = capsys.readouterr().err
    assert "errored:\nTraceback (most recent call last):" in err and "ValueError: bad lr 0.5" in err
