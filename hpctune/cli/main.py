"""``hpctune``: submit experiments to Slurm and inspect them from any shell.

    hpctune submit train.py [ARGS...]        run a script that builds a Tuner and calls fit()
    hpctune submit experiment.toml           run a declarative experiment
    hpctune ls [STORAGE_PATH]                experiments with status, trial counts, best metric
    hpctune status EXP [--watch]             the progress table (from the shared filesystem)
    hpctune trials EXP [--sort --filter --columns --output]
    hpctune best EXP [--metric --mode]       the best trial: config, metrics, checkpoint
    hpctune logs EXP TRIAL [-f]              a trial's stdout/stderr across requeues
    hpctune cancel EXP [TRIAL...]            one scancel for all
    hpctune resume EXP                       continue an interrupted experiment
    hpctune profiles [NAME]                  site profiles
    hpctune doctor [STORAGE_PATH]            does this storage path (and Slurm) work for hpctune?

EXP is a directory, or an experiment name under $HPCTUNE_STORAGE_PATH (~/hpctune_results).
This module parses and dispatches; each command group lives in its own module.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from hpctune import __version__
from hpctune.errors import HpctuneError

#: the command modules (under ``hpctune.cli``), in the order of `hpctune --help`
COMMAND_MODULES = ("submit", "inspect", "trials", "logs", "cancel", "profiles", "doctor", "export",
                   "report", "plot")
#: which module registers each command: a run imports that module alone (``hpctune ls`` need
#: not import submit's Slurm and config code), ``--help`` and the docs import them all
COMMANDS = {"submit": "submit", "resume": "submit", "ls": "inspect", "status": "inspect",
            "best": "inspect", "trials": "trials", "logs": "logs", "cancel": "cancel",
            "profiles": "profiles", "doctor": "doctor", "export": "export", "report": "report",
            "plot": "plot"}
#: commands that run the user's code: its own errors keep their traceback
RUNS_USER_CODE = ("submit", "resume")


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"hpctune.cli.{name}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every ``hpctune`` command (``only``: of the commands of that one module,
    what a run of one of them needs)."""
    parser = argparse.ArgumentParser(
        prog="hpctune", description="Hyperparameter tuning on Slurm with Ray Tune's API.",
        epilog="Run `hpctune COMMAND --help` for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter)  # `--version`: one line at any width
    parser.add_argument("--version", action="version", version=f"hpctune {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in (only,) if only else COMMAND_MODULES:
        _module(name).add_commands(commands)
    return parser


def _command_module(argv: Sequence[str]) -> str | None:
    """The module of the command ``argv`` runs; None (every module) for no command, an unknown
    one or an option before it (``--help``, ``--version``)."""
    first = next(iter(argv), None)
    return COMMANDS.get(first) if isinstance(first, str) else None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hpctune`` console script; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_module(argv))
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except HpctuneError as exc:
        from hpctune.cli.common import printable

        print(f"hpctune {args.command}: error: {printable(exc, keep_newlines=True)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"hpctune {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `hpctune trials EXP | head`
        return 0
    except OSError as exc:  # e.g. another user's experiment, a full disk: one line, no traceback
        if args.command in RUNS_USER_CODE:
            raise
        from hpctune.cli.common import printable

        print(f"hpctune {args.command}: error: {printable(exc)}. Fix: check that the path exists and that "
              "you may read (or write) it.", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
