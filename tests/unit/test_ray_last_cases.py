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


# -- Tuner.restore(param_space=...): which objects are given anew -------------------------------
class Ref:
    """An object reference of one session (equal only to itself, as Ray's are after a restart)."""

    def __init__(self, key: str, session: int):
        self.key, self.session = key, session


def test_objects_are_re_specified_where_they_stand_and_nothing_else():
    from hpctune.tune.respecify import object_slots

    def space(session: int) -> dict:
        return {"data": Ref("data", session), "lr": tune.loguniform(1e-4, 1e-1),
                "nested": {"pair": (1, Ref("enc", session))},
                "model": tune.choice([Ref("small", session), Ref("large", session), "none"]),
                "seed": tune.sample_from(lambda spec: session)}

    slots = object_slots(space(1), space(2))
    trial = {"data": Ref("data", 1), "lr": 0.01, "nested": {"pair": (1, Ref("enc", 1))},
             "model": Ref("large", 1), "seed": 1}
    new = slots.apply(trial)
    assert new is not None and new["lr"] == 0.01 and new["seed"] == 1  # sampled values stay
    assert [new["data"].session, new["nested"]["pair"][1].session] == [2, 2]
    assert isinstance(new["nested"]["pair"], tuple) and new["nested"]["pair"][0] == 1
    assert (new["model"].key, new["model"].session) == ("large", 2)  # the option this trial got
    assert trial["data"].session == 1  # the trial's own config is not changed in place
    assert slots.apply({**trial, "data": Ref("other", 1), "model": "none", "nested": {}}) is None


def test_a_changed_distribution_or_grid_is_refused_before_anything_runs():
    import pytest

    from hpctune.errors import ConfigError
    from hpctune.tune.respecify import object_slots

    with pytest.raises(ConfigError, match="changes 'lr'"):
        object_slots({"lr": tune.uniform(0, 1)}, {"lr": tune.uniform(0, 2)})
    with pytest.raises(ConfigError, match="changes 'opt/grid_search'|changes 'opt'"):
        object_slots({"opt": tune.grid_search(["adam", "sgd"])}, {"opt": tune.grid_search(["adam", "lamb"])})
    with pytest.raises(ConfigError, match="changes 'a/b'"):
        object_slots({"a": {"b": [1, 2]}}, {"a": {"b": [1, 2, 3]}})
    assert object_slots({"x": 1, "f": tune.sample_from(lambda: 1)}, {"x": 1, "f": tune.sample_from(lambda: 2)}).slots == {}


def test_random_seed_before_pb2_repeats_its_randomness_too():
    """PB2 is PBT with a GP bandit: the same recipe seeds its donors and its GP's restarts."""
    import pytest

    pytest.importorskip("sklearn")

    def state(seed: int) -> dict:
        random.seed(seed)
        return tune.schedulers.pb2.PB2(time_attr="training_iteration", metric="score", mode="max",
                                       hyperparam_bounds={"lr": [1e-4, 1e-1]}).get_state()["rng"]

    assert state(1234) == state(1234) != state(4321)
