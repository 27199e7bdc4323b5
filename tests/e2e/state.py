"""What the driver's last snapshot says, for tests that watch a running experiment: the base
(``state.json``) and the journal of changes since (``state.journal``), read as hpctune does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.journal import read_trial_state


def state_of(exp: str | Path) -> dict[str, Any]:
    """``{"trials": [...], <run fields>}`` as of the last snapshot; ``{}`` before the first."""
    state = read_trial_state(ExperimentDir(exp))
    return state.as_snapshot() if state is not None else {}


def trials_of(exp: str | Path) -> list[dict[str, Any]]:
    """The trial records as of the last snapshot; none before the first."""
    return state_of(exp).get("trials", [])
