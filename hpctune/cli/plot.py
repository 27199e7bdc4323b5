"""``hpctune plot EXP --metric loss -o curves.png``: the learning curves of every trial as a PNG
(matplotlib if installed, else plotly with kaleido and a Chromium)."""

from __future__ import annotations

import argparse

from hpctune.cli.common import experiment_info, output_path, resolve_experiment
from hpctune.errors import ConfigError


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register ``plot``."""
    p = commands.add_parser("plot", help="plot a metric of every trial to a PNG",
                            description="Plot a metric against training_iteration for every trial "
                            "(the best one highlighted) to a PNG file.")
    p.add_argument("experiment", metavar="EXP", help="experiment directory or name")
    p.add_argument("--metric", help="default: the experiment's metric")
    p.add_argument("-o", "--output", metavar="OUT.png", default="curves.png",
                   help="the file to write (default: curves.png)")
    p.set_defaults(func=cmd_plot)


def cmd_plot(args: argparse.Namespace) -> int:
    from hpctune.results.report.data import load_experiment
    from hpctune.results.report.png import plot_curves

    exp = resolve_experiment(args.experiment)
    metric = args.metric or experiment_info(exp)["metric"]
    if not metric:
        raise ConfigError("The experiment names no metric: pass --metric NAME.")
    out = output_path(args.output, "plot")
    path = plot_curves(load_experiment(exp.root), metric, out)
    print(f"hpctune plot: {metric} of {exp.root.name} -> {path}")
    return 0
