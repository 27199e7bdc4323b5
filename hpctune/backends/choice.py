"""Which backend runs the trials: Slurm where ``sbatch`` exists, local processes otherwise."""

from __future__ import annotations

import os
import sys

from hpctune.errors import ConfigError

BACKEND_ENV = "HPCTUNE_BACKEND"


def choose_backend(requested: str | None) -> str:
    """HPCTUNE_BACKEND wins over the argument; without either, Slurm if sbatch exists."""
    from shutil import which

    choice = os.environ.get(BACKEND_ENV) or requested
    if choice is None:
        if which("sbatch"):
            return "slurm"
        print("hpctune: no `sbatch` on this machine: running trials as local processes.",
              file=sys.stderr)
        return "local"
    if choice not in ("slurm", "local"):
        raise ConfigError(f"Unknown backend {choice!r}: use 'slurm' or 'local' "
                          f"(argument backend= or environment variable {BACKEND_ENV}).")
    if choice == "slurm" and not which("sbatch"):
        raise ConfigError("backend='slurm' but `sbatch` is not on PATH: run on a Slurm login node "
                          "or use backend='local'.")
    return choice
