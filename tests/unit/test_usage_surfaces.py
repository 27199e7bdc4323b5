"""Where the allocation used is shown (issue 27): ``hpctune status`` (footer), ``trials``
(columns), ``ls`` (a column), ``ResultGrid.get_dataframe()``, the HDF5 export and the report."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import hpctune as tune
from hpctune import TuneConfig, Tuner
from hpctune.accounting.usage_record import read_usage
from tests.unit.cli_env import cli_env, run  # noqa: F401 - cli_env is autouse


def two_cpus(config):
    time.sleep(0.6)
    tune.report({"loss": config["a"]})


@pytest.fixture
def experiment(tmp_path):
    grid = Tuner(
        tune.with_resources(two_cpus, {"cpu": 2}),
        param_space={"a": tune.grid_search([1, 2])},
        tune_config=TuneConfig(metric="loss", mode="min"),
        run_config=tune.RunConfig(storage_path=str(tmp_path / "results"), name="acct", verbose=0),
        backend="local",
    ).fit()
    return grid


def test_every_surface_shows_what_each_trial_used(capsys, experiment, tmp_path):
    record = read_usage(experiment.experiment_path)
    per_trial = {tid: u.used.cpu for tid, u in record.usage.trials.items()}
    assert len(per_trial) == 2 and all(
        2 * 0.5 / 3600 < cpu < 2 * 5 / 3600 for cpu in per_trial.values()
    )
    assert record.usage.used.cpu == pytest.approx(sum(per_trial.values()))

    frame = experiment.get_dataframe()
    assert dict(zip(frame["trial_id"], frame["cpu_hours"], strict=True)) == pytest.approx(per_trial)
    assert (frame["gpu_hours"] == 0).all()

    code, out, err = run(capsys, "status", "acct", "--no-squeue")
    assert code == 0, err
    assert (
        f"Allocation used {record.usage.used.cpu:.3g} CPU-h, 0 GPU-h" in out
        and "from events" in out
    )

    code, out, _ = run(capsys, "trials", "acct")
    header, _, *rows = out.splitlines()
    assert (
        "cpu_hours" in header.split() and "gpu_hours" not in header.split()
    )  # no GPU used: no column
    column = header.split().index("cpu_hours")
    assert {row.split()[0]: float(row.split()[column]) for row in rows} == pytest.approx(
        per_trial, rel=1e-4
    )

    code, out, _ = run(capsys, "ls")
    assert f"{record.usage.used.cpu:.3g} CPU-h" in out.splitlines()[2]


def test_the_hdf5_export_and_the_report_carry_it(capsys, experiment, tmp_path):
    h5py = pytest.importorskip("h5py")
    path = experiment.to_hdf5(tmp_path / "acct.h5")
    with h5py.File(path, "r") as f:
        summary = f["summary"][:]
        usage = json.loads(f.attrs["usage"])
    assert sorted(summary["cpu_hours"]) == pytest.approx(
        sorted(u.used.cpu for u in read_usage(experiment.experiment_path).usage.trials.values())
    )
    assert usage["used"]["cpu_hours"] == pytest.approx(float(summary["cpu_hours"].sum()))
    pytest.importorskip("plotly")
    code, out, err = run(capsys, "report", "acct", "--output", str(tmp_path / "r.html"))
    assert code == 0, err
    assert "Allocation used" in (tmp_path / "r.html").read_text()


def test_a_damaged_usage_record_is_named_and_ls_goes_on(capsys, experiment):
    (Path(experiment.experiment_path) / "usage.json").write_text('{"v": 1, "used": 3}')
    code, out, _ = run(capsys, "ls")
    assert code == 0 and " ? " in out.splitlines()[2]
    code, _, err = run(capsys, "status", "acct", "--no-squeue")
    assert code != 0 and "usage.json is not an hpctune usage record" in err and "remove it" in err


def test_the_live_tables_footer_says_what_was_used(capsys, tmp_path):
    """The driver's own table (``Controller.view()``): its last report ends with the allocation."""
    Tuner(tune.with_resources(two_cpus, {"cpu": 2}), param_space={"a": tune.grid_search([1])},
          tune_config=TuneConfig(metric="loss", mode="min", cpu_hours_budget=5),
          run_config=tune.RunConfig(storage_path=str(tmp_path / "live"), name="live", verbose=1),
          backend="local").fit()
    out = capsys.readouterr().out
    final = out[out.rindex("== Status =="):]
    assert "Allocation used" in final and "Allocation budget: 5 CPU-hours" in final, final
