"""Ray's last smaller cases of issue 22, as the reference phrases them: PBT's randomness follows
``random.seed`` (the reproducibility recipe), ``Tuner.restore(param_space=...)``, ``Result.path``
under ``trial_dirname_creator`` and a PAUSE of a function trainable."""

import random

import numpy as np

from hpctune import tune
from hpctune.tune.experiment.trial import TrialInfo
from hpctune.tune.schedulers import Exploit


# -- PBT and the reproducibility recipe --------------------------------------------------------
def perturbations(seeded_before: int | None) -> list:
    """Ray's FAQ: "Set seed for the search algorithms/schedulers": ``random.seed(1234)`` and
    ``np.random.seed(5678)`` on the driver, then the scheduler is made."""
    if seeded_before is not None:
        random.seed(seeded_before)
        np.random.seed(5678)
    pbt = tune.schedulers.PopulationBasedTraining(
        time_attr="training_iteration", metric="score", mode="max", perturbation_interval=2,
        hyperparam_mutations={"lr": tune.loguniform(1e-4, 1), "units": [8, 16, 32, 64]})
    trials = [TrialInfo(f"t{i}", {"lr": 0.01, "units": 16}, f"{i}_lr") for i in range(8)]
    for trial in trials:
        pbt.on_trial_add(trial)
    decisions = []
    for t, scores in ((1, [0] * 8), (2, range(8)), (4, range(8, 0, -1)), (6, range(8))):
        for trial, score in zip(trials, scores, strict=True):
            decision = pbt.on_trial_result(trial, {"training_iteration": t, "score": score})
            if isinstance(decision, Exploit):
                decisions.append((trial.trial_id, decision.donor_trial_id, decision.new_config["lr"],
                                  decision.new_config["units"]))
    return decisions


def test_random_seed_before_pbt_gives_the_same_perturbations():
    first = perturbations(1234)
    assert len(first) >= 4
    assert perturbations(1234) == first
    assert perturbations(4321) != first


def test_without_a_seed_pbt_still_explores_differently_each_run():
    random.seed()  # from the OS: two runs differ, as in Ray
    assert perturbations(None) != perturbations(None)
