"""``hpctune plot EXP --metric loss -o curves.png``: the learning curves as a quick PNG.

With matplotlib (no browser, no network: the Agg backend); without it, plotly's figure through
kaleido, which needs a Chrome or Chromium: kaleido's own download needs the internet, so point
it at the system's (``BROWSER_PATH=/usr/bin/chromium``; found on PATH as ``chromium`` too).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from hpctune.errors import ConfigError
from hpctune.results.report import stats
from hpctune.results.report.data import ExperimentRecord


def plot_curves(exp: ExperimentRecord, metric: str, out: str | Path) -> Path:
    """Write ``metric`` against ``training_iteration`` for every trial (best highlighted) to ``out``."""
    if not any(stats.metric_values(t, metric) for t in exp.trials):
        known = ", ".join(stats.user_metrics(exp)[:10]) or "none yet"
        raise ConfigError(f"No trial reported a number for {metric!r}: choose one of {known}.")
    path = Path(out).expanduser()
    if importlib.util.find_spec("matplotlib") is not None:
        _matplotlib(exp, metric, path)
    else:
        _kaleido(exp, metric, path)
    return path


def _matplotlib(exp: ExperimentRecord, metric: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    best = {t.trial_id for t, _ in stats.ranked(exp)[:1]} if metric == exp.metric else set()
    fig, ax = plt.subplots(figsize=(9, 5), dpi=110)
    for record in exp.trials:
        points = stats.metric_values(record, metric)
        if points and record.trial_id not in best:
            ax.plot([p[0] for p in points], [p[1] for p in points], color="0.6", linewidth=0.8, alpha=0.6)
    for record in exp.trials:
        if record.trial_id in best:
            points = stats.metric_values(record, metric)
            ax.plot([p[0] for p in points], [p[1] for p in points], color="#d62728", linewidth=2.5,
                    label=f"best: {record.trial.name}")
    ax.set(xlabel="training_iteration", ylabel=metric, title=f"{exp.name}: {metric} ({len(exp.trials)} trials)")
    if best:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _kaleido(exp: ExperimentRecord, metric: str, path: Path) -> None:
    from hpctune.results.report.figures import learning_curves

    if importlib.util.find_spec("kaleido") is None or importlib.util.find_spec("plotly") is None:
        raise ConfigError("hpctune plot needs matplotlib (pip install matplotlib), or plotly and "
                          "kaleido with a Chrome/Chromium (BROWSER_PATH).")
    if "BROWSER_PATH" not in os.environ:
        found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
        if found:
            os.environ["BROWSER_PATH"] = found
    learning_curves(exp, metric).write_image(str(path), width=1000, height=550)
