"""Comet (the real comet_ml, offline experiments in the trial directories) and Aim (its ``Run``
API: aim cannot be installed beside filelock 4, see hpctune/tune/logger/aim.py) loggers."""

from __future__ import annotations

import json
import os
import sys
import types
import zipfile
from pathlib import Path

import pytest

from hpctune import tune
from tests.unit.test_loggers import feed, make_trial, result, run_trial_through


def comet_messages(trial_dir: Path) -> tuple[dict, list[dict]]:
    """(experiment.json, messages) of the one offline experiment archived in ``trial_dir``."""
    (archive,) = trial_dir.glob("*.zip")
    with zipfile.ZipFile(archive) as z:
        return (json.loads(z.read("experiment.json")),
                [json.loads(line) for line in z.read("messages.json").splitlines()])


def of_type(messages: list[dict], kind: str) -> list[dict]:
    return [m["payload"] for m in messages if m["type"] == kind]


def test_comet_logger_writes_offline_experiments_in_the_trial_directories(tmp_path, monkeypatch):
    from hpctune.tune.logger.comet import CometLoggerCallback

    monkeypatch.delenv("COMET_OFFLINE_DIRECTORY", raising=False)
    monkeypatch.delenv("COMET_ERROR_TRACKING_ENABLE", raising=False)
    logger = CometLoggerCallback(online=False, tags=["hpc"], project_name="sweep", display_summary_level=0)
    ok, bad = make_trial(tmp_path, "t_00000"), make_trial(tmp_path, "t_00001", {"lr": 0.2})
    run_trial_through(logger, ok, [result(1, loss=0.5, val={"acc": 0.7}, trial_id="t_00000", hostname="n1"),
                                   result(2, loss=0.25, done=True)])
    run_trial_through(logger, bad, [result(1, loss=1.0)], failed=True)
    assert logger._experiments == {}  # each ended with its trial

    experiment, messages = comet_messages(Path(ok.path))
    assert (experiment["project_name"], experiment["tags"]) == ("sweep", ["hpc"])
    others = {m["key"]: m["value"] for m in of_type(messages, "log_other")}
    assert others["Name"] == "t_00000" and others["Created from"] == "hpctune"
    assert others["trial_id"] == "t_00000"  # Ray's identity keys are "Other", not metrics
    params = {m["param"]["paramName"]: m["param"]["paramValue"] for m in of_type(messages, "parameter_msg")
              if m["param"]["source"] == "manual"}
    assert params == {"lr": 0.1, "opt/name": "adam"}  # logged once: the config did not change
    metrics = [(m["metric"]["metricName"], m["metric"]["step"], m["metric"]["metricValue"])
               for m in of_type(messages, "metric_msg")]
    assert [m for m in metrics if m[0] in ("loss", "val/acc")] == [("loss", 1, 0.5), ("val/acc", 1, 0.7),
                                                                  ("loss", 2, 0.25)]
    names = {m[0] for m in metrics}
    assert not names & {"done", "hostname", "trial_id", "config/lr", "lr"}
    assert {"key": "hostname", "value": "n1"} in [m["system_info"] for m in of_type(messages, "system_info")]
    assert comet_messages(Path(bad.path))[0]["project_name"] == "sweep"
    assert os.environ["COMET_ERROR_TRACKING_ENABLE"] == "false"  # offline: no report to Sentry either


def test_comet_logger_needs_comet_ml(monkeypatch):
    from hpctune.tune.logger.comet import CometLoggerCallback

    monkeypatch.setitem(sys.modules, "comet_ml", None)
    with pytest.raises(tune.HpctuneError, match=r"needs comet_ml: pip install 'hpctune\[comet\]'"):
        CometLoggerCallback().setup()


# -- Aim: its Run API recorded ----------------------------------------------------------------------
class FakeAimRun:
    """What AimLoggerCallback uses of ``aim.Run``: items, ``track`` and ``close``."""

    made: list[FakeAimRun] = []

    def __init__(self, **options):
        self.options, self.items, self.tracked, self.closed = options, {}, [], False
        FakeAimRun.made.append(self)

    def __setitem__(self, key, value):
        self.items[key] = value

    def track(self, value, name, step=None, epoch=None, context=None):
        self.tracked.append((name, value, step, epoch, context))

    def close(self):
        self.closed = True


@pytest.fixture
def fake_aim(monkeypatch):
    FakeAimRun.made = []
    monkeypatch.setitem(sys.modules, "aim", types.SimpleNamespace(Run=FakeAimRun))
    return FakeAimRun.made


def test_aim_logger_tracks_numbers_under_rays_names_with_the_config_as_hparams(tmp_path, fake_aim):
    from hpctune.tune.logger.aim import AimLoggerCallback

    trial = make_trial(tmp_path / "my-exp")
    logger = AimLoggerCallback()
    run_trial_through(logger, trial, [result(1, loss=0.5, val={"acc": 0.7}, note="x", nan=float("nan"),
                                             epoch=3, context={"subset": "val"}),
                                      result(2, loss=0.25, timesteps_total=40, ok=True)])
    (run,) = fake_aim
    assert run.options == {"repo": str(tmp_path / "my-exp"), "experiment": "my-exp",
                           "capture_terminal_logs": False, "system_tracking_interval": None,
                           "log_system_params": False}
    assert run.items == {"trial_id": "t_00000", "trial_log_dir": trial.path,
                         "hparams": {"lr": 0.1, "opt/name": "adam"}}
    assert run.tracked == [("ray/tune/loss", 0.5, 1, 3, {"subset": "val"}),
                           ("ray/tune/val/acc", 0.7, 1, 3, {"subset": "val"}),
                           ("ray/tune/loss", 0.25, 40, None, None),
                           ("ray/tune/timesteps_total", 40, 40, None, None)]
    assert run.closed


def test_aim_logger_arguments_and_a_missing_library(tmp_path, fake_aim, monkeypatch):
    from hpctune.tune.logger.aim import AimLoggerCallback

    logger = AimLoggerCallback(repo=str(tmp_path / "repo"), experiment_name="e", metrics=["loss"],
                               capture_terminal_logs=True)
    trial = make_trial(tmp_path)
    logger.on_trial_start(iteration=1, trials=[trial], trial=trial)
    feed(logger, trial, [result(1, loss=0.5, acc=0.9)])
    (run,) = fake_aim
    assert (run.options["repo"], run.options["experiment"], run.options["capture_terminal_logs"]) == (
        str(tmp_path / "repo"), "e", True)
    assert [t[0] for t in run.tracked] == ["ray/tune/loss"]
    with pytest.raises(tune.HpctuneError, match="tracks nothing"):
        AimLoggerCallback(metrics=[])
    monkeypatch.setitem(sys.modules, "aim", None)
    with pytest.raises(tune.HpctuneError, match=r"needs aim.*filelock<4"):
        AimLoggerCallback().setup()
