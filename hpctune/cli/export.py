"""``hpctune export EXP --hdf5 out.h5``: an experiment as one file to take elsewhere.

Reads the experiment's files only (the trials' logs, ``state.json``, configs as text), so it
runs from any login node, also while the driver runs (what the logs hold so far).
"""

from __future__ import annotations

import argparse
import time

from hpctune.cli.common import output_path, resolve_experiment
from hpctune.errors import ConfigError


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register ``export``."""
    p = commands.add_parser(
        "export", help="write an experiment's results to one file (HDF5)",
        description="Write every trial's results, config, status and Slurm jobs to one HDF5 file "
        "(layout: docs/api.md#hdf5-export; needs pip install 'hpctune[hdf5]').")
    p.add_argument("experiment", metavar="EXP", help="experiment directory or name")
    p.add_argument("--hdf5", metavar="OUT.h5", required=True, help="the file to write (replaced if it exists)")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from hpctune.results.hdf5 import write_hdf5
    from hpctune.results.report.data import load_experiment

    out = output_path(args.hdf5, "file")
    exp = resolve_experiment(args.experiment)
    start = time.monotonic()
    record = load_experiment(exp.root)
    if not record.trials:  # an HDF5 table needs columns; nothing is written
        raise ConfigError(f"{exp.root.name} has no trials yet: nothing to export, and {out} is not "
                          "written. Export it once a trial has reported (`hpctune status` shows them).")
    path = write_hdf5(record, out)
    size = path.stat().st_size / 2**20
    print(f"hpctune export: {len(record.trials)} trials of {exp.root.name} -> {path} "
          f"({size:.1f} MiB in {time.monotonic() - start:.1f} s)")
    return 0
