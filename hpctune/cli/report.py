"""``hpctune report EXP -o report.html``: one self-contained HTML file about an experiment
(summary, best trials, learning curves, configurations, early stopping, PBT lineage, Slurm).

Reads the experiment's files only, so it runs from any login node, also while the driver runs.
"""

from __future__ import annotations

import argparse
import time

from hpctune.cli.common import output_path, resolve_experiment


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register ``report``."""
    p = commands.add_parser(
        "report", help="write an HTML report of an experiment (opens offline)",
        description="Write one self-contained HTML file (plotly's JavaScript inline, no network "
        "needed to open it): summary, best trials, learning curves, configurations against the "
        "metric, early stopping, PBT lineage, what Slurm did. Needs plotly.")
    p.add_argument("experiment", metavar="EXP", help="experiment directory or name")
    p.add_argument("-o", "--output", metavar="OUT.html", default="report.html",
                   help="the file to write (default: report.html)")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from hpctune.results.report.data import load_experiment
    from hpctune.results.report.html import write_report

    out = output_path(args.output, "report")
    exp = resolve_experiment(args.experiment)
    start = time.monotonic()
    record = load_experiment(exp.root)
    path = write_report(record, out)
    print(f"hpctune report: {len(record.trials)} trials of {exp.root.name} -> {path} "
          f"({path.stat().st_size / 2**20:.1f} MiB in {time.monotonic() - start:.1f} s)")
    return 0
