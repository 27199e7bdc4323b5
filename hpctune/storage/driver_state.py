"""The driver's snapshot for resuming: pickled searcher and scheduler state.

The trials are not in it (``storage/journal`` keeps them): it records the number of the
snapshot it was written with (``journal_seq``), and ``load_driver_state`` adds the trials as
the journal had them at that snapshot. A snapshot of an hpctune before the journal holds its
trials itself (``trials``) and is read as it is."""

from __future__ import annotations

import pickle
from typing import Any

from hpctune.errors import ExperimentStateError
from hpctune.storage.atomic import write_bytes_atomic
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.journal import read_trial_state
from hpctune.storage.secure import load_private_pickle


def save_driver_state(exp: ExperimentDir, state: dict[str, Any]) -> None:
    """Atomically replace the snapshot a restored driver starts from."""
    import cloudpickle  # configs and searcher states may hold the user's own classes

    write_bytes_atomic(exp.driver_state_path, cloudpickle.dumps(state), fsync=True)


def load_driver_state(exp: ExperimentDir) -> dict[str, Any] | None:
    """The snapshot; None when no trial ever ran (a fresh start loses nothing).

    Refused (UnsafeFileError) unless the file is yours and private. A snapshot that is
    missing or damaged while trials have run is a clear error: starting over would run
    them again.
    """
    path = exp.driver_state_path
    if not path.exists():
        ran = [t for t in exp.trial_ids() if exp.result_log_path(t).exists()]
        if ran:
            raise ExperimentStateError(
                f"{path} is missing, but {len(ran)} trials of {exp.root} have run: restoring "
                "without it would start the experiment over and run them again. Nothing was "
                "changed; the results so far are readable with ResultGrid.from_path"
                f"('{exp.root}') or `hpctune trials {exp.root}`.")
        return None
    try:
        state = load_private_pickle(path)
    except (EOFError, pickle.UnpicklingError, AttributeError, ImportError, IndexError) as exc:
        raise ExperimentStateError(
            f"{path} is damaged ({type(exc).__name__}: {exc}): the experiment cannot be "
            "restored from it. Nothing was changed; the results so far are readable with "
            f"ResultGrid.from_path('{exp.root}').") from exc
    if not isinstance(state, dict) or not ("trials" in state or "journal_seq" in state):
        raise ExperimentStateError(f"{path} is not a driver snapshot of this hpctune version.")
    if "trials" not in state:
        state["trials"], state["state_problems"] = _journaled_trials(exp, state["journal_seq"])
    return state


def _journaled_trials(exp: ExperimentDir, seq: int) -> tuple[list[dict[str, Any]], list[str]]:
    """The trials as of snapshot ``seq`` (base + journal), and what the journal reader reported."""
    trials = read_trial_state(exp, upto_seq=seq)
    if trials is None:
        raise ExperimentStateError(
            f"{exp.state_path} is missing, but {exp.driver_state_path} says snapshot {seq} was "
            "written: restoring without the trials' records would run them again. Nothing was "
            f"changed; put the file back, or read the results with ResultGrid.from_path('{exp.root}').")
    return list(trials.trials.values()), trials.problems
