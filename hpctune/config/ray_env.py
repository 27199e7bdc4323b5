"""Ray Tune habits on Slurm: options that do nothing here say so once, and Ray's environment
variables that make sense on Slurm are read (docs/api.md lists which are honoured)."""

from __future__ import annotations

import os
import sys
from typing import Any

#: Ray's variable -> ours, copied into the driver's environment (the workers inherit it)
RAY_ENV_ALIASES = {"RAY_CHDIR_TO_TRIAL_DIR": "HPCTUNE_CHDIR_TO_TRIAL_DIR"}
DATED_SUBDIR_ENV = "TUNE_DISABLE_DATED_SUBDIR"
AUTO_LOGGERS_ENV = "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"
MAX_PENDING_ENV = "TUNE_MAX_PENDING_TRIALS_PG"

_SHOWN: set[str] = set()


def notice_once(key: str, message: str) -> None:
    """Print ``message`` for the person at the terminal, once per process."""
    if key in _SHOWN:
        return
    _SHOWN.add(key)
    print(f"hpctune: {message}", file=sys.stderr)


def config_notices(tune_config: Any, run_config: Any) -> None:
    """Say once that an option accepted for Ray compatibility has no effect here."""
    if run_config.sync_config is not None:
        notice_once("sync_config", "RunConfig(sync_config=...) has no effect: trials write to the "
                                   "shared filesystem directly, so there is nothing to sync.")


def apply_ray_env() -> None:
    """Honour Ray's names of variables we have under our own name (ours wins when both are set)."""
    for ray_name, ours in RAY_ENV_ALIASES.items():
        if ray_name in os.environ and ours not in os.environ:
            value = os.environ[ray_name].strip().lower()
            os.environ[ours] = "0" if value in ("0", "false", "no", "off") else "1"


def _flag(name: str) -> bool:
    return os.environ.get(name, "0").strip().lower() not in ("", "0", "false", "no", "off")


def dated_subdir() -> bool:
    """False when ``TUNE_DISABLE_DATED_SUBDIR=1``: a default experiment name has no date."""
    return not _flag(DATED_SUBDIR_ENV)


def auto_loggers_disabled() -> bool:
    """True when ``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1``: the Tuner adds none of Ray's default
    loggers (progress.csv, TensorBoard files); the result log is written regardless."""
    return _flag(AUTO_LOGGERS_ENV)


def max_pending_trials() -> int | None:
    """``TUNE_MAX_PENDING_TRIALS_PG`` as a number of trials (None: unset or ``auto``), for
    the launcher's limit of trials created ahead of free slots."""
    value = os.environ.get(MAX_PENDING_ENV, "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None
