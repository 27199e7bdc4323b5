"""Reporters: Ray's interface, report frequency, the status table, live and plain output."""

import io

import pytest

from hpctune import tune
from hpctune.config import RunConfig, TuneConfig
from hpctune.display.reporter import CLIReporter, ProgressReporter, make_reporter
from hpctune.display.table import header_lines, plain_line
from hpctune.display.view import StatusView
from hpctune.errors import ConfigError
from hpctune.tune.experiment.trial import Trial, TrialStatus


def make_trials(n=3, **overrides):
    trials = []
    for i in range(n):
        trial = Trial(f"t_{i:05d}", {"lr": 0.1 * (i + 1), "opt": {"name": "adam"}, "fixed": 1},
                      f"{i}", f"/exp/trials/t_{i:05d}", resources={"cpu": 2, "gpu": 1})
        trial.record_result({"loss": 1.0 / (i + 1), "acc": 0.5, "training_iteration": 3,
                             "time_total_s": 4.5, "hostname": "n1"})
        trial.status, trial.job_id = TrialStatus.RUNNING, f"77_{i}"
        trial.job_state, trial.node = "RUNNING", "n1"
        for key, value in overrides.items():
            setattr(trial, key, value)
        trials.append(trial)
    return trials


def run_view(trials, metric="loss", mode="min", done=False):
    """What the driver hands its reporter each step."""
    return StatusView(trials, experiment_dir="/exp", scheduler="ASHAScheduler", metric=metric,
                      mode=mode, slurm_commands={"sbatch": 1, "squeue": 12}, done=done)


def render_text(reporter, trials, done=True):
    out = io.StringIO()
    reporter._out = out
    reporter.maybe_report(run_view(trials, done=done))
    return out.getvalue()


def test_should_report_at_most_every_max_report_frequency(monkeypatch):
    now = [100.0]
    monkeypatch.setattr("hpctune.display.reporter.time.monotonic", lambda: now[0])
    reporter = CLIReporter(max_report_frequency=5)
    assert reporter.should_report([]) is True
    now[0] += 1
    assert reporter.should_report([]) is False
    assert reporter.should_report([], done=True) is True
    now[0] += 5
    assert reporter.should_report([]) is True


def test_final_table_has_slurm_columns_config_metrics_and_best():
    trials = make_trials(3)
    trials[2].status, trials[2].job_state, trials[2].job_reason = TrialStatus.PENDING, "PENDING", "Priority"
    text = render_text(CLIReporter(live=False), trials)
    assert "== Status ==" in text
    assert "Using ASHAScheduler scheduling algorithm." in text
    assert "Number of trials: 3 (2 RUNNING, 1 PENDING)" in text
    assert "Slurm jobs: 2 RUNNING on n1; 1 PENDING (Priority: 1)" in text
    assert "Resources requested: 6 CPUs, 3 GPUs (3 jobs); in use: 4 CPUs, 2 GPUs (2 running)" in text
    assert "Slurm commands issued by the driver: 1 sbatch, 12 squeue" in text
    assert "Experiment directory: /exp" in text
    assert "Current best trial: t_00002 with loss=0.333333" in text
    for header in ("Trial name", "Slurm job", "Slurm state", "node", "lr", "loss", "acc", "iter"):
        assert header in text
    assert "PENDING (Priority)" in text and "77_1" in text
    header = next(line for line in text.splitlines() if line.startswith("Trial name"))
    assert "opt/name" not in header and "fixed" not in header  # constants are not columns


def test_columns_can_be_chosen_and_added():
    reporter = CLIReporter(metric_columns={"acc": "Accuracy"}, parameter_columns=["opt/name"], live=False)
    reporter.add_metric_column("loss", "Loss")
    reporter.add_parameter_column("lr")
    with pytest.raises(ConfigError, match="already exists"):
        reporter.add_metric_column("loss")
    text = render_text(reporter, make_trials(2))
    assert "Accuracy" in text and "Loss" in text and "opt/name" in text and "adam" in text
    with pytest.raises(ConfigError):
        CLIReporter(metric_columns="loss")


def test_many_trials_are_compacted_to_top_and_bottom_rows():
    trials = make_trials(50)
    for trial in trials[10:]:
        trial.status = TrialStatus.TERMINATED
    text = render_text(CLIReporter(max_progress_rows=6, live=False), trials)
    assert "t_00000" in text and "t_00049" in text
    assert "t_00020" not in text
    assert "... 44 more trials: 7 RUNNING, 37 TERMINATED ..." in text


def test_errors_are_listed():
    trials = make_trials(2)
    trials[1].status, trials[1].num_failures = TrialStatus.ERROR, 2
    trials[1].error = "Traceback...\nValueError: boom"
    text = render_text(CLIReporter(live=False), trials)
    assert "Number of errored trials: 1" in text and "ValueError: boom" in text


def test_plain_lines_when_not_a_terminal_until_done():
    reporter = CLIReporter(live=False)
    text = render_text(reporter, make_trials(2), done=False)
    assert text.startswith("== Status == ") and text.count("\n") == 1
    assert "2 trials (2 RUNNING)" in text and "best loss=0.5 (t_00001)" in text


def test_live_table_on_a_terminal_stops_when_done():
    from rich.console import Console

    out = io.StringIO()
    reporter = CLIReporter(live=True, max_report_frequency=0)
    reporter._console = Console(file=out, force_terminal=True, width=160)
    trials = make_trials(2)
    reporter.maybe_report(run_view(trials))
    assert reporter._live is not None
    reporter.maybe_report(run_view(trials, done=True))
    assert reporter._live is None and "t_00001" in out.getvalue()
    reporter.maybe_report(run_view(trials, done=True))  # nothing after the final report


class Recorder(ProgressReporter):
    def __init__(self):
        self.calls = []

    def should_report(self, trials, done=False):
        return done

    def report(self, trials, done, *sys_info):
        self.calls.append((len(trials), done, sys_info))


def test_custom_reporter_reports_on_termination_only_in_a_real_run(tmp_path, monkeypatch):
    monkeypatch.setenv("HPCTUNE_BACKEND", "local")
    recorder = Recorder()
    tune.Tuner(lambda config: {"score": config["a"]}, param_space={"a": tune.grid_search([1, 2])},
               tune_config=TuneConfig(metric="score", mode="min"),
               run_config=RunConfig(storage_path=str(tmp_path), progress_reporter=recorder)).fit()
    assert len(recorder.calls) == 1
    count, done, sys_info = recorder.calls[0]
    assert count == 2 and done is True
    assert any("Number of trials: 2 (2 TERMINATED)" in line for line in sys_info)


def test_make_reporter():
    tc = TuneConfig(metric="loss", mode="min")
    assert make_reporter(RunConfig(verbose=0), tc) is None
    default = make_reporter(RunConfig(), tc)
    assert isinstance(default, CLIReporter) and default._metric == "loss"

    class RayStyle:  # duck-typed, not a ProgressReporter
        def __init__(self):
            self.seen = []

        def should_report(self, trials, done=False):
            return True

        def report(self, trials, done, *sys_info):
            self.seen.append(done)

    ray_style = RayStyle()
    adapted = make_reporter(RunConfig(progress_reporter=ray_style), tc)
    adapted.maybe_report(run_view(make_trials(1)))
    assert ray_style.seen == [False]
    with pytest.raises(ConfigError, match="should_report"):
        make_reporter(RunConfig(progress_reporter=object()), tc)
    with pytest.raises(ConfigError, match="metric/mode"):
        make_reporter(RunConfig(progress_reporter=CLIReporter(metric="acc")), tc)


def test_header_and_plain_line_without_metric():
    view = StatusView(make_trials(1), experiment_dir="/exp")
    lines = header_lines(view)
    assert not any(line.startswith("Current best") for line in lines)
    assert "/exp" in plain_line(view) and "best" not in plain_line(view)


def test_a_reporter_with_only_maybe_report_works_with_a_metric():
    """The documented minimal reporter: an object with maybe_report(view), nothing else."""
    class Minimal:
        def __init__(self):
            self.views = []

        def maybe_report(self, view):
            self.views.append(view)

    minimal = Minimal()
    reporter = make_reporter(RunConfig(progress_reporter=minimal), TuneConfig(metric="loss", mode="min"))
    assert reporter is minimal
    reporter.maybe_report(run_view(make_trials(1)))
    assert len(minimal.views) == 1
