"""Fuzzing the readers of outside input (issue 16): the result log reader, the command-line
parser and the experiment-file parser get random and hostile input; the only exceptions
allowed out are our clear errors (``HpctuneError``) and argparse's exit.

Bounded: ``FUZZ_EXAMPLES`` examples per test (a few seconds each), no deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from hpctune.cli.main import build_parser, main  # noqa: E402
from hpctune.config.experiment_file import (  # noqa: E402
    PRIMITIVES,
    TOP_LEVEL,
    load_experiment_file,
    parse_experiment,
)
from hpctune.errors import HpctuneError  # noqa: E402
from hpctune.storage.result_log import LogTail, ResultLog, read_events  # noqa: E402

FUZZ_EXAMPLES = int(os.environ.get("HPCTUNE_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=bool(os.environ.get("CI")),
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])

EVENT = {"event": "result", "schema": 1, "trial_id": "t", "time": 1.0, "result": {"loss": 0.5}}
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=20)


# -- the result log reader -------------------------------------------------------------------------
def complete_lines(data: bytes) -> int:
    """The events a reader may return from ``data``: JSON objects on complete lines."""
    count = 0
    for line in data.split(b"\n")[:-1]:
        with contextlib.suppress(ValueError, RecursionError):
            count += isinstance(json.loads(line), dict)
    return count


@FUZZ
@given(data=st.binary(max_size=4096))
def test_random_bytes_give_only_the_events_on_complete_lines(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("log") / "result.jsonl"
    path.write_bytes(data)
    events = read_events(path)
    assert all(isinstance(e, dict) for e in events)
    assert len(events) == complete_lines(data)


@FUZZ
@given(events=st.lists(json_values, max_size=6), cuts=st.lists(st.integers(0, 10_000), max_size=8))
def test_a_tail_read_in_torn_pieces_sees_each_complete_event_once(tmp_path_factory, events, cuts):
    """A writer's bytes arrive in arbitrary pieces (a line torn mid-way): the reader returns
    every complete event once, in order, and never a partial one."""
    path = tmp_path_factory.mktemp("log") / "result.jsonl"
    data = b"".join(json.dumps({**EVENT, "value": v}).encode() + b"\n" for v in events)
    tail, seen = LogTail(path), []
    written = 0
    for cut in sorted({min(c, len(data)) for c in cuts} | {len(data)}):
        with open(path, "ab") as f:
            f.write(data[written:cut])
        written = cut
        seen += tail.read_new()
    assert [e["value"] for e in seen] == [json.loads(json.dumps(v)) for v in events]
    assert tail.offset == len(data)


@FUZZ
@given(junk=st.binary(min_size=1, max_size=200).filter(lambda b: b"\n" not in b))
def test_a_torn_line_is_sealed_by_the_next_writer(tmp_path_factory, junk):
    path = tmp_path_factory.mktemp("log") / "result.jsonl"
    path.write_bytes(json.dumps(EVENT).encode() + b"\n" + junk)  # a writer killed mid-line
    log = ResultLog(path)
    log.append({**EVENT, "after": True})
    log.close()
    events = read_events(path)
    assert events[0] == EVENT and events[-1]["after"] is True


@pytest.mark.parametrize("line", [
    b"[" * 100_000 + b"]" * 100_000,  # nested past the JSON parser's recursion limit
    b'{"a": "' + b"x" * 5_000_000 + b'"}',  # one huge event
    b"1", b"null", b'"text"', b"[1, 2]",  # JSON, but not events
    b"\xff\xfe\x00", b'{"a": NaN}', b'{"a": 1e999}',
])
def test_hostile_lines_are_skipped_or_read(tmp_path, line):
    path = tmp_path / "result.jsonl"
    path.write_bytes(line + b"\n" + json.dumps(EVENT).encode() + b"\n" + line)
    tail = LogTail(path)
    events = tail.read_new()
    assert events[-1] == EVENT and all(isinstance(e, dict) for e in events)
    assert tail.offset == len(line) + 1 + len(json.dumps(EVENT)) + 1  # the last line has no newline


# -- the command line ------------------------------------------------------------------------------
COMMANDS = ["submit", "resume", "ls", "status", "best", "trials", "logs", "cancel", "profiles",
            "doctor", "export", "report", "plot", "nope", ""]
OPTIONS = ["--limit", "--filter", "--sort", "--columns", "--output", "--metric", "--mode", "--watch",
           "--interval", "--max-rows", "--cpus", "--gpus", "--mem-gb", "--time-min", "--sbatch",
           "--num-samples", "--name", "--storage-path", "--backend", "--profile", "--setup", "-f",
           "--stream", "--json", "--dry-run", "--detach", "--desc", "-h", "--version", "--", "-"]
tokens = st.sampled_from(OPTIONS) | st.text(max_size=12) | st.sampled_from(
    ["-1", "0", "1", "1e9", "nan", "inf", "-0.5", "x", "loss < 1", "a=b", "=", "min", "max"])


@FUZZ
@given(command=st.sampled_from(COMMANDS), rest=st.lists(tokens, max_size=6))
def test_the_parser_answers_or_exits_with_usage(command, rest):
    parser = build_parser()
    try:
        parser.parse_args([command, *rest] if command else rest)
    except SystemExit as exit_:
        assert exit_.code in (0, 2)


READ_ONLY = ["ls", "status", "best", "trials", "logs", "profiles"]


@FUZZ
@given(command=st.sampled_from(READ_ONLY), rest=st.lists(tokens, max_size=5))
def test_read_only_commands_fail_only_with_a_clear_message(tmp_path_factory, monkeypatch, capsys,
                                                           command, rest):
    storage = tmp_path_factory.mktemp("storage")
    monkeypatch.setenv("HPCTUNE_STORAGE_PATH", str(storage))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(storage / "xdg"))
    rest = [t for t in rest if t not in ("--watch", "-f")]  # they wait for an experiment to end
    try:
        code = main([command, *rest])
    except SystemExit as exit_:
        code = exit_.code
    _, err = capsys.readouterr()
    assert code in (0, 1, 2), code
    assert "Traceback" not in err


# -- the experiment-file parser --------------------------------------------------------------------
keys = st.sampled_from(sorted(TOP_LEVEL)) | st.text(max_size=8)
primitive = st.builds(lambda kind, args: {kind: args}, st.sampled_from(sorted(PRIMITIVES)), json_values)
space_values = st.recursive(json_scalars | primitive,
                            lambda inner: st.dictionaries(st.text(max_size=6), inner, max_size=4)
                            | st.lists(inner, max_size=3), max_leaves=15)
sections = st.fixed_dictionaries({
    "trainable": st.just("train.py:objective") | st.sampled_from(["train.py", "x:y", ""]) | json_values,
}, optional={
    "param_space": st.dictionaries(st.text(max_size=6), space_values, max_size=4) | json_values,
    "scheduler": st.sampled_from(["asha", "fifo", "median_stopping_rule", "nope"])
    | st.dictionaries(st.sampled_from(["name", "max_t", "grace_period", "mode", "x"]), json_values),
    "search": st.sampled_from(["random", "optuna", "nope"]) | json_values,
    "num_samples": json_values, "metric": json_values, "mode": json_values, "verbose": json_values,
    "max_concurrent_trials": json_values, "time_budget_s": json_values, "seed": json_values,
    "resources": st.dictionaries(st.sampled_from(["cpu", "gpu", "mem_gb", "nodes", "x"]), json_values)
    | json_values,
    "failure": st.dictionaries(st.sampled_from(["max_failures", "fail_fast", "report_timeout_s"]),
                               json_values) | json_values,
    "checkpoint": st.dictionaries(st.sampled_from(["num_to_keep", "checkpoint_frequency"]),
                                  json_values) | json_values,
    "stop": st.dictionaries(st.text(max_size=6), json_values) | json_values,
    "name": st.text(max_size=10) | json_values, "storage_path": json_values,
    "backend": st.sampled_from(["local", "slurm", "k8s"]) | json_values,
    "profile": json_values,
}) | st.dictionaries(keys, json_values, max_size=5)


@pytest.fixture
def train_file(tmp_path):
    (tmp_path / "train.py").write_text("from hpctune import tune\n\ndef objective(config):\n"
                                       "    tune.report({'score': 1})\n")
    return tmp_path


@FUZZ
@given(data=sections)
def test_experiment_data_is_parsed_or_refused_clearly(train_file, monkeypatch, data):
    monkeypatch.setenv("HPCTUNE_BACKEND", "local")
    monkeypatch.setenv("HPCTUNE_STORAGE_PATH", str(train_file / "results"))
    with contextlib.suppress(HpctuneError):
        parse_experiment(data, train_file / "experiment.toml").tuner()
    assert not (train_file / "results").exists()


@FUZZ
@given(data=st.binary(max_size=600) | st.text(max_size=600).map(str.encode),
       suffix=st.sampled_from([".toml", ".yaml"]))
def test_experiment_files_of_random_bytes_are_refused_clearly(tmp_path_factory, data, suffix):
    path = Path(tmp_path_factory.mktemp("files")) / f"experiment{suffix}"
    path.write_bytes(data)
    try:
        load_experiment_file(path)
    except HpctuneError as exc:
        assert str(path) in str(exc) or ":" in str(exc)
