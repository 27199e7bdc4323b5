"""``hpctune profiles [NAME]``: list the site profiles, or show one's settings."""

from __future__ import annotations

import argparse

from hpctune.config.profiles import available_profiles, load_profile, profile_dirs


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register ``profiles``."""
    p = commands.add_parser("profiles", help="list site profiles, or show one",
                            description="Site profiles: the ones shipped with hpctune, "
                            "~/.config/hpctune/ and $HPCTUNE_PROFILE_PATH (later wins).")
    p.add_argument("name", nargs="?", help="show this profile's settings")
    p.set_defaults(func=cmd_profiles)


def cmd_profiles(args: argparse.Namespace) -> int:
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
