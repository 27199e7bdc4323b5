"""The "== Status ==" view of an experiment, adapted to Slurm: pure functions from trials to text.

Shared by the driver's ``CLIReporter`` (live) and ``hpctune status`` (from state.json).
Header lines: scheduler, trials by state, Slurm jobs by state and pending reason,
resources requested vs in use, Slurm commands issued, experiment directory, best trial.
Then one row per trial (Slurm job id, Slurm state and reason, node, its request when trials'
requests differ, current config values, latest metrics, iterations, time, PBT's last
perturbation and lineage); with many trials only the top and bottom rows, plus counts.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from hpctune.core.metrics import AUTO_METRICS, flat_value, flatten, is_finite_number
from hpctune.display.view import (
    STATUS_ORDER,
    StatusView,
    TrialColumns,
    best_row,
    live_rows,
    order_rows,
    request_text,
)
from hpctune.tune.experiment.trial import Trial

RUNNING_STATES = {"RUNNING", "COMPLETING", "CONFIGURING"}
MAX_INFERRED_PARAMS = 6
#: the column of each trial's current request: shown only when the trials' requests differ
RESOURCES_HEADER = "resources"


@dataclass
class Columns:
    """Which parameter and metric columns a trial table shows: key -> header."""

    params: dict[str, str]
    metrics: dict[str, str]


# -- header ---------------------------------------------------------------------------------
def header_lines(view: StatusView) -> list[str]:
    """The lines above the table (Ray's ``sys_info``), Slurm-specific where Ray's are Ray's."""
    cols = columns_of(view)
    lines = []
    if view.state:
        lines.append(f"Experiment {view.state}" + _age(view.updated) + (f", driver: {view.driver}" if view.driver else ""))
    if view.scheduler:
        lines.append(f"Using {view.scheduler} scheduling algorithm.")
    elapsed = f" after {format_duration(view.elapsed_s)}" if view.elapsed_s is not None else ""
    lines.append(f"Number of trials: {cols.count} ({_count_text(cols.status)}){elapsed}")
    if view.done:
        unrun = cols.status.count("PENDING")
        if unrun:
            lines.append(f"{unrun} trials never started: the experiment ended before they ran "
                         "(they stay PENDING; Tuner.restore runs them)")
    lines.append(_slurm_line(cols))
    paused = cols.status.count("PAUSED")
    if paused:
        lines.append(f"{paused} trials paused: checkpointed, their Slurm jobs ended; each is "
                     "resubmitted when its scheduler lets it go on")
    lines.append(_resources_line(cols))
    if view.slurm_commands:
        calls = ", ".join(f"{n} {c}" for c, n in sorted(view.slurm_commands.items()))
        lines.append(f"Slurm commands issued by the driver: {calls}")
    if view.experiment_dir:
        lines.append(f"Experiment directory: {view.experiment_dir}")
    best = _best_line(cols, view.metric, view.mode)
    if best:
        lines.append(best)
    return lines


def columns_of(view: StatusView) -> TrialColumns:
    """The view's trials column by column: its ``columns``, else those of its ``trials``."""
    return view.columns if view.columns is not None else TrialColumns.of(view.trials, view.metric, view.mode)


def count_text(trials: Iterable[Trial]) -> str:
    return _count_text([t.status.value for t in trials])


def _count_text(statuses: Iterable[str]) -> str:
    counts = Counter(statuses)
    ordered = sorted(counts.items(), key=lambda kv: STATUS_ORDER.get(kv[0], 9))
    return ", ".join(f"{n} {s}" for s, n in ordered) or "none yet"


def slurm_line(trials: Sequence[Trial]) -> str:
    """Jobs of live trials by Slurm state, with pending reasons and nodes."""
    return _slurm_line(TrialColumns.of(trials, None, None))


def _slurm_line(cols: TrialColumns) -> str:
    live = live_rows(cols)
    if not live:
        return "Slurm jobs: none queued"
    job_state = cols.job_state
    states = Counter(job_state[i] or "SUBMITTED" for i in live)
    parts = []
    for state, n in sorted(states.items(), key=lambda kv: -kv[1]):
        text = f"{n} {state}"
        if state == "PENDING":
            reasons = Counter(cols.job_reason[i] for i in live if job_state[i] == state and cols.job_reason[i])
            if reasons:
                text += " (" + ", ".join(f"{r}: {k}" for r, k in reasons.most_common(4)) + ")"
        elif state == "RUNNING":
            nodes = sorted({cols.node[i] for i in live if job_state[i] == state and cols.node[i]})
            text += f" on {','.join(nodes[:8])}" + ("..." if len(nodes) > 8 else "") if nodes else ""
        parts.append(text)
    return "Slurm jobs: " + "; ".join(parts)


def resources_line(trials: Sequence[Trial]) -> str:
    """Resources requested by queued+running trials vs. those of running ones."""
    return _resources_line(TrialColumns.of(trials, None, None))


def _resources_line(cols: TrialColumns) -> str:
    queued = live_rows(cols)
    if not queued:
        return "Resources requested: none (no job queued)"
    running = [i for i in queued if cols.job_state[i] in RUNNING_STATES]
    return (f"Resources requested: {request_text(cols.resources[i] for i in queued)} ({len(queued)} jobs); "
            f"in use: {request_text(cols.resources[i] for i in running)} ({len(running)} running)")


def best_line(trials: Sequence[Trial], metric: str | None, mode: str | None) -> str | None:
    return _best_line(TrialColumns.of(trials, metric, mode), metric, mode)


def _best_line(cols: TrialColumns, metric: str | None, mode: str | None) -> str | None:
    row = best_row(cols, metric, mode)
    if row is None:
        return None
    best = cols.trial(row)
    config = ", ".join(f"{k}={format_value(v)}" for k, v in flatten(best.config).items())
    return (f"Current best trial: {best.name} with {metric}={format_value(flat_value(best.last_result, metric))}"
            f" and config {{{config}}}")


# -- rows --------------------------------------------------------------------------------------
def infer_columns(trials: Sequence[Trial], metric: str | None,
                  metric_columns: dict[str, str] | None, parameter_columns: dict[str, str] | None,
                  infer_limit: int = 3) -> Columns:
    """Parameter columns: those given, else the config keys whose values differ between trials.
    Metric columns: those given, else ``metric`` plus up to ``infer_limit`` reported metrics."""
    sample = list(trials[:200])
    if parameter_columns is None:
        params = _varying_keys(sample)
        parameter_columns = {k: k for k in params[:MAX_INFERRED_PARAMS]}
    if metric_columns is None:
        metric_columns = {metric: metric} if metric else {}
        for key in _reported_metrics(sample):
            if len(metric_columns) >= infer_limit + (1 if metric else 0):
                break
            metric_columns.setdefault(key, key)
    return Columns(dict(parameter_columns), dict(metric_columns))


def _varying_keys(trials: Sequence[Trial]) -> list[str]:
    values: dict[str, set[str]] = {}
    for t in trials:
        for k, v in flatten(t.config).items():
            values.setdefault(k, set()).add(repr(v))
    if len(trials) <= 1:
        return list(values)
    return [k for k, seen in values.items() if len(seen) > 1]


def _reported_metrics(trials: Sequence[Trial]) -> list[str]:
    keys: dict[str, None] = {}
    for t in trials:
        keys.update(dict.fromkeys(k for k, v in flatten(t.last_result).items()
                                  if k not in AUTO_METRICS and _is_number(v)))
    return list(keys)


def table_headers(columns: Columns) -> list[str]:
    return ["Trial name", "status", "Slurm job", "Slurm state", "node", RESOURCES_HEADER,
            *columns.params.values(), *columns.metrics.values(), "iter", "total time (s)",
            "perturbed", "lineage"]


def trial_row(trial: Trial, columns: Columns, max_len: int = 20) -> list[str]:
    """The cells of one trial's row, as text."""
    config = flatten(trial.config)
    result = flatten(trial.last_result)
    state = "" if trial.is_finished else trial.job_state
    if state == "PENDING" and trial.job_reason:
        state = f"PENDING ({trial.job_reason})"
    elif trial.status.value == "PAUSED" and not trial.job_id:
        state = "released (paused)"
    cells = [trial.name, trial.status.value, trial.job_id or "", state,
             "" if trial.is_finished else trial.node, resources_cell(trial)]
    cells += [format_value(config.get(k, ""), max_len) for k in columns.params]
    cells += [format_value(result.get(k, ""), max_len) for k in columns.metrics]
    cells += [format_value(result.get("training_iteration", "")),
              format_value(result.get("time_total_s", "")), lineage_hint(trial, max_len),
              lineage_cell(trial, max_len)]
    return cells


def resources_cell(trial: Trial) -> str:
    """The trial's current request (``2 CPU``, ``1 CPU 1 GPU``); shown when trials differ
    (a ResourceChangingScheduler changed some)."""
    return resources_text(trial.resources, trial.pending_resources, bool(trial.is_finished))


def resources_text(resources: Any, pending: Any, finished: bool) -> str:
    """``resources_cell`` from a trial's request, the one it waits for, and whether it ended."""
    waiting = pending if not finished else None
    r = waiting or resources or {}
    text = f"{int(r.get('cpu', 1))} CPU" + (f" {int(r['gpu'])} GPU" if r.get("gpu") else "")
    return text + (" (next)" if waiting else "")


def lineage_cell(trial: Trial, max_len: int = 20) -> str:
    """PBT: the donors the trial continued from, newest last (``t_00003@4>t_00001@8``); a long
    lineage keeps its newest end."""
    text = ">".join(trial.lineage)
    return text if len(text) <= max_len else "…" + text[-(max_len - 1):]


def lineage_hint(trial: Trial, max_len: int = 20) -> str:
    """What PBT last changed in the trial (its tag's ``@perturbed[...]``), "" if never exploited."""
    _, found, perturbed = trial.experiment_tag.partition("@perturbed[")
    return format_value(perturbed.rstrip("]"), max_len) if found else ""


def order_trials(trials: Sequence[Trial], metric: str | None = None, mode: str | None = None,
                 sort_by_metric: bool = False) -> list[Trial]:
    """Running first, then pending, paused, errored, terminated; or best ``metric`` first."""
    if sort_by_metric and metric and mode in ("min", "max"):
        sign = 1 if mode == "min" else -1

        def by_metric(t: Trial) -> tuple:
            value = flat_value(t.last_result, metric)
            return (0, sign * value) if is_finite_number(value) else (1, 0)

        return sorted(trials, key=by_metric)
    index = {id(t): i for i, t in enumerate(trials)}
    return sorted(trials, key=lambda t: (STATUS_ORDER.get(t.status.value, 9), index[id(t)]))


def _compact_rows(order: list[int], status: list[str], max_rows: int) -> tuple[list[int], str | None, list[int]]:
    """``compact`` on rows."""
    if max_rows <= 0 or len(order) <= max_rows:
        return order, None, []
    top_n = (max_rows + 1) // 2
    bottom_n = max_rows - top_n
    hidden = order[top_n:len(order) - bottom_n]
    note = f"... {len(hidden)} more trials: {_count_text(status[i] for i in hidden)} ..."
    return order[:top_n], note, order[len(order) - bottom_n:] if bottom_n else []


def compact(trials: Sequence[Trial], max_rows: int) -> tuple[list[Trial], str | None, list[Trial]]:
    """(top rows, a note on the hidden ones, bottom rows) for at most ``max_rows`` rows."""
    if max_rows <= 0 or len(trials) <= max_rows:
        return list(trials), None, []
    top_n = (max_rows + 1) // 2
    bottom_n = max_rows - top_n
    hidden = trials[top_n:len(trials) - bottom_n]
    note = f"... {len(hidden)} more trials: {count_text(hidden)} ..."
    return list(trials[:top_n]), note, list(trials[len(trials) - bottom_n:]) if bottom_n else []


def error_rows(trials: Sequence[Trial], max_rows: int) -> list[list[str]]:
    """(trial, failures, last line of the error) for errored trials."""
    errored = [t for t in trials if t.status.value == "ERROR"]
    rows = []
    for t in errored[:max_rows]:
        last = next((ln for ln in reversed((t.error or "").splitlines()) if ln.strip()), "")
        rows.append([t.name, str(t.num_failures), last[:120]])
    return rows


# -- rendering ----------------------------------------------------------------------------------
def render(view: StatusView, columns: Columns, max_rows: int = 20, max_error_rows: int = 20,
           sys_info: Sequence[str] | None = None, sort_by_metric: bool = False,
           max_len: int = 20) -> Any:
    """A rich renderable: "== Status ==", header lines, the trial table, the error table."""
    from rich.console import Group
    from rich.text import Text

    parts: list[Any] = [Text("== Status ==", style="bold")]
    parts += [Text(line) for line in (sys_info if sys_info is not None else header_lines(view))]
    cols = columns_of(view)
    ordered = order_rows(cols, view.metric, view.mode, sort_by_metric)
    top, note, bottom = _compact_rows(ordered, cols.status, max_rows)
    if top:
        parts.append(_table([cols.trial(i) for i in top], note, [cols.trial(i) for i in bottom], columns, max_len))
    errored = [i for i in ordered if cols.status[i] == "ERROR"]
    errors = error_rows([cols.trial(i) for i in errored[:max_error_rows]], max_error_rows)
    if errors:
        parts.append(_error_table(errors, len(errored)))
    parts += [Text(line) for line in view.allocation]
    return Group(*parts)


def _table(top: list[Trial], note: str | None, bottom: list[Trial], columns: Columns,
           max_len: int) -> Any:
    from rich import box
    from rich.table import Table

    headers = table_headers(columns)
    rows = [trial_row(t, columns, max_len) for t in [*top, *bottom]]
    same = {i for i, h in enumerate(headers) if h == RESOURCES_HEADER and len({r[i] for r in rows}) < 2}
    keep = [i for i in range(len(headers)) if i < 2 or (any(r[i] for r in rows) and i not in same)]
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, caption=note,
                  caption_justify="left")
    for i in keep:
        table.add_column(headers[i], justify="right" if i >= 5 else "left", no_wrap=True)
    for row in rows[:len(top)]:
        table.add_row(*[row[i] for i in keep], style=_style(row[1]))
    if note:
        table.add_row(*["..." for _ in keep], style="dim")
    for row in rows[len(top):]:
        table.add_row(*[row[i] for i in keep], style=_style(row[1]))
    return table


def _error_table(rows: list[list[str]], total: int) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, title=f"Number of errored trials: {total}",
                  title_justify="left", show_edge=False)
    for header in ("Trial name", "# failures", "error"):
        table.add_column(header, no_wrap=header != "error")
    for row in rows:
        table.add_row(*row, style="red")
    return table


def _style(status: str) -> str:
    return {"RUNNING": "green", "ERROR": "red", "PENDING": "yellow"}.get(status, "")


def plain_line(view: StatusView) -> str:
    """One line for batch logs: time, trials by state, Slurm queue, best, directory."""
    stamp = time.strftime("%H:%M:%S")
    cols = columns_of(view)
    line = (f"== Status == {stamp} | {cols.count} trials ({_count_text(cols.status)}) | "
            f"{_slurm_line(cols)}")
    row = best_row(cols, view.metric, view.mode)
    if row is not None:
        best = cols.trial(row)
        line += f" | best {view.metric}={format_value(flat_value(best.last_result, view.metric))} ({best.name})"
    return line + (f" | {view.experiment_dir}" if view.experiment_dir else "")


# -- formatting -----------------------------------------------------------------------------------
def format_value(value: Any, max_len: int = 20) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    text = "" if value is None else str(value)
    return text if len(text) <= max_len else text[: max_len - 1] + "…"


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def _age(updated: float | None) -> str:
    return f" (updated {format_duration(max(0.0, time.time() - updated))} ago)" if updated else ""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
