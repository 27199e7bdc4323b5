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
    hpctune profiles [NAME]                  site profiles (slurm_templates/)

EXP is a directory, or an experiment name under $HPCTUNE_STORAGE_PATH (~/hpctune_results).
Commands live in ``cli_submit`` (submit, resume, the detached driver) and ``cli_inspect``
(the read-only commands and cancel); this module parses and dispatches.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hpctune.errors import HpctuneError


def build_parser() -> argparse.ArgumentParser:
    from hpctune import __version__, cli_inspect, cli_submit

    parser = argparse.ArgumentParser(
        prog="hpctune", description="Hyperparameter tuning on Slurm with Ray Tune's API.",
        epilog="Run `hpctune COMMAND --help` for a command's options.")
    parser.add_argument("--version", action="version", version=f"hpctune {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    cli_submit.add_commands(commands)
    cli_inspect.add_commands(commands)
    add_profiles_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hpctune`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except HpctuneError as exc:
        print(f"hpctune {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"hpctune {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `hpctune trials EXP | head`
        return 0


# -- hpctune profiles ---------------------------------------------------------------------
def add_profiles_command(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("profiles", help="list site profiles, or show one",
                            description="Site profiles: the package's slurm_templates/, "
                            "~/.config/hpctune/ and $HPCTUNE_PROFILE_PATH (later wins).")
    p.add_argument("name", nargs="?", help="show this profile's settings")
    p.set_defaults(func=cmd_profiles)


def cmd_profiles(args: argparse.Namespace) -> int:
    from hpctune.profiles import available_profiles, load_profile, profile_dirs

    if args.name:
        profile = load_profile(args.name)
        print(f"{profile.name}: {profile.description}\nfile: {profile.path}")
        for title, table in (("slurm", profile.slurm), ("resources", profile.resources),
                             ("driver", profile.driver)):
            print(f"[{title}]")
            for key, value in table.items():
                print(f"  {key} = {value!r}")
        return 0
    files = available_profiles()
    width = max((len(n) for n in files), default=4)
    for name in files:
        profile = load_profile(name)
        print(f"{name:<{width}}  {profile.description}  ({profile.path})")
    print(f"\nSearched (later wins): {', '.join(str(d) for d in profile_dirs())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
