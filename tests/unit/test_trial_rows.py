"""The displays' row view (issue 23, deliverable 5): ``hpctune status`` and ``hpctune trials``
read ``state.rows`` (the display fields column by column) and the journal's changed trials
instead of every trial's record, and print exactly what the whole read prints: right after a
compaction, after journal appends with no compaction, after a background merge, and with a
view that is missing, damaged, of another base or of another version (the whole read then)."""

from __future__ import annotations

import contextlib
import io
import json
import random

import pytest

import hpctune.cli.common as common
from hpctune.cli.main import main
from hpctune.storage.experiment import ExperimentDir, config_view
from hpctune.storage.journal_writer import JournalWriter, merge_base
from hpctune.storage.trial_rows import rows_path
from hpctune.storage.trial_rows_read import read_rows
from hpctune.tune.experiment.trial import JobState, Trial, TrialStatus

RUN = {"searcher_finished": False, "backend_commands": {"sbatch": 3}, "updated": 1.0}
STATUS = ["status", "exp", "--no-squeue", "--max-rows", "6"]
COMMANDS = [
    STATUS,
    ["status", "exp", "--no-squeue"],
    ["trials", "exp"],
    ["trials", "exp", "--filter", "loss < 0.3", "--sort", "loss"],
    ["trials", "exp", "--sort", "status,loss", "--desc", "--limit", "7"],
    [
        "trials",
        "exp",
        "--filter",
        "config/lr > 0.01",
        "--columns",
        "trial_id,config/opt/name,acc,job_state",
    ],
    ["trials", "exp", "--filter", "status == ERROR", "--filter", "job_state != RUNNING"],
    ["trials", "exp", "--sort", "note"],
]


def make_trial(exp: ExperimentDir, i: int, rng: random.Random) -> Trial:
    """A trial of every kind the displays tell apart: statuses, job states and reasons, nodes,
    errors of several lines, requests that differ, nested configs, a text with a control
    character, metrics that are missing, None, NaN, text, bools and a dict."""
    status = [
        TrialStatus.TERMINATED,
        TrialStatus.RUNNING,
        TrialStatus.PENDING,
        TrialStatus.ERROR,
        TrialStatus.PAUSED,
        TrialStatus.TERMINATED,
    ][i % 6]
    config = {"lr": 10 ** rng.uniform(-4, -1), "opt": {"name": rng.choice(["adam", "sgd"])}}
    if i == 7:
        config["tag"] = "red\x1b[31m"  # scrubbed before it reaches a terminal
    trial = Trial(
        f"t_{i:05d}",
        config,
        f"{i}_lr={config['lr']:.3g}",
        str(exp.trials_dir / f"t_{i:05d}"),
        resources={"cpu": 1 + (i == 4), "gpu": int(i % 9 == 0)},
        status=status,
        job_id=f"{100 + i // 10}_{i % 10}" if status is not TrialStatus.PAUSED else None,
    )
    for step in range(1, 4):
        result = {
            "loss": rng.random() / step,
            "acc": rng.random(),
            "training_iteration": step,
            "time_total_s": step * 1.5,
            "nested": {"a": step},
            "note": rng.choice(["x", "y", None]),
        }
        if i % 11 == 3:
            del result["loss"]
        if i % 13 == 5:
            result["loss"] = float("nan")
        trial.record_result(result)
    if status is TrialStatus.RUNNING:
        trial.job_state, trial.node = JobState.RUNNING, f"n{i % 5}"
    elif status is TrialStatus.PENDING:
        trial.job_state, trial.job_reason = JobState.PENDING, rng.choice(["Priority", "Resources"])
    elif status is TrialStatus.ERROR:
        trial.error = f"Traceback\n  line {i}\nValueError: bad {i}\n\n"
        trial.num_failures = 1
    if i == 9:
        trial.pending_resources = {"cpu": 4}
    return trial


def record(trial: Trial) -> dict:
    return {**trial.to_dict(), "config": config_view(trial.config)}


@pytest.fixture
def exp(tmp_path, monkeypatch):
    exp = ExperimentDir(tmp_path / "exp")
    exp.create()
    (exp.root / "experiment.json").write_text(
        json.dumps({"metric": "loss", "mode": "min", "scheduler": "FIFOScheduler"})
    )
    summary = {"status": "finished", "metric": "loss", "mode": "min", "num_trials": 1}
    exp.summary_path.write_text(json.dumps(summary))
    monkeypatch.setenv("HPCTUNE_STORAGE_PATH", str(tmp_path))
    return exp


def run(argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    return out.getvalue()


def outputs(exp: ExperimentDir, monkeypatch, from_view: bool) -> list[str]:
    """Every command's output, from the row view (the whole read made to fail) or from the
    whole read (the view moved away)."""
    if from_view:
        assert read_rows(exp) is not None
        with monkeypatch.context() as m:
            m.setattr(common, "_displayed_trials", lambda exp: pytest.fail("read the whole state"))
            return [run(argv) for argv in COMMANDS]
    saved = rows_path(exp).read_bytes() if rows_path(exp).exists() else None
    rows_path(exp).unlink(missing_ok=True)
    try:
        return [run(argv) for argv in COMMANDS]
    finally:
        if saved is not None:
            rows_path(exp).write_bytes(saved)


def same_both_ways(exp: ExperimentDir, monkeypatch) -> list[str]:
    whole = outputs(exp, monkeypatch, from_view=False)
    viewed = outputs(exp, monkeypatch, from_view=True)
    for argv, a, b in zip(COMMANDS, whole, viewed, strict=True):
        assert a == b, f"hpctune {' '.join(argv)} differs"
    return viewed


def test_status_and_trials_print_the_same_from_the_view_as_from_the_whole_state(exp, monkeypatch):
    rng = random.Random(3)
    trials = [make_trial(exp, i, rng) for i in range(60)]
    writer = JournalWriter(exp)
    writer.compact(1, [record(t) for t in trials], RUN)
    shown = same_both_ways(exp, monkeypatch)
    assert "Current best trial" in shown[0] and "more trials" in shown[0]
    assert "\\x1b" in shown[2] and "\x1b" not in "".join(shown)  # scrubbed both ways
    assert "ValueError: bad 3" in shown[1]

    # journal appends, no compaction: changed trials, a new one, a trial changed twice
    trials[1].status, trials[1].job_state = TrialStatus.TERMINATED, JobState.NONE
    trials[1].record_result({"loss": -1.0, "acc": 2.0, "training_iteration": 9})
    trials[2].job_state, trials[2].job_reason = JobState.PENDING, "QOSMaxJobsPerUserLimit"
    writer.append(2, [record(trials[1]), record(trials[2])], RUN)
    same_both_ways(exp, monkeypatch)
    trials[1].record_result({"loss": -2.0, "acc": 3.0, "training_iteration": 10})
    new = make_trial(exp, 60, rng)
    new.config["fresh"] = "only here"
    new.record_result({"loss": 0.01, "acc": 0.5, "brand_new_metric": 3})
    trials[7].config["tag"] = "now plain"
    trials[8].config["tag"] = "blue\x1b[34m"  # an escape only the journal has
    writer.append(3, [record(new), record(trials[7]), record(trials[1]), record(trials[8])], RUN)
    shown = same_both_ways(exp, monkeypatch)
    assert "\x1b" not in "".join(shown) and "blue\\x1b" in shown[2]
    assert (
        "t_00001" in shown[0] and "loss=-2" in shown[0]
    )  # the journal's last line, not the view's
    assert "t_00060" in shown[2] and "now plain" in shown[2]
    rows = read_rows(exp)
    assert rows is not None and rows.count == 61 and len(rows.lines) == 5

    # a filter on a column only the journal's rows have
    extra = ["trials", "exp", "--filter", "brand_new_metric > 1"]
    assert "t_00060" in run(extra)


def test_a_view_of_another_base_or_version_is_never_used(exp, monkeypatch):
    rng = random.Random(4)
    trials = [make_trial(exp, i, rng) for i in range(20)]
    writer = JournalWriter(exp)
    writer.compact(1, [record(t) for t in trials], RUN)
    assert read_rows(exp) is not None
    stale = rows_path(exp).read_bytes()
    trials[0].status = TrialStatus.ERROR
    trials[0].error = "gone"
    writer.compact(1, [record(t) for t in trials], RUN)  # a later driver, the same snapshot number
    rows_path(exp).write_bytes(stale)  # the view of the older base
    assert read_rows(exp) is None
    assert "gone" in run(["trials", "exp"])
    writer.compact(5, [record(t) for t in trials], RUN)
    rows_path(exp).write_bytes(stale)
    assert read_rows(exp) is None

    head, rest = rows_path(exp).read_bytes().split(b"\n", 1)
    writer.compact(6, [record(t) for t in trials], RUN)
    head, rest = rows_path(exp).read_bytes().split(b"\n", 1)
    rows_path(exp).write_bytes(head.replace(b'"version": 1', b'"version": 0') + b"\n" + rest)
    assert read_rows(exp) is None  # another version: the whole read
    rows_path(exp).write_bytes(head + b"\n" + rest[: len(rest) // 2])
    assert read_rows(exp) is None  # damaged
    rows_path(exp).unlink()
    assert read_rows(exp) is None and "gone" in run(["trials", "exp"])


def test_the_background_merge_carries_the_view_forward(exp, monkeypatch):
    rng = random.Random(5)
    trials = [make_trial(exp, i, rng) for i in range(30)]
    writer = JournalWriter(exp)
    writer.compact(1, [record(t) for t in trials], RUN)
    old_generation = writer.generation
    trials[3].status = TrialStatus.TERMINATED
    trials[3].record_result({"loss": -5.0})
    writer.append(2, [record(trials[3])], RUN)
    new = make_trial(exp, 30, rng)
    writer.append(3, [record(new)], RUN)
    trials[4].record_result({"loss": -7.0})
    writer.append(4, [record(trials[4])], RUN)  # after the merge's snapshot: the journal has it
    merge_base(exp, old_generation, 3, "g2")
    rows = read_rows(exp)
    assert rows is not None and rows.count == 31 and set(rows.lines) == {4}
    assert rows.column("status")[3] == "TERMINATED" and rows.column("result:loss")[3] == -5.0
    shown = same_both_ways(exp, monkeypatch)
    assert "loss=-7" in shown[0]
    rows_path(exp).unlink()  # without a view of the old base, the merge parses every line
    writer.compact(7, [record(t) for t in [*trials, new]], RUN)
    rows_path(exp).unlink()
    writer.append(8, [record(trials[5])], RUN)
    merge_base(exp, writer.generation, 8, "g3")
    assert read_rows(exp) is not None
    same_both_ways(exp, monkeypatch)


def test_a_torn_last_journal_line_is_left_out_both_ways(exp, monkeypatch):
    rng = random.Random(6)
    trials = [make_trial(exp, i, rng) for i in range(12)]
    writer = JournalWriter(exp)
    writer.compact(1, [record(t) for t in trials], RUN)
    trials[2].record_result({"loss": -3.0})
    writer.append(2, [record(trials[2])], RUN)
    with open(writer.path, "ab") as f:
        f.write(b'{"kind": "trial", "seq": 3, "trial": {"trial_id": "t_00004", "sta')
    with pytest.warns(UserWarning, match="incomplete"):
        same_both_ways(exp, monkeypatch)


def test_a_column_the_view_lacks_is_left_to_the_whole_read(exp, monkeypatch, capsys):
    rng = random.Random(7)
    JournalWriter(exp).compact(1, [record(make_trial(exp, i, rng)) for i in range(8)], RUN)
    assert read_rows(exp) is not None
    for flag in (["--filter", "nope < 1"], ["--sort", "nope"], ["--columns", "trial_id,nope"]):
        assert main(["trials", "exp", *flag]) != 0
        assert "unknown column 'nope'" in capsys.readouterr().err
