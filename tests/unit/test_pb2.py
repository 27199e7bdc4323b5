"""PB2's GP-bandit explore step on a synthetic population (needs scikit-learn)."""

from __future__ import annotations

import pytest

from hpctune.errors import ConfigError
from hpctune.tune.experiment.trial import TrialInfo
from hpctune.tune.schedulers import Exploit, create_scheduler

pytest.importorskip("sklearn")
from hpctune.tune.schedulers.pb2 import PB2  # noqa: E402

LRS = [0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95, 0.1]


def gain(lr: float) -> float:
    """Score gained per step: best at lr = 0.7."""
    return 1 - 4 * (lr - 0.7) ** 2


def run(scheduler: PB2, steps: int = 4) -> list[tuple]:
    """8 trials, each reporting its accumulated score every step; the exploits decided."""
    trials = [TrialInfo(f"t{i}", {"lr": lr, "batch": 64}, str(i)) for i, lr in enumerate(LRS)]
    for trial in trials:
        scheduler.on_trial_add(trial)
    for trial in trials:  # everyone is running
        scheduler.on_trial_result(trial, {"t": 0.5, "score": 0.0})
    score = dict.fromkeys(LRS, 0.0)
    exploits = []
    for step in range(1, steps + 1):
        for trial in trials:
            score[trial.config["lr"]] += gain(trial.config["lr"])
            decision = scheduler.on_trial_result(trial, {"t": step, "score": score[trial.config["lr"]]})
            if isinstance(decision, Exploit):
                exploits.append((step, trial.trial_id, decision.donor_trial_id, decision.new_config))
    return exploits


def pb2(**kwargs) -> PB2:
    return PB2(**{"time_attr": "t", "metric": "score", "mode": "max", "perturbation_interval": 1,
                  "hyperparam_bounds": {"lr": [0.0, 1.0], "batch": [16, 128]}, "seed": 0, **kwargs})


def test_the_bandit_picks_the_learning_rate_that_improves_most():
    exploits = run(pb2())
    assert exploits and {e[1] for e in exploits} <= {"t0", "t7"}  # the bottom quarter
    assert all(e[2] in ("t4", "t5") for e in exploits)  # the top quarter (0.65, 0.8)
    first_guided = [e for e in exploits if e[0] >= 2][0]  # with data on the donor's progress
    assert 0.55 <= first_guided[3]["lr"] <= 0.85
    assert all(isinstance(e[3]["batch"], int) and 16 <= e[3]["batch"] <= 128 for e in exploits)
    assert exploits == run(pb2())  # seeded: the same picks


def test_keys_missing_from_the_config_are_sampled_within_the_bounds():
    s = pb2()
    trial = TrialInfo("t0", {}, "0")
    s.on_trial_add(trial)
    filled = s.initial_config(trial)
    assert 0 <= filled["lr"] < 1 and 16 <= filled["batch"] < 128


def test_state_round_trip_keeps_the_data():
    first = pb2()
    run(first, steps=2)
    second = pb2()
    second.set_state(first.get_state())
    assert second._data == first._data and second._current == first._current
    assert second.debug_string().startswith("PB2: ")


@pytest.mark.parametrize(("bounds", "message"), [
    (None, "needs `hyperparam_bounds`"),
    ({"lr": [1.0]}, r"hyperparam_bounds\['lr'\]"),
    ({"lr": [0.1, 0.1]}, "two different numbers"),
    ({"lr": "x"}, "two different numbers"),
])
def test_bad_bounds_are_named(bounds, message):
    with pytest.raises(ConfigError, match=message):
        PB2(metric="score", mode="max", hyperparam_bounds=bounds)


def test_the_references_example_bounds_are_taken_in_either_order():
    """Ray's PB2 example: ``hyperparam_bounds={"lr": [1e-3, 1e-5], "alpha": [0.0, 1.0]}``."""
    pb2 = PB2(metric="score", mode="max", hyperparam_bounds={"lr": [1e-3, 1e-5], "alpha": [0.0, 1.0]})
    assert pb2._bounds == {"lr": (1e-5, 1e-3), "alpha": (0.0, 1.0)}


def test_create_scheduler_pb2():
    assert isinstance(create_scheduler("pb2", hyperparam_bounds={"lr": [0, 1]}), PB2)
