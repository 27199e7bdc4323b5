"""Console output of the driver: Ray Tune's reporters (``ProgressReporter``, ``CLIReporter``,
``JupyterNotebookReporter``).

The controller calls ``reporter.maybe_report(view)`` once per loop step. The
reporter asks ``should_report(trials, done)`` (cheap: a clock check) and only then builds
the status view and calls ``report(trials, done, *sys_info)``, so rendering costs the
driver at most one table every ``max_report_frequency`` seconds.

On a terminal ``CLIReporter`` keeps one live ``rich`` table up to date in place; when
stdout is not a terminal (a batch log) it prints one plain status line per report and the
full table once at the end.
"""

from __future__ import annotations

import atexit
import dataclasses
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from hpctune.config import RunConfig, TuneConfig
from hpctune.core.checks import check_mode, check_number
from hpctune.display.table import (
    Columns,
    header_lines,
    infer_columns,
    plain_line,
    render,
)
from hpctune.display.view import StatusView
from hpctune.errors import ConfigError


class ProgressReporter:
    """Ray's reporter interface: ``should_report`` decides when, ``report`` prints.

    Subclass it and override both to print anything anywhere; ``maybe_report`` is the
    hook hpctune's driver calls and need not be overridden.
    """

    _view: StatusView | None = None
    _done_reported: bool = False
    _started: float | None = None

    def should_report(self, trials: Sequence[Any], done: bool = False) -> bool:
        """Whether to report now (called once per driver step: keep it cheap)."""
        raise NotImplementedError

    def report(self, trials: Sequence[Any], done: bool, *sys_info: str) -> None:
        """Print the progress of ``trials``; ``sys_info`` are the status header lines."""
        raise NotImplementedError

    def set_search_properties(self, metric: str | None, mode: str | None) -> bool:
        """Called with TuneConfig's metric/mode; returns True (Ray's signature)."""
        return True

    def maybe_report(self, view: StatusView) -> None:
        """The driver's hook, once per loop step with the run's current ``StatusView``:
        report through ``should_report``/``report``; once more when the run is done."""
        if self._done_reported:
            return
        if self._started is None:
            self._started = time.monotonic()
        if not self.should_report(view.trials, view.done):
            return
        self._view = dataclasses.replace(
            view, metric=getattr(self, "_metric", None) or view.metric,
            mode=getattr(self, "_mode", None) or view.mode,
            elapsed_s=time.monotonic() - self._started)
        self.report(view.trials, view.done, *header_lines(self._view))
        self._done_reported = view.done


class CLIReporter(ProgressReporter):
    """Ray Tune's command-line reporter, with Slurm columns.

    Arguments in Ray's order (``CLIReporter(["acc"])`` works), then ``live``/``out`` by name.
    ``metric_columns``/``parameter_columns``: a list of keys or a ``{key: header}`` dict
    (default: ``metric`` plus up to ``infer_limit`` reported metrics; the config keys
    that vary between trials). ``max_progress_rows`` caps the table (top and bottom rows
    are shown, the others counted); ``max_report_frequency`` is in seconds.
    ``live``: True/False forces or forbids the in-place table (default: when ``out`` is
    a terminal); ``out`` defaults to stdout.
    """

    def __init__(self, metric_columns: list[str] | dict[str, str] | None = None,
                 parameter_columns: list[str] | dict[str, str] | None = None,
                 total_samples: int | None = None, max_progress_rows: int = 20,
                 max_error_rows: int = 20, max_column_length: int = 20,
                 max_report_frequency: float = 5, infer_limit: int = 3,
                 print_intermediate_tables: bool | None = None, metric: str | None = None,
                 mode: str | None = None, sort_by_metric: bool = False, *,
                 live: bool | None = None, out: TextIO | None = None):
        check_mode(mode, allow_none=True, owner="CLIReporter")
        for name, value in (("max_progress_rows", max_progress_rows), ("max_error_rows", max_error_rows),
                            ("max_column_length", max_column_length), ("infer_limit", infer_limit)):
            check_number(name, value, 0, integer=True)
        check_number("max_report_frequency", max_report_frequency, 0, strict=False)
        self._metric_columns = _as_columns(metric_columns, "metric_columns")
        self._parameter_columns = _as_columns(parameter_columns, "parameter_columns")
        self._total_samples = total_samples
        self._max_progress_rows = max_progress_rows
        self._max_error_rows = max_error_rows
        self._max_column_length = max_column_length
        self._max_report_frequency = max_report_frequency
        self._infer_limit = infer_limit
        self._print_intermediate_tables = print_intermediate_tables
        self._metric, self._mode = metric, mode
        self._sort_by_metric = sort_by_metric
        self._live_wanted, self._out = live, out
        self._last_report_time = 0.0
        self._console: Any = None
        self._live: Any = None

    # -- Ray's configuration API ------------------------------------------------------
    def add_metric_column(self, metric: str, representation: str | None = None) -> None:
        """Show ``metric`` (reported by the trainable) as a column headed ``representation``."""
        self._metric_columns = self._metric_columns or {}
        if metric in self._metric_columns:
            raise ConfigError(f"Column {metric!r} already exists in the metric columns.")
        self._metric_columns[metric] = representation or metric

    def add_parameter_column(self, parameter: str, representation: str | None = None) -> None:
        """Show config value ``parameter`` (``a/b`` for nested) as a column."""
        self._parameter_columns = self._parameter_columns or {}
        if parameter in self._parameter_columns:
            raise ConfigError(f"Column {parameter!r} already exists in the parameter columns.")
        self._parameter_columns[parameter] = representation or parameter

    def set_search_properties(self, metric: str | None, mode: str | None) -> bool:
        if (self._metric and metric and self._metric != metric) or (self._mode and mode and self._mode != mode):
            return False
        self._metric, self._mode = self._metric or metric, self._mode or mode
        return True

    def set_total_samples(self, total_samples: int) -> None:
        self._total_samples = total_samples

    # -- reporting --------------------------------------------------------------------------
    def should_report(self, trials: Sequence[Any], done: bool = False) -> bool:
        """At most once every ``max_report_frequency`` seconds, and always when done."""
        now = time.monotonic()
        if now - self._last_report_time >= self._max_report_frequency:
            self._last_report_time = now
            return True
        return done

    def report(self, trials: Sequence[Any], done: bool, *sys_info: str) -> None:
        view = self._view if self._view is not None else StatusView(list(trials), metric=self._metric,
                                                                    mode=self._mode)
        view.trials = list(trials)
        if self._is_live():
            self._update_live(view, sys_info, done)
        elif done or self._print_intermediate_tables:
            self.console.print(self.renderable(view, sys_info))
        else:
            self.console.print(plain_line(view), highlight=False, soft_wrap=True)

    def renderable(self, view: StatusView, sys_info: Sequence[str] = ()) -> Any:
        """The rich renderable of the status table (also what ``hpctune status`` prints)."""
        return render(view, self.columns(view), self._max_progress_rows, self._max_error_rows,
                      sys_info=sys_info or None, sort_by_metric=self._sort_by_metric,
                      max_len=self._max_column_length)

    def columns(self, view: StatusView) -> Columns:
        return infer_columns(view.trials, view.metric, self._metric_columns,
                             self._parameter_columns, self._infer_limit)

    @property
    def console(self) -> Any:
        if self._console is None:
            from rich.console import Console

            out = self._out or sys.stdout
            console = Console(file=out)
            self._console = console if console.is_terminal else Console(file=out, width=200)
        return self._console

    def _is_live(self) -> bool:
        return self._live_wanted if self._live_wanted is not None else self.console.is_terminal

    def _update_live(self, view: StatusView, sys_info: Sequence[str], done: bool) -> None:
        from rich.live import Live

        if self._live is None:
            self._live = Live(console=self.console, auto_refresh=False, transient=False,
                              redirect_stdout=False, redirect_stderr=False)
            self._live.start()
            atexit.register(self._stop_live)  # leave the terminal sane if the driver dies
        self._live.update(self.renderable(view, sys_info), refresh=True)
        if done:
            self._stop_live()

    def _stop_live(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


class JupyterNotebookReporter(CLIReporter):
    """Ray's notebook reporter: the same status table as HTML in the cell's output, updated in
    place (``overwrite=True`` also clears what the cell printed before the first table).

    Ray's arguments after ``overwrite``; the table is ``CLIReporter``'s (Slurm columns included).
    A notebook run without ``progress_reporter`` gets one by default, as in Ray.
    """

    def __init__(self, overwrite: bool = True, metric_columns: list[str] | dict[str, str] | None = None,
                 parameter_columns: list[str] | dict[str, str] | None = None,
                 total_samples: int | None = None, max_progress_rows: int = 20,
                 max_error_rows: int = 20, max_column_length: int = 20,
                 max_report_frequency: float = 5, infer_limit: int = 3,
                 print_intermediate_tables: bool | None = None, metric: str | None = None,
                 mode: str | None = None, sort_by_metric: bool = False):
        super().__init__(metric_columns, parameter_columns, total_samples, max_progress_rows,
                         max_error_rows, max_column_length, max_report_frequency, infer_limit,
                         print_intermediate_tables, metric, mode, sort_by_metric, live=False)
        self._overwrite = overwrite
        self._display_handle: Any = None

    def report(self, trials: Sequence[Any], done: bool, *sys_info: str) -> None:
        view = self._view if self._view is not None else StatusView(list(trials), metric=self._metric,
                                                                    mode=self._mode)
        view.trials = list(trials)
        self.display(self.html(view, sys_info))

    def html(self, view: StatusView, sys_info: Sequence[str] = ()) -> str:
        """The status header and table as HTML (rich's export, styles inline)."""
        import io

        from rich.console import Console

        console = Console(record=True, width=200, file=io.StringIO())
        console.print(self.renderable(view, sys_info))
        return console.export_html(inline_styles=True, code_format=(
            "<pre style=\"font-family:Menlo,'DejaVu Sans Mono',monospace;font-size:12px\">"
            "<code>{code}</code></pre>"))

    def display(self, string: str) -> None:
        """Show ``string`` (HTML) in the notebook: a new output first, then updates of it."""
        from IPython.display import HTML, clear_output, display

        if self._display_handle is None:
            if self._overwrite:
                clear_output(wait=True)
            self._display_handle = display(HTML(string), display_id=True)
        else:
            self._display_handle.update(HTML(string))


def in_notebook() -> bool:
    """True inside a Jupyter kernel (IPython's ZMQ shell), where Ray reports to the notebook."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def _as_columns(columns: list[str] | dict[str, str] | None, name: str) -> dict[str, str] | None:
    if columns is None:
        return None
    if isinstance(columns, dict):
        return dict(columns)
    if isinstance(columns, (list, tuple)):
        return {c: c for c in columns}
    raise ConfigError(f"`{name}` must be a list of keys or a dict {{key: header}}, got {columns!r}.")


class _RayStyleAdapter(ProgressReporter):
    """Wraps a user object that only has ``should_report``/``report`` (duck-typed)."""

    def __init__(self, reporter: Any):
        self.reporter = reporter

    def should_report(self, trials: Sequence[Any], done: bool = False) -> bool:
        return self.reporter.should_report(trials, done)

    def report(self, trials: Sequence[Any], done: bool, *sys_info: str) -> None:
        self.reporter.report(trials, done, *sys_info)


def make_reporter(run_config: RunConfig, tune_config: TuneConfig) -> Any:
    """The reporter for this run: the user's, a ``CLIReporter``, or none (verbose=0)."""
    reporter = run_config.progress_reporter
    if reporter is None:
        if run_config.verbose == 0:
            return None
        reporter = JupyterNotebookReporter() if in_notebook() else CLIReporter()
    if not hasattr(reporter, "maybe_report"):
        if not (hasattr(reporter, "should_report") and hasattr(reporter, "report")):
            raise ConfigError(
                f"RunConfig(progress_reporter={reporter!r}) needs should_report() and report(): "
                "subclass hpctune.ProgressReporter or use hpctune.CLIReporter(...)."
            )
        reporter = _RayStyleAdapter(reporter)
    set_properties = getattr(reporter, "set_search_properties", None)  # a bare maybe_report() has none
    if tune_config.metric and set_properties and not set_properties(tune_config.metric, tune_config.mode):
        raise ConfigError(
            "The progress reporter's metric/mode differ from TuneConfig's: set them in one place only."
        )
    return reporter
