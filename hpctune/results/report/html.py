"""``hpctune report EXP -o report.html``: one self-contained HTML file about an experiment.

plotly's JavaScript is embedded once, inline (about 4.6 MB): the file opens anywhere, with no
network (compute clusters often have none). Sections: summary, best trials, learning curves
per metric, configurations against the metric, early stopping, PBT lineage, Slurm, all trials.
Every string from the experiment is HTML-escaped. Needs plotly (``pip install plotly``).
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path
from typing import Any

from hpctune.accounting.usage import usage_lines
from hpctune.errors import ConfigError
from hpctune.results.report import figures, stats
from hpctune.results.report.data import ExperimentRecord
from hpctune.storage import events as ev

MAX_CURVE_METRICS = 8
BEST_ROWS = 10
_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1400px}
h1{margin-bottom:0} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.9em} td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left}
th{background:#f3f3f3} .muted{color:#777} pre{background:#f7f7f7;padding:.6em;overflow:auto}
.ERROR{color:#b00} .TERMINATED{color:#145} .RUNNING{color:#070}
"""


def write_report(exp: ExperimentRecord, out: str | Path) -> Path:
    """Write the report of ``exp`` to ``out`` (one HTML file); returns its path."""
    try:
        import plotly.offline
    except ImportError as exc:
        raise ConfigError("The report needs plotly: pip install plotly (or 'hpctune[report]').") from exc
    sections = [_summary(exp), _best(exp), _curves(exp), _configs(exp), _early_stopping(exp),
                _pbt(exp), _slurm(exp), _all_trials(exp)]
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>hpctune report: {_e(exp.name)}</title><style>{_STYLE}</style>"
            f"<script type='text/javascript'>{plotly.offline.get_plotlyjs()}</script></head><body>"
            + "".join(sections) + "</body></html>")
    path = Path(out).expanduser()
    path.write_text(page, encoding="utf-8")
    return path


def _figure(fig: Any, div_id: str) -> str:
    if fig is None:
        return ""
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True})


def _e(value: Any) -> str:
    return html.escape(str(value))


def _table(header: list[str], rows: list[list[Any]], css: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(stats.short(c, 30))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table class='{css}'><tr>{head}</tr>{body}</table>"


def _summary(exp: ExperimentRecord) -> str:
    counts = ", ".join(f"{n} {s}" for s, n in sorted(stats.status_counts(exp).items()))
    ranked = stats.ranked(exp)
    best = ""
    if ranked:
        trial, value = ranked[0]
        best = (f"<p>Best trial: <b>{_e(trial.trial.name)}</b> with {_e(exp.metric)} = "
                f"<b>{_e(stats.short(value))}</b> ({_e(exp.mode)}), config "
                f"<code>{_e(json.dumps(trial.config, default=str))}</code></p>")
    rows = [["directory", str(exp.root)], ["metric", f"{exp.metric or '-'} ({exp.mode or '-'})"],
            ["scheduler", exp.spec.get("scheduler", "-")], ["backend", exp.spec.get("backend", "-")],
            ["hpctune", exp.spec.get("hpctune_version", "-")],
            ["created", time.strftime("%Y-%m-%d %H:%M", time.localtime(exp.spec.get("created", 0)))
             if exp.spec.get("created") else "-"],
            ["trials", f"{len(exp.trials)} ({counts})"],
            *[["allocation", line] for line in usage_lines(exp.usage.usage if exp.usage else None,
                                                           exp.usage.budget if exp.usage else None)]]
    space = (f"<details><summary>search space</summary><pre>{_e(json.dumps(exp.search_space, indent=1))}"
             "</pre></details>" if exp.search_space is not None else "")
    return (f"<h1>{_e(exp.name)}</h1><p class='muted'>hpctune experiment report, written "
            f"{time.strftime('%Y-%m-%d %H:%M')}</p><h2 id='summary'>Summary</h2>"
            f"{_table(['', ''], rows)}{best}{space}")


def _best(exp: ExperimentRecord) -> str:
    ranked = stats.ranked(exp)[:BEST_ROWS]
    if not ranked:
        return "<h2 id='best'>Best trials</h2><p>No trial reported the experiment's metric.</p>"
    keys = stats.config_columns(exp)
    from hpctune.core.metrics import flatten

    rows = [[i + 1, t.trial.name, t.trial.status.value, v, len(t.results),
             *[flatten(t.config).get(k, "") for k in keys]] for i, (t, v) in enumerate(ranked)]
    header = ["#", "trial", "status", f"best {exp.metric}", "results", *keys]
    return f"<h2 id='best'>Best trials</h2>{_table(header, rows)}"


def _curves(exp: ExperimentRecord) -> str:
    metrics = stats.user_metrics(exp)
    if not metrics:
        return "<h2 id='curves'>Learning curves</h2><p>No numeric results yet.</p>"
    more = (f"<p class='muted'>{len(metrics) - MAX_CURVE_METRICS} more metrics not drawn: "
            f"{_e(', '.join(metrics[MAX_CURVE_METRICS:]))}</p>" if len(metrics) > MAX_CURVE_METRICS else "")
    figs = "".join(_figure(figures.learning_curves(exp, m), f"curve-{i}")
                   for i, m in enumerate(metrics[:MAX_CURVE_METRICS]))
    return f"<h2 id='curves'>Learning curves</h2>{figs}{more}"


def _configs(exp: ExperimentRecord) -> str:
    body = _figure(figures.parallel_coordinates(exp), "parcoords") + _figure(figures.config_scatter(exp), "scatter")
    return f"<h2 id='configs'>Configurations against the metric</h2>{body or '<p>No metric to compare.</p>'}"


def _early_stopping(exp: ExperimentRecord) -> str:
    stopped = sum(1 for t in exp.trials if t.trial.stop_reason)
    note = f"<p>{stopped} trials were stopped by a scheduler or stopper.</p>" if stopped else ""
    return (f"<h2 id='early-stopping'>Early stopping</h2><p>Scheduler: {_e(exp.spec.get('scheduler', '-'))}."
            f"</p>{note}{_figure(figures.iterations_reached(exp), 'iterations')}")


def _pbt(exp: ExperimentRecord) -> str:
    exploits = [(t.trial_id, e) for t in exp.trials for e in t.lineage]
    if not exploits:
        return "<h2 id='pbt'>PBT lineage</h2><p>No PBT exploits in this experiment.</p>"
    rows = [[r, e.get(ev.DONOR, ""), e.get(ev.DONOR_ITERATION, ""), e.get(ev.STEP, ""),
             json.dumps(e.get(ev.NEW_CONFIG, ""), default=str)] for r, e in exploits]
    table = _table(["trial", "took the checkpoint of", "at iteration", "its own iteration", "new config"], rows)
    return f"<h2 id='pbt'>PBT lineage</h2>{_figure(figures.pbt_lineage(exp), 'lineage')}{table}"


def _slurm(exp: ExperimentRecord) -> str:
    s = stats.slurm_summary(exp)
    rows = [["jobs (array tasks)", s.jobs], ["runs (starts of a trial)", s.runs],
            ["preemptions and requeues", s.preemptions], ["failures (retried or final)", s.failures],
            ["queue wait (submitted to started)", s.queue_wait_text()],
            ["node-hours", f"{s.node_hours:.3f}"], ["GPU-hours", f"{s.gpu_hours:.3f}"],
            ["CPU-hours", f"{s.cpu_hours:.3f}"],
            ["runs by how they ended", ", ".join(f"{n} {k}" for k, n in sorted(s.by_ending.items()))]]
    return (f"<h2 id='slurm'>What Slurm did</h2>{_table(['', ''], rows)}"
            f"{_figure(figures.slurm_timeline(exp), 'timeline')}")


def _all_trials(exp: ExperimentRecord) -> str:
    rows = []
    for t in exp.trials:
        last = t.results[-1] if t.results else {}
        value = last.get(exp.metric, "") if exp.metric else ""
        rows.append([t.trial_id, t.trial.name, t.trial.status.value, last.get("training_iteration", 0),
                     value, ", ".join(t.job_ids), ((t.trial.error or "").strip().splitlines() or [""])[-1]])
    header = ["trial id", "name", "status", "iterations", f"last {exp.metric or ''}", "Slurm jobs", "error"]
    return f"<h2 id='trials'>All trials ({len(rows)})</h2>{_table(header, rows, 'trials')}"
