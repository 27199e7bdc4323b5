"""The experiment directory layout on the shared filesystem (see ARCHITECTURE.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpctune.storage.atomic import read_json, write_bytes_atomic, write_json_atomic

EXPERIMENT_FILE = "experiment.json"
STATE_FILE = "state.json"
TRAINABLE_FILE = "trainable.pkl"
SUMMARY_FILE = "summary.json"


class ExperimentDir:
    """Paths and small readers/writers for one experiment directory.

    ``<root>/experiment.json`` (spec, written once), ``state.json`` (driver snapshot),
    ``trainable.pkl``, ``trials/<id>/{params.json,result.jsonl,control.json}``, ``jobs/``.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()

    @property
    def trials_dir(self) -> Path:
        return self.root / "trials"

    @property
    def jobs_dir(self) -> Path:
        return self.root / "jobs"

    @property
    def trainable_path(self) -> Path:
        return self.root / TRAINABLE_FILE

    @property
    def state_path(self) -> Path:
        return self.root / STATE_FILE

    @property
    def summary_path(self) -> Path:
        return self.root / SUMMARY_FILE

    @property
    def experiment_path(self) -> Path:
        return self.root / EXPERIMENT_FILE

    def create(self) -> None:
        self.trials_dir.mkdir(parents=True, exist_ok=True)
        self.jobs_dir.mkdir(parents=True, exist_ok=True)

    def trial_dir(self, trial_id: str) -> Path:
        return self.trials_dir / trial_id

    def result_log_path(self, trial_id: str) -> Path:
        return self.trial_dir(trial_id) / "result.jsonl"

    def control_path(self, trial_id: str) -> Path:
        return self.trial_dir(trial_id) / "control.json"

    def params_path(self, trial_id: str) -> Path:
        return self.trial_dir(trial_id) / "params.json"

    def write_trainable(self, payload: bytes) -> None:
        write_bytes_atomic(self.trainable_path, payload)

    def write_experiment(self, spec: dict[str, Any]) -> None:
        write_json_atomic(self.experiment_path, spec)

    def read_experiment(self) -> dict[str, Any]:
        return read_json(self.experiment_path, default={})

    def write_params(self, trial_id: str, params: dict[str, Any]) -> None:
        self.trial_dir(trial_id).mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.params_path(trial_id), params, fsync=False)

    def read_params(self, trial_id: str) -> dict[str, Any]:
        return read_json(self.params_path(trial_id), default={})

    def write_control(self, trial_id: str, request: dict[str, Any]) -> None:
        write_json_atomic(self.control_path(trial_id), request, fsync=False)

    def clear_control(self, trial_id: str) -> None:
        self.control_path(trial_id).unlink(missing_ok=True)

    def trial_ids(self) -> list[str]:
        if not self.trials_dir.is_dir():
            return []
        return sorted(p.name for p in self.trials_dir.iterdir() if p.is_dir())
