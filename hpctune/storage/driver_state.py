"""The driver's snapshot for resuming: pickled searcher and scheduler state."""

from __future__ import annotations

import pickle
from typing import Any

from hpctune.storage.atomic import write_bytes_atomic
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.secure import load_private_pickle


def save_driver_state(exp: ExperimentDir, state: dict[str, Any]) -> None:
    """Atomically replace the snapshot a restored driver starts from."""
    write_bytes_atomic(exp.driver_state_path, pickle.dumps(state), fsync=False)


def load_driver_state(exp: ExperimentDir) -> dict[str, Any] | None:
    """The snapshot, or None; refused (UnsafeFileError) unless the file is yours and private."""
    path = exp.driver_state_path
    if not path.exists():
        return None
    return load_private_pickle(path)
