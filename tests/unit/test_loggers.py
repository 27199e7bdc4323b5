"""The driver's loggers: Ray's LoggerCallback hooks, result.json / progress.csv / TensorBoard
files written in batches per driver step, every CSV column kept, nothing written twice by a
restored driver, private modes, and the default loggers the Tuner adds."""

from __future__ import annotations

import csv
import json
import os
import stat
import struct
from pathlib import Path

import pytest

from hpctune import tune
from hpctune.tune.experiment.trial import Trial
from hpctune.tune.logger import (
    CSVLoggerCallback,
    JsonLoggerCallback,
    LoggerCallback,
    TBXLoggerCallback,
    auto_loggers,
)
from tests.conftest import wait_for


def make_trial(tmp_path: Path, trial_id: str = "t_00000", config: dict | None = None) -> Trial:
    path = tmp_path / "trials" / trial_id
    path.mkdir(parents=True, mode=0o700)
    return Trial(trial_id, config if config is not None else {"lr": 0.1, "opt": {"name": "adam"}},
                 "0_lr=0.1", str(path))


def result(i: int, **metrics) -> dict:
    return {"training_iteration": i, "time_total_s": 0.5 * i, "timestamp": 1_700_000_000 + i,
            "pid": 7, **metrics}


def feed(logger, trial, results, step=True):
    for r in results:
        logger.on_trial_result(iteration=1, trials=[trial], trial=trial, result={**r, "config": trial.config})
    if step:
        logger.on_step_end(iteration=1, trials=[trial])


def json_lines(trial) -> list[dict]:
    return [json.loads(line) for line in (Path(trial.path) / "result.json").read_text().splitlines()]


def csv_rows(trial) -> tuple[list[str], list[dict]]:
    with open(Path(trial.path) / "progress.csv", newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def test_logger_callback_hooks_call_the_log_methods(tmp_path):
    calls = []

    class Recorder(LoggerCallback):
        def log_trial_start(self, trial):
            calls.append(("start", trial.trial_id))

        def log_trial_restore(self, trial):
            calls.append(("restore", trial.trial_id))

        def log_trial_save(self, trial):
            calls.append(("save", trial.trial_id))

        def log_trial_result(self, iteration, trial, result):
            calls.append(("result", iteration, result["training_iteration"]))

        def log_trial_end(self, trial, failed=False):
            calls.append(("end", failed))

    trial, logger = make_trial(tmp_path), Recorder()
    info = {"iteration": 3, "trials": [trial], "trial": trial}
    logger.on_trial_start(**info)
    logger.on_trial_result(**info, result=result(1))
    logger.on_trial_save(**info)
    logger.on_trial_restore(**info)
    logger.on_trial_complete(**info)
    logger.on_trial_error(**info)
    assert calls == [("start", "t_00000"), ("result", 3, 1), ("save", "t_00000"),
                     ("restore", "t_00000"), ("end", False), ("end", True)]
    assert isinstance(logger, tune.Callback)
    assert tune.logger.LoggerCallback is LoggerCallback


def test_json_logger_writes_in_batches_per_step_with_the_config(tmp_path):
    trial, logger = make_trial(tmp_path), JsonLoggerCallback()
    feed(logger, trial, [result(1, loss=0.5), result(2, loss=0.25, val={"acc": 0.9})], step=False)
    assert not (Path(trial.path) / "result.json").exists()  # buffered until the step ends
    logger.on_step_end(iteration=1, trials=[trial])
    lines = json_lines(trial)
    assert [r["training_iteration"] for r in lines] == [1, 2]
    assert lines[1]["val"] == {"acc": 0.9} and lines[1]["loss"] == 0.25
    assert all(r["config"] == {"lr": 0.1, "opt": {"name": "adam"}} for r in lines)
    feed(logger, trial, [result(3, loss=0.125)])
    assert [r["training_iteration"] for r in json_lines(trial)] == [1, 2, 3]
    assert stat.S_IMODE(os.stat(Path(trial.path) / "result.json").st_mode) == 0o600


def test_json_logger_shows_config_objects_as_text(tmp_path):
    trial, logger = make_trial(tmp_path, config={"act": os.path.join, "n": 2}), JsonLoggerCallback()
    feed(logger, trial, [result(1, loss=1.0)])
    assert json_lines(trial)[0]["config"] == {"act": "posixpath.join", "n": 2}


def test_csv_logger_keeps_every_column_and_flattens_nested_keys(tmp_path):
    trial, logger = make_trial(tmp_path), CSVLoggerCallback()
    feed(logger, trial, [result(1, loss=0.5)])
    feed(logger, trial, [result(2, loss=0.4)])
    feed(logger, trial, [result(3, loss=0.3, val={"acc": 0.9, "f1": 0.8}), result(4, loss=0.2, extra="x")])
    header, rows = csv_rows(trial)
    assert header == ["training_iteration", "time_total_s", "timestamp", "pid", "loss", "val/acc",
                      "val/f1", "extra"]
    assert [r["training_iteration"] for r in rows] == ["1", "2", "3", "4"]
    assert [r["val/acc"] for r in rows] == ["", "", "0.9", ""] and rows[3]["extra"] == "x"
    assert "config" not in header and not any(h.startswith("config/") for h in header)
    assert stat.S_IMODE(os.stat(Path(trial.path) / "progress.csv").st_mode) == 0o600


def test_each_trial_keeps_its_own_progress_csv(tmp_path):
    """The CSV logger keeps one path per trial: each trial's rows go to its own file, also
    after another trial ended (and its path was let go)."""
    logger = CSVLoggerCallback()
    first, second = make_trial(tmp_path, "t_00000"), make_trial(tmp_path, "t_00001")
    feed(logger, first, [result(1, loss=0.5)])
    feed(logger, second, [result(1, loss=0.7), result(2, loss=0.6)])
    logger.on_trial_complete(iteration=1, trials=[first], trial=first)
    feed(logger, second, [result(3, loss=0.4)])
    assert [r["loss"] for r in csv_rows(first)[1]] == ["0.5"]
    assert [r["loss"] for r in csv_rows(second)[1]] == ["0.7", "0.6", "0.4"]


def test_a_restored_driver_does_not_write_results_twice(tmp_path):
    """A restored driver hands on again the results read after its last snapshot."""
    trial = make_trial(tmp_path)
    first_json, first_csv = JsonLoggerCallback(), CSVLoggerCallback()
    for logger in (first_json, first_csv):
        feed(logger, trial, [result(1, loss=0.5), result(2, loss=0.4)])
    again = [result(2, loss=0.4), result(3, loss=0.3, new=1)]  # 2 was written before the "crash"
    for logger in (JsonLoggerCallback(), CSVLoggerCallback()):
        feed(logger, trial, again)
    assert [r["training_iteration"] for r in json_lines(trial)] == [1, 2, 3]
    header, rows = csv_rows(trial)
    assert [r["training_iteration"] for r in rows] == ["1", "2", "3"] and header[-1] == "new"


def test_snapshot_and_trial_end_flush_the_buffer(tmp_path):
    trial, logger = make_trial(tmp_path), JsonLoggerCallback()
    feed(logger, trial, [result(1, loss=0.5)], step=False)
    assert logger.get_state() is None  # a snapshot: what was read before it is on disk
    assert len(json_lines(trial)) == 1
    feed(logger, trial, [result(2, loss=0.4)], step=False)
    logger.on_trial_complete(iteration=1, trials=[trial], trial=trial)
    assert len(json_lines(trial)) == 2


def test_a_failing_logger_does_not_stop_the_experiment(tmp_path, capsys):
    class Broken(JsonLoggerCallback):
        def write(self, trial, results):
            raise OSError("disk full")

    trial, logger = make_trial(tmp_path), Broken()
    feed(logger, trial, [result(1)])
    feed(logger, trial, [result(2)])
    err = capsys.readouterr().err
    assert err.count("Broken could not write for trial t_00000 (OSError: disk full)") == 1


def read_tfevents(path: Path) -> list:
    """Every event of a TensorBoard file, each record's CRCs checked."""
    from tensorboardX.proto.event_pb2 import Event
    from tensorboardX.record_writer import masked_crc32c

    data, events, pos = path.read_bytes(), [], 0
    while pos < len(data):
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        assert struct.unpack("<I", data[pos + 8:pos + 12])[0] == masked_crc32c(header)
        body = data[pos + 12:pos + 12 + length]
        assert struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])[0] == masked_crc32c(body)
        events.append(Event.FromString(body))
        pos += 16 + length
    return events


def test_tbx_logger_writes_scalars_under_rays_tags_and_hparams_at_the_end(tmp_path):
    pytest.importorskip("tensorboardX")
    trial, logger = make_trial(tmp_path), TBXLoggerCallback()
    feed(logger, trial, [result(1, loss=0.5, val={"acc": 0.75}), result(2, loss=float("nan"), hist=[1, 2, 3])])
    feed(logger, trial, [result(3, loss=0.25, timesteps_total=300, name="text")])
    logger.on_trial_complete(iteration=1, trials=[trial], trial=trial)
    (path,) = Path(trial.path).glob("events.out.tfevents.*")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    events = read_tfevents(path)
    assert events[0].file_version == "brain.Event:2"
    scalars = [(e.step, v.tag, v.simple_value) for e in events[1:4] for v in e.summary.value
               if v.HasField("simple_value")]
    assert (1, "ray/tune/loss", 0.5) in scalars and (1, "ray/tune/val/acc", 0.75) in scalars
    assert (300, "ray/tune/loss", 0.25) in scalars  # timesteps_total is the step when reported
    assert not any(tag == "ray/tune/loss" and step == 2 for step, tag, _ in scalars)  # NaN left out
    tags = {tag for _, tag, _ in scalars}
    assert not tags & {"ray/tune/training_iteration", "ray/tune/pid", "ray/tune/timestamp",
                       "ray/tune/time_total_s", "ray/tune/name"}
    assert any(v.tag == "ray/tune/hist" and v.HasField("histo") for v in events[2].summary.value)
    hparam_tags = [v.tag for e in events[4:] for v in e.summary.value]
    assert hparam_tags == ["_hparams_/experiment", "_hparams_/session_start_info",
                           "_hparams_/session_end_info"]
    start = events[5].summary.value[0].metadata.plugin_data.content
    assert b"opt/name" in start and b"adam" in start


def test_default_loggers_follow_rays_rules(monkeypatch):
    kinds = lambda loggers: [type(c).__name__ for c in loggers]  # noqa: E731
    monkeypatch.delenv("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", raising=False)
    assert kinds(auto_loggers([]))[:1] == ["CSVLoggerCallback"]  # result.json only when asked for
    assert kinds(auto_loggers([CSVLoggerCallback()]))[:1] != ["CSVLoggerCallback"]
    assert kinds(auto_loggers([JsonLoggerCallback()]))[0] == "CSVLoggerCallback"
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    assert kinds(auto_loggers([])) == ["CSVLoggerCallback"]
    monkeypatch.setenv("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    assert auto_loggers([]) == []


def test_tfevents_encoding_matches_tensorboardx():
    """The driver encodes TensorBoard's messages itself (no tensorboardX import, which loads
    torch): tensorboardX decodes them to what its own writer makes."""
    pytest.importorskip("tensorboardX")
    from tensorboardX.proto.event_pb2 import Event
    from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData
    from tensorboardX.proto.summary_pb2 import Summary
    from tensorboardX.record_writer import masked_crc32c
    from tensorboardX.summary import hparams

    from hpctune.tune.logger import tfevents

    for data in (b"", b"a", bytes(range(256)) * 3):
        assert tfevents._masked(data) == masked_crc32c(data)
        assert tfevents._crc32c_python(data) == tfevents._crc32c(data)
    for size in (16, 17, 23, 24, 25, 16, 17):  # a record's length and its CRC (kept by length)
        record = tfevents.record(bytes(range(size)))
        assert struct.unpack("<Q", record[:8])[0] == size
        assert struct.unpack("<I", record[8:12])[0] == masked_crc32c(record[:8])
        assert struct.unpack("<I", record[-4:])[0] == masked_crc32c(record[12:-4]) and len(record) == size + 16
    mine = Event.FromString(tfevents.event(12.5, 7, [tfevents.scalar("ray/tune/x", 0.25)]))
    assert mine == Event(wall_time=12.5, step=7, summary=Summary(value=[
        Summary.Value(tag="ray/tune/x", simple_value=0.25)]))
    assert Event.FromString(tfevents.event(1.0, -3, [])).step == -3
    params = {"lr": 0.1, "opt": "adam", "nesterov": True, "layers": 4}
    theirs = hparams(hparam_dict=params, metric_dict={"ray/tune/loss": 0.5})
    for ours, their in zip(tfevents.hparams(params, ["ray/tune/loss"]), theirs, strict=True):
        ours, their = Summary.Value.FromString(ours), their.value[0]
        assert (ours.tag, ours.metadata.plugin_data.plugin_name) == (their.tag, "hparams")
        content = HParamsPluginData.FromString  # a map's order on the wire may differ
        assert content(ours.metadata.plugin_data.content) == content(their.metadata.plugin_data.content)
    histo = Summary.Value.FromString(tfevents.histogram("h", [1.0, 2.0, 2.0, 5.0])).histo
    assert (histo.min, histo.max, histo.num, histo.sum, sum(histo.bucket)) == (1.0, 5.0, 4.0, 10.0, 4.0)


def test_the_tbx_logger_does_not_import_tensorboardx_or_torch(tmp_path):
    """tensorboardX imports torch when installed (seconds and ~190 MB in the driver)."""
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from hpctune.tune.logger import TBXLoggerCallback; "
            "from hpctune.tune.experiment.trial import Trial; "
            f"t = Trial('t', {{'lr': 0.1}}, '', {str(tmp_path)!r}); c = TBXLoggerCallback(); "
            "c.log_trial_result(1, t, {'training_iteration': 1, 'loss': 0.5, 'h': [1, 2]}); "
            "c.on_step_end(1, [t]); c.log_trial_end(t); "
            "assert list(Path(t.path).glob('events.out.tfevents.*')); "
            "print(sorted(m for m in ('tensorboardX', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- MLflow and W&B: the real libraries, a local SQLite store and W&B's offline mode ------------------
def run_trial_through(logger, trial, results, failed=False):
    logger.setup()
    logger.on_trial_start(iteration=1, trials=[trial], trial=trial)
    for r in results:
        feed(logger, trial, [r])
    hook = logger.on_trial_error if failed else logger.on_trial_complete
    hook(iteration=1, trials=[trial], trial=trial)


def test_mlflow_logger_records_runs_params_and_metric_histories(tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from hpctune.tune.logger.mlflow import MLflowLoggerCallback

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    logger = MLflowLoggerCallback(uri, experiment_name="sweep", tags={"team": "hpc"})
    ok, bad = make_trial(tmp_path, "t_00000"), make_trial(tmp_path, "t_00001", {"lr": 0.2})
    run_trial_through(logger, ok, [result(1, loss=0.5, val={"acc": 0.7}), result(2, loss=0.25, note="x")])
    run_trial_through(logger, bad, [result(1, loss=1.0)], failed=True)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("sweep")
    runs = {r.data.tags["hpctune_trial_id"]: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {"t_00000", "t_00001"}
    first = runs["t_00000"]
    assert first.info.status == "FINISHED" and runs["t_00001"].info.status == "FAILED"
    assert first.data.params == {"lr": "0.1", "opt/name": "adam"}
    assert first.data.tags["team"] == "hpc" and first.info.run_name == "t_00000"
    history = client.get_metric_history(first.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(1, 0.5), (2, 0.25)]
    assert [m.value for m in client.get_metric_history(first.info.run_id, "val/acc")] == [0.7]
    assert "note" not in first.data.metrics and "config/lr" not in first.data.metrics

    again = MLflowLoggerCallback(uri, experiment_name="sweep")  # a restored driver continues the run
    feed(again, ok, [result(3, loss=0.125)])
    assert len(client.search_runs([experiment.experiment_id])) == 2
    assert len(client.get_metric_history(first.info.run_id, "loss")) == 3


def test_mlflow_logger_params_on_trial_end_and_default_experiment_name(tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from hpctune.tune.logger.mlflow import MLflowLoggerCallback

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    trial = make_trial(tmp_path / "my-exp")
    logger = MLflowLoggerCallback(uri, log_params_on_trial_end=True)
    logger.setup()
    logger.on_trial_start(iteration=1, trials=[trial], trial=trial)
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("my-exp").experiment_id])
    assert run.data.params == {}
    logger.on_trial_complete(iteration=1, trials=[trial], trial=trial)
    assert client.get_run(run.info.run_id).data.params["lr"] == "0.1"


def wandb_records(run_file: Path) -> list:
    """The records of an offline W&B run file (LevelDB log blocks of protobuf Records)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, block, chunks, pending = run_file.read_bytes(), 7, 32768, [], b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 1:
            chunks.append(chunk)
        elif kind in (2, 3):
            pending = chunk if kind == 2 else pending + chunk
        elif kind == 4:
            chunks.append(pending + chunk)
    return [pb.Record.FromString(c) for c in chunks]


def finished_wandb_run(trial: Trial) -> list | None:
    """The records of the trial's offline run once they end with its exit record, else None:
    ``run.finish()`` returns before wandb's own process (wandb-core) has written them."""
    for run_file in Path(trial.path).glob(f"wandb/offline-run-*/run-{trial.trial_id}.wandb"):
        try:
            records = wandb_records(run_file)
        except Exception:  # noqa: BLE001 - a record still being written does not parse yet
            return None
        if records and records[-1].HasField("exit"):
            return records
    return None


def test_wandb_logger_records_runs_config_and_history_offline(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    from hpctune.tune.logger.wandb import WandbLoggerCallback

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    with pytest.raises(tune.HpctuneError, match=r"needs a project.*WANDB_PROJECT"):
        WandbLoggerCallback().setup()
    logger = WandbLoggerCallback(project="sweep", excludes=["time_total_s"])
    trial = make_trial(tmp_path)
    run_trial_through(logger, trial, [result(1, loss=0.5, val={"acc": 0.7}), result(2, loss=0.25)])
    records = wait_for(lambda: finished_wandb_run(trial), timeout=30, what="wandb's run file")
    (run,) = [r.run for r in records if r.HasField("run")]
    assert (run.run_id, run.display_name, run.project, run.run_group) == (
        "t_00000", "t_00000", "sweep", tmp_path.name)  # grouped by experiment
    history = [{i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
               for r in records if r.HasField("history")]
    assert [h["loss"] for h in history] == [0.5, 0.25] and history[0]["val/acc"] == 0.7
    assert not any("time_total_s" in h or "pid" in h or "done" in h for h in history)
    config = {i.key or "/".join(i.nested_key): json.loads(i.value_json)
              for r in records if r.HasField("run") or r.HasField("config")
              for i in (r.run.config.update if r.HasField("run") else r.config.update)}
    assert config["lr"] == 0.1 and config["pid"] == 7


# -- JupyterNotebookReporter: the live table in a notebook (IPython's display mocked) ----------------
def fake_ipython(monkeypatch, shell_name: str = "ZMQInteractiveShell") -> list:
    import sys
    import types

    calls: list = []

    class HTML:
        def __init__(self, data):
            self.data = data

    class Handle:
        def update(self, obj):
            calls.append(("update", obj.data))

    def display(obj, display_id=False):
        calls.append(("display", obj.data, display_id))
        return Handle()

    shell = type(shell_name, (), {})()
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: shell
    module = types.ModuleType("IPython.display")
    module.HTML, module.display = HTML, display
    module.clear_output = lambda wait=False: calls.append(("clear", wait))
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", module)
    return calls


def test_jupyter_reporter_shows_the_table_as_html_and_updates_it_in_place(monkeypatch, tmp_path):
    from hpctune.display.view import StatusView

    calls = fake_ipython(monkeypatch)
    trial = make_trial(tmp_path)
    trial.status, trial.last_result = Trial.RUNNING, {"loss": 0.5, "training_iteration": 1}
    reporter = tune.JupyterNotebookReporter(max_report_frequency=0, metric="loss", mode="min")
    reporter.maybe_report(StatusView([trial], metric="loss", mode="min"))
    trial.last_result = {"loss": 0.25, "training_iteration": 2}
    reporter.maybe_report(StatusView([trial], metric="loss", mode="min", done=True))
    assert [c[0] for c in calls] == ["clear", "display", "update"]
    assert calls[0] == ("clear", True) and calls[1][2] is True  # one output, updated in place
    first, last = calls[1][1], calls[2][1]
    assert first.startswith("<pre") and "t_00000" in first and "<script" not in first
    assert "0.5" in first and "0.25" in last and "Number of trials: 1" in last


def test_a_notebook_run_gets_the_jupyter_reporter_by_default(monkeypatch):
    from hpctune.display.reporter import CLIReporter, JupyterNotebookReporter, make_reporter

    fake_ipython(monkeypatch)
    reporter = make_reporter(tune.RunConfig(), tune.TuneConfig(metric="loss", mode="min"))
    assert isinstance(reporter, JupyterNotebookReporter)
    fake_ipython(monkeypatch, "TerminalInteractiveShell")
    assert type(make_reporter(tune.RunConfig(), tune.TuneConfig())) is CLIReporter


def test_file_loggers_keep_a_running_trials_files_open_and_close_them_at_its_end(tmp_path, monkeypatch):
    """An open per batch of results would be metadata load per running trial; a file rewritten
    with a wider header is written through a new descriptor, not the old file's."""
    opened = []
    real_open = os.open
    def counting_open(path, flags, *args, **kwargs):
        if flags & os.O_WRONLY:
            opened.append(Path(path).name)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting_open)
    trial, loggers = make_trial(tmp_path), [JsonLoggerCallback(), CSVLoggerCallback()]
    for logger in loggers:
        for i in range(1, 4):
            feed(logger, trial, [result(i, loss=1.0 / i)])
        feed(logger, trial, [result(4, loss=0.2, extra="x")])  # the CSV is rewritten once
        feed(logger, trial, [result(5, loss=0.1, extra="y")])
    assert opened.count("result.json") == 1
    assert opened.count("progress.csv") == 3  # the first, the rewrite, the one after it
    assert [r["training_iteration"] for r in csv_rows(trial)[1]] == ["1", "2", "3", "4", "5"]
    assert csv_rows(trial)[1][4]["extra"] == "y"
    for logger in loggers:
        logger.on_trial_complete(iteration=1, trials=[trial], trial=trial)
        assert not logger._open_files()[0]._files


def test_a_trial_started_under_this_driver_has_nothing_read_back(tmp_path, monkeypatch):
    """Reading a file back is for a restored driver's trials; a trial this driver saw start has
    nothing there, and a read per start would be metadata load at scale."""
    trial, logger = make_trial(tmp_path), CSVLoggerCallback()
    reads = []
    monkeypatch.setattr("hpctune.tune.logger.files.first_and_last_line", lambda p: reads.append(p))
    logger.on_trial_start(iteration=1, trials=[trial], trial=trial)
    feed(logger, trial, [result(1, loss=0.5)])
    assert reads == []
    assert csv_rows(trial)[1][0]["loss"] == "0.5"
