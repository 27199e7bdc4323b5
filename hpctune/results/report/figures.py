"""The report's plotly figures: learning curves, configurations against the metric, where
early stopping cut, PBT lineage, and the trials' Slurm runs over time.

Every trial of a curve figure is drawn; all but the best few share one trace (their lines
separated by gaps) so that a 1,000-trial experiment stays light in the browser.
"""

from __future__ import annotations

from typing import Any

from hpctune.results.report import stats
from hpctune.results.report.data import ExperimentRecord
from hpctune.storage import events as ev

HIGHLIGHTED = 5
_GREY = "rgba(120,120,120,0.35)"
_COLORS = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd"]


def learning_curves(exp: ExperimentRecord, metric: str) -> Any:
    """``metric`` against ``training_iteration`` for every trial; the best ones highlighted."""
    import plotly.graph_objects as go

    best = [t.trial_id for t, _ in stats.ranked(exp)[:HIGHLIGHTED]] if metric == exp.metric else []
    xs: list[Any] = []
    ys: list[Any] = []
    names: list[Any] = []
    fig = go.Figure()
    for record in exp.trials:
        points = stats.metric_values(record, metric)
        if not points or record.trial_id in best:
            continue
        xs += [p[0] for p in points] + [None]
        ys += [p[1] for p in points] + [None]
        names += [record.trial_id] * len(points) + [None]
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="all trials", text=names,
                             line={"color": _GREY, "width": 1}, connectgaps=False,
                             hovertemplate="%{text}<br>iteration %{x}<br>" + metric + " %{y}<extra></extra>"))
    for rank, trial_id in enumerate(best):
        record = next(t for t in exp.trials if t.trial_id == trial_id)
        points = stats.metric_values(record, metric)
        fig.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], mode="lines+markers",
                                 name=f"#{rank + 1} {record.trial.name}",
                                 line={"color": _COLORS[rank % len(_COLORS)], "width": 3 if rank == 0 else 2}))
    fig.update_layout(title=f"{metric} by training iteration", xaxis_title="training_iteration",
                      yaxis_title=metric, height=420, margin={"t": 50, "b": 40})
    return fig


def parallel_coordinates(exp: ExperimentRecord) -> Any | None:
    """Each trial a line through its hyperparameters and its best metric (None without a metric)."""
    import plotly.graph_objects as go

    ranked = stats.ranked(exp)
    if not ranked:
        return None
    dimensions = []
    for key in stats.config_columns(exp):
        values = [_flat_config(t.config).get(key) for t, _ in ranked]
        dimensions.append(_dimension(key, values))
    scores = [v for _, v in ranked]
    dimensions.append({"label": exp.metric, "values": scores})
    fig = go.Figure(go.Parcoords(dimensions=dimensions, line={
        "color": scores, "colorscale": "Viridis", "reversescale": exp.mode == "min", "showscale": True}))
    fig.update_layout(title=f"hyperparameters and best {exp.metric} (one line per trial)", height=420)
    return fig


def config_scatter(exp: ExperimentRecord) -> Any | None:
    """The best metric of each trial against each hyperparameter, one panel per hyperparameter."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    ranked = stats.ranked(exp)
    keys = stats.config_columns(exp)
    if not ranked or not keys:
        return None
    fig = make_subplots(rows=1, cols=len(keys), shared_yaxes=True, subplot_titles=keys)
    for col, key in enumerate(keys, start=1):
        xs = [_flat_config(t.config).get(key) for t, _ in ranked]
        fig.add_trace(go.Scatter(x=[x if isinstance(x, (int, float)) else str(x) for x in xs],
                                 y=[v for _, v in ranked], mode="markers", name=key,
                                 text=[t.trial_id for t, _ in ranked], showlegend=False), row=1, col=col)
    fig.update_yaxes(title_text=exp.metric, row=1, col=1)
    fig.update_layout(title=f"best {exp.metric} against each hyperparameter", height=380)
    return fig


def iterations_reached(exp: ExperimentRecord) -> Any:
    """Iterations each trial ran (early stopping's cuts), and how many trials stopped where."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = sorted(stats.iterations_reached(exp), key=lambda r: r[1])
    points = stats.stop_points(exp)
    fig = make_subplots(rows=1, cols=2, column_widths=[0.65, 0.35],
                        subplot_titles=("iterations reached per trial", "trials stopped at each iteration"))
    fig.add_trace(go.Bar(x=[r[0] for r in rows], y=[r[1] for r in rows], text=[r[2] for r in rows],
                         marker_color=[_status_color(r[2]) for r in rows], name="iterations",
                         showlegend=False), row=1, col=1)
    fig.add_trace(go.Bar(x=[p[0] for p in points], y=[p[1] for p in points], name="trials",
                         showlegend=False), row=1, col=2)
    fig.update_xaxes(showticklabels=len(rows) <= 40, row=1, col=1)
    fig.update_layout(height=360, title="where early stopping cut trials")
    return fig


def pbt_lineage(exp: ExperimentRecord) -> Any | None:
    """Each PBT exploit as an arrow from the donor (at its checkpoint) to the recipient."""
    import plotly.graph_objects as go

    exploits = [(t.trial_id, e) for t in exp.trials for e in t.lineage]
    if not exploits:
        return None
    fig = go.Figure()
    for recipient, event in exploits:
        donor = str(event.get(ev.DONOR, "?"))
        fig.add_trace(go.Scatter(
            x=[event.get(ev.DONOR_ITERATION), event.get(ev.STEP)], y=[donor, recipient],
            mode="lines+markers", showlegend=False, line={"width": 1.5},
            hovertext=f"{recipient} took {donor}'s checkpoint at {event.get(ev.DONOR_ITERATION)}"))
    fig.update_layout(title="PBT exploits: donor checkpoint -> recipient", xaxis_title="training_iteration",
                      height=max(300, 18 * len({t.trial_id for t in exp.trials})))
    return fig


def slurm_timeline(exp: ExperimentRecord) -> Any:
    """Every run of every trial on the wall clock, coloured by how it ended (one trace per
    ending, however many runs)."""
    import plotly.graph_objects as go

    start = min((r.start for t in exp.trials for r in t.runs), default=0.0)
    bars: dict[str, dict[str, list]] = {}
    for record in exp.trials:
        for run in record.runs:
            bar = bars.setdefault(run.ended_by or "running", {"x": [], "y": [], "base": [], "text": []})
            bar["x"].append(max(run.end - run.start, 0.01))
            bar["y"].append(record.trial_id)
            bar["base"].append(run.start - start)
            bar["text"].append(f"job {run.job_id} on {run.host}")
    fig = go.Figure([go.Bar(x=b["x"], y=b["y"], base=b["base"], hovertext=b["text"], orientation="h",
                            name=ending, marker_color=_status_color(ending))
                     for ending, b in bars.items()])
    fig.update_layout(title="Slurm runs of each trial (seconds since the first start)", barmode="overlay",
                      xaxis_title="seconds", height=max(300, 16 * len(exp.trials)),
                      yaxis={"showticklabels": len(exp.trials) <= 60})
    return fig


def _dimension(key: str, values: list[Any]) -> dict[str, Any]:
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return {"label": key, "values": values}
    labels = sorted({str(v) for v in values})
    return {"label": key, "values": [labels.index(str(v)) for v in values],
            "tickvals": list(range(len(labels))), "ticktext": labels}


def _flat_config(config: dict) -> dict[str, Any]:
    from hpctune.core.metrics import flatten

    return flatten(config)


def _status_color(status: str) -> str:
    return {"TERMINATED": "#1f77b4", "complete": "#1f77b4", "stopped": "#7f7f7f", "ERROR": "#d62728",
            "error": "#d62728", "preempted": "#ff7f0e", "requeued": "#ff7f0e", "paused": "#9467bd",
            "RUNNING": "#2ca02c", "running": "#2ca02c", "PENDING": "#bcbd22"}.get(status, "#8c564b")
