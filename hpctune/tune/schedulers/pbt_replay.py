"""Replaying a PBT trial's config schedule on one trial, as Ray's PopulationBasedTrainingReplay.

PBT does not find one config but a schedule of them: ``pbt_policy_<trial>.txt`` holds the
exploits in the lineage of a trial (each row: recipient tag, donor tag, recipient step,
donor step, donor config, new config). Walking the rows from the last one back while each
row's recipient is the next row's donor gives the chain that led to the trial; the
replay starts with the first donor's config and switches to each new config once
``training_iteration`` reaches the donor's step, by exploiting its own latest checkpoint
(``Exploit(self, config)``: the trial stops, resumes from that checkpoint with the new
config). Checkpoint every iteration for an exact replay.

The rows come from ``policy_file``, read by the driver (``hpctune.storage.pbt_files``) when
the experiment starts: decision logic never opens files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from hpctune.core.objective import check_state_version
from hpctune.errors import ConfigError
from hpctune.tune.experiment.trial import TrialInfo
from hpctune.tune.schedulers.pbt_explore import perturbed_tag
from hpctune.tune.schedulers.trial_scheduler import (
    Decision,
    Exploit,
    SchedulerDecision,
    TrialScheduler,
)

STATE_VERSION = 1


def policy_schedule(rows: Sequence[Sequence[Any]]) -> tuple[dict[str, Any] | None, list[tuple[int, dict]]]:
    """(initial config, [(step, config)...] in order) from a policy file's rows (Ray's chain)."""
    schedule: list[tuple[int, dict]] = []
    initial: dict[str, Any] | None = None
    last_donor_tag = None
    for tag, donor_tag, _step, donor_step, donor_config, new_config in reversed(list(rows)):
        if last_donor_tag is not None and tag != last_donor_tag:
            break  # the chain ends: earlier rows were overwritten by a later exploit
        last_donor_tag = donor_tag
        initial = dict(donor_config)
        schedule.append((int(donor_step), dict(new_config)))
    return initial, list(reversed(schedule))


def policy_path(policy_file: str | None, experiment_dir: str | None, trial_id: str | None) -> str:
    """The policy file: given as is, or (the reference's other form) ``experiment_dir`` and
    ``trial_id``, which name ``<experiment_dir>/pbt_policy_<trial_id>.txt``."""
    if policy_file is not None and experiment_dir is None and trial_id is None:
        return str(policy_file)
    if policy_file is None and experiment_dir is not None and trial_id is not None:
        # Ray's name of the file PBT writes (storage.experiment.pbt_policy_path); nothing is read here
        return os.path.join(os.path.expanduser(str(experiment_dir)), f"pbt_policy_{trial_id}.txt")
    raise ConfigError("PopulationBasedTrainingReplay takes either policy_file='<dir>/pbt_policy_<trial>.txt' "
                      "or experiment_dir='<dir>' with trial_id='<trial id>', not both and not one half: "
                      f"got policy_file={policy_file!r}, experiment_dir={experiment_dir!r}, "
                      f"trial_id={trial_id!r}.")


class PopulationBasedTrainingReplay(TrialScheduler):
    """Replays the config schedule of ``policy_file`` (a ``pbt_policy_<trial>.txt``) on one trial.

    Use it with ``num_samples=1``; the trial starts with the schedule's first config (the
    search space's config only when the file holds no exploit).
    """

    #: the driver reads ``policy_file`` and hands its rows to ``set_policy`` before the run
    needs_policy_rows = True

    def __init__(self, policy_file: str | None = None, *, experiment_dir: str | None = None,
                 trial_id: str | None = None, policy_rows: Sequence[Sequence[Any]] | None = None):
        super().__init__()
        self.policy_file = policy_path(policy_file, experiment_dir, trial_id)
        self.config: dict[str, Any] | None = None
        self._schedule: list[tuple[int, dict]] = []
        self._next = 0
        self._trial_id: str | None = None
        self._current_step = 0
        self._num_perturbations = 0
        if policy_rows is not None:
            self.set_policy(policy_rows)

    def set_policy(self, rows: Sequence[Sequence[Any]]) -> None:
        self.config, self._schedule = policy_schedule(rows)
        self.needs_policy_rows = False

    def on_trial_add(self, trial: TrialInfo) -> None:
        if self.needs_policy_rows:
            raise ConfigError(f"PopulationBasedTrainingReplay({self.policy_file!r}) has not read its "
                              "policy: run it through tune.Tuner (or call set_policy(rows)).")
        if self._trial_id is not None and self._trial_id != trial.trial_id:
            raise ConfigError("More than one trial was added to a PBT replay run, which would train "
                              "the same schedule several times: set TuneConfig(num_samples=1).")
        if not trial.config and not self._schedule:
            raise ConfigError("The PBT replay policy holds no exploit and the trial has no config: "
                              "give Tuner(param_space=...) or use another policy file.")
        self._trial_id = trial.trial_id

    def initial_config(self, trial: TrialInfo) -> dict[str, Any] | None:
        """The schedule's first config (the file's own config wins over the search space's)."""
        if self._schedule and self.config is not None and dict(trial.config) != self.config:
            return dict(self.config)
        return None

    def on_trial_result(self, trial: TrialInfo, result: Mapping[str, Any]) -> SchedulerDecision:
        step = result.get("training_iteration")
        if not isinstance(step, (int, float)) or self._next >= len(self._schedule):
            return Decision.CONTINUE
        self._current_step = step
        change_at, new_config = self._schedule[self._next]
        if step < change_at:
            return Decision.CONTINUE
        self._next += 1
        self._num_perturbations += 1
        tag = perturbed_tag(f"replay_{self.policy_file.rsplit('/', 1)[-1]}", new_config, new_config)
        return Exploit(trial.trial_id, new_config, log_config=False, experiment_tag=tag)

    def get_state(self) -> dict:
        return {"version": STATE_VERSION, "next": self._next, "trial_id": self._trial_id,
                "step": self._current_step, "perturbations": self._num_perturbations}

    def set_state(self, state: dict) -> None:
        check_state_version(state, STATE_VERSION, self)
        self._next, self._trial_id = state["next"], state["trial_id"]
        self._current_step, self._num_perturbations = state["step"], state["perturbations"]

    def debug_string(self) -> str:
        return (f"PopulationBasedTraining replay: Step {self._current_step}, "
                f"perturb {self._num_perturbations}")
