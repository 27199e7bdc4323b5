"""HDF5 export: every reported value of every trial is in the file, aligned by result, with
the experiment's settings, each trial's status, jobs, config and lineage, and a summary table;
``hpctune export`` writes the same from the directory alone."""

from __future__ import annotations

import json
import math
import stat
from pathlib import Path

import pytest

from hpctune.cli.main import main as cli_main
from hpctune.results.grid import ResultGrid
from hpctune.results.hdf5 import write_hdf5
from hpctune.results.report.data import load_experiment
from hpctune.storage.events import EventKind, new_event
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.result_log import ResultLog

h5py = pytest.importorskip("h5py")


def results_of(index: int) -> list[dict]:
    """Results with every kind of value: nested, late keys, strings, None, NaN, lists, ints."""
    out = []
    for step in range(1, 5):
        result = {"training_iteration": step, "timestamp": 1_700_000_000 + step, "hostname": "n1",
                  "loss": 1.0 / (step + index), "val": {"acc": 0.5 + step / 10}, "count": step * 3,
                  "done": False}
        if step >= 3:
            result["late"] = "yes" if step == 3 else None
        if step == 2:
            result["loss"] = float("nan")
            result["hist"] = [1, 2, 3]
        out.append(result)
    return out


def make_experiment(root: Path, trials: int = 3) -> ExperimentDir:
    exp = ExperimentDir(root)
    exp.create()
    exp.write_experiment({"metric": "loss", "mode": "min", "hpctune_version": "0.1.0"})
    for index in range(trials):
        trial_id = f"abc_{index:05d}"
        config = {"lr": 0.1 * (index + 1), "opt": {"name": "adam"}, "flag": index % 2 == 0}
        exp.write_params(trial_id, config)
        exp.write_trial_meta(trial_id, {"experiment_tag": f"{index}_lr", "resources": {"cpu": 1, "gpu": 1}})
        log = ResultLog(exp.result_log_path(trial_id))
        job = f"{100 + index}_0"
        log.append(new_event(EventKind.START, slurm_job_id=job, hostname="n1", time=1000.0))
        for result in results_of(index):
            if result["training_iteration"] == 3 and index == 1:  # preempted, then a second job
                log.append(new_event(EventKind.PREEMPTED, slurm_job_id=job, time=1001.0))
                log.append(new_event(EventKind.START, slurm_job_id=f"200_{index}", hostname="n2", time=1010.0))
                job = f"200_{index}"
            log.append(new_event(EventKind.RESULT, result=result, slurm_job_id=job, time=1002.0))
        if index == 2:
            log.append(new_event(EventKind.EXPLOITED, donor="abc_00000", donor_iteration=4, step=4,
                                 new_config={"lr": 0.2}, time=1003.0))
        end = new_event(EventKind.ERROR, error="boom") if index == 2 else new_event(EventKind.COMPLETE)
        log.append({**end, "slurm_job_id": job, "time": 1020.0})
    return exp


def stored(dataset, i):
    value = dataset[i]
    return value.decode() if isinstance(value, bytes) else value


def same(expected, value) -> bool:
    if expected is None:
        return value == "" or (isinstance(value, float) and math.isnan(value))
    if isinstance(expected, float) and math.isnan(expected):
        return math.isnan(value)
    if isinstance(expected, (list, dict)):
        return json.loads(value) == expected
    if isinstance(expected, str):
        return value == expected
    return float(value) == float(expected)


def check_round_trip(path: Path, exp: ExperimentDir) -> None:
    from hpctune.core.metrics import flatten

    with h5py.File(path, "r") as f:
        assert f.attrs["metric"] == "loss" and f.attrs["mode"] == "min"
        assert f.attrs["format_version"] == 1 and f.attrs["hpctune_version"]
        assert set(f["trials"]) == set(exp.trial_ids())
        for trial_id in exp.trial_ids():
            group = f["trials"][trial_id]
            index = int(trial_id[-1])
            expected = results_of(index)
            for i, result in enumerate(expected):
                for key in flatten(result):
                    assert same(result[key] if key in result else flatten(result)[key],
                                stored(group["metrics"][key], i)), (trial_id, key, i)
            lengths = {len(d) for d in group["metrics"].values() if hasattr(d, "shape")}
            assert lengths == {4}  # aligned: one row per result
            assert list(group["metrics"]["training_iteration"][:]) == [1, 2, 3, 4]
            assert group["metrics"]["val/acc"].compression == "gzip" and group["metrics"]["val/acc"].chunks
            assert json.loads(group.attrs["config"])["opt"] == {"name": "adam"}
            assert group.attrs["config/lr"] == pytest.approx(0.1 * (index + 1))
            assert group.attrs["config/opt/name"] == "adam"
        assert json.loads(f["trials/abc_00001"].attrs["slurm_job_ids"]) == ["101_0", "200_1"]
        assert f["trials/abc_00002"].attrs["status"] == "ERROR"
        (exploit,) = json.loads(f["trials/abc_00002"].attrs["lineage"])
        assert exploit["donor"] == "abc_00000" and json.loads(f["trials/abc_00000"].attrs["lineage"]) == []
        summary = f["summary"][:]
        assert [s.decode() for s in summary["trial_id"]] == exp.trial_ids()
        assert list(summary["num_results"]) == [4, 4, 4]
        assert summary["loss/best"][0] == summary["loss/last"][0] == pytest.approx(0.25)  # NaN left out
        assert list(summary["config/lr"]) == pytest.approx([0.1, 0.2, 0.3])


def test_every_reported_value_is_in_the_file(tmp_path):
    exp = make_experiment(tmp_path / "exp")
    path = write_hdf5(load_experiment(exp.root), tmp_path / "out.h5")
    check_round_trip(path, exp)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not list(tmp_path.glob(".out.h5.*"))  # written to a temporary name, then renamed


def test_result_grid_to_hdf5_and_the_cli_write_the_same(tmp_path, capsys):
    exp = make_experiment(tmp_path / "exp")
    check_round_trip(ResultGrid.from_path(exp.root).to_hdf5(tmp_path / "grid.h5"), exp)
    assert cli_main(["export", str(exp.root), "--hdf5", str(tmp_path / "cli.h5")]) == 0
    assert "3 trials of exp" in capsys.readouterr().out
    check_round_trip(tmp_path / "cli.h5", exp)


def test_pandas_reads_the_summary_and_a_trials_curve(tmp_path):
    """The snippet of docs/api.md (HDF5 export), as written there."""
    import pandas as pd

    exp = make_experiment(tmp_path / "exp")
    path = write_hdf5(load_experiment(exp.root), tmp_path / "out.h5")
    with h5py.File(path, "r") as f:
        summary = pd.DataFrame(f["summary"][:])
        summary = summary.apply(lambda c: c.str.decode("utf-8") if c.dtype == object else c)
        metrics = f["trials"][summary["trial_id"][0]]["metrics"]
        curve = pd.DataFrame({"iteration": metrics["training_iteration"][:], "loss": metrics["loss"][:]})
    assert list(summary["status"]) == ["TERMINATED", "TERMINATED", "ERROR"]
    assert len(curve) == 4 and curve["loss"][0] == 1.0


def test_a_missing_output_directory_is_a_clear_error(tmp_path, capsys):
    exp = make_experiment(tmp_path / "exp", trials=1)
    assert cli_main(["export", str(exp.root), "--hdf5", str(tmp_path / "nope" / "x.h5")]) == 1
    assert "does not exist: create it" in capsys.readouterr().err
