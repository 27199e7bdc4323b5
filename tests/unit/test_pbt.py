"""PopulationBasedTraining's decisions on synthetic populations: no driver, no files, no clock.

Each test adds trials, feeds results in a chosen order and checks every decision: who is
exploited, by which donor, with which config (quantiles, ties, burn-in, intervals, the
explore step with a seeded generator, nested and custom mutations), the synchronous
barrier, and a state round trip that continues the same population.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from hpctune import tune
from hpctune.controller.bridge import bridge_scheduler
from hpctune.errors import ConfigError
from hpctune.tune.experiment.trial import TrialInfo
from hpctune.tune.schedulers import Decision, Exploit, PopulationBasedTraining
from hpctune.tune.schedulers.pbt_explore import explore, fill_config, mutated_params, perturbed_tag

CONTINUE, PAUSE, STOP = Decision.CONTINUE, Decision.PAUSE, Decision.STOP


def info(i: int, **config) -> TrialInfo:
    return TrialInfo(f"t{i}", config or {"lr": 0.1}, f"{i}_lr")


def pbt(**kwargs) -> PopulationBasedTraining:
    args = {"time_attr": "training_iteration", "metric": "score", "mode": "max",
            "perturbation_interval": 2, "hyperparam_mutations": {"lr": [0.001, 0.01, 0.1, 1.0]},
            "seed": 0, **kwargs}
    return PopulationBasedTraining(**args)


def population(scheduler, n: int, **config) -> list[TrialInfo]:
    trials = [info(i, **(config or {"lr": 0.1})) for i in range(n)]
    for trial in trials:
        scheduler.on_trial_add(trial)
    return trials


def result(t: float, score: float) -> dict:
    return {"training_iteration": t, "score": score}


def feed_all(scheduler, trials, t, scores) -> list:
    """One result per trial at time ``t``, in trial order; the decisions."""
    return [scheduler.on_trial_result(trial, result(t, s)) for trial, s in zip(trials, scores, strict=True)]


def start(scheduler, trials) -> None:
    """A first result of every trial (not a perturbation point): all of them are running."""
    assert feed_all(scheduler, trials, 1, [0.0] * len(trials)) == [CONTINUE] * len(trials)


# -- quantiles -----------------------------------------------------------------------------------
def test_the_bottom_quarter_of_eight_exploits_the_top_quarter():
    s = pbt()
    trials = population(s, 8)
    start(s, trials)
    assert feed_all(s, trials[:7], 2, [1, 2, 3, 4, 5, 6, 7]) == [CONTINUE] * 7
    assert s._quantiles() == (["t0", "t1"], ["t5", "t6"])  # ceil(7 * 0.25) = 2
    decision = s.on_trial_result(trials[7], result(2, 0.5))  # now the worst of 8
    assert isinstance(decision, Exploit)
    assert decision.donor_trial_id in ("t5", "t6")  # the top ceil(8 * 0.25) = 2
    assert decision.new_config["lr"] in (0.01, 0.1, 1.0)  # a neighbour of 0.1, or resampled
    assert decision.experiment_tag == f"7_lr@perturbed[lr={decision.new_config['lr']:.4g}]"
    # t1 ... t6 were each on top when judged (a donor), t7 was exploited
    assert s.debug_string() == "PopulationBasedTraining: 6 checkpoints, 1 perturbs"
    # t7 is resubmitted into the slot it left: nobody pauses for it
    assert s.on_trial_result(trials[3], result(4, 4.0)) is CONTINUE
    assert s.on_trial_result(trials[7], result(3, 9.0)) is CONTINUE  # t7 runs again (not judged)
    decision = s.on_trial_result(trials[0], result(4, 0.0))  # the bottom one exploits again
    assert isinstance(decision, Exploit) and decision.donor_trial_id in ("t5", "t6")


def test_a_seeded_scheduler_makes_the_same_decisions():
    def run(seed):
        s = pbt(seed=seed, hyperparam_mutations={"lr": tune.loguniform(1e-4, 1)})
        trials = population(s, 8)
        start(s, trials)
        decisions = feed_all(s, trials, 2, [8, 7, 6, 5, 4, 3, 2, 1])
        decisions += feed_all(s, trials, 4, [1, 2, 3, 4, 5, 6, 7, 8])
        return [(d.donor_trial_id, d.new_config["lr"]) if isinstance(d, Exploit) else d for d in decisions]

    first = run(7)
    assert first == run(7)
    assert sum(isinstance(d, tuple) for d in first) >= 2
    assert first != run(8)


@pytest.mark.parametrize(("n", "fraction", "count"), [
    (8, 0.25, 2), (7, 0.25, 2), (4, 0.25, 1), (3, 0.5, 1), (5, 0.5, 2), (2, 0.5, 1), (10, 0.1, 1),
    (6, 0.0, 0)])
def test_quantile_size_is_ceil_of_n_times_q_capped_at_half(n, fraction, count):
    s = pbt(quantile_fraction=fraction)
    trials = population(s, n)
    for i, trial in enumerate(trials):
        s._trials[trial.trial_id].last_score = float(i)
    lower, upper = s._quantiles()
    assert len(lower) == len(upper) == count
    assert lower == [f"t{i}" for i in range(count)]
    assert upper == [f"t{i}" for i in range(n - count, n)]


def test_equal_scores_keep_the_order_trials_were_added_in():
    s = pbt(quantile_fraction=0.5)
    trials = population(s, 4)
    for trial in trials:
        s._trials[trial.trial_id].last_score = 1.0
    assert s._quantiles() == (["t0", "t1"], ["t2", "t3"])


def test_a_single_scored_trial_has_no_quantiles_and_finished_trials_leave_them():
    s = pbt(quantile_fraction=0.5)
    trials = population(s, 3)
    start(s, trials)
    s.on_trial_result(trials[0], result(2, 1.0))
    assert s._quantiles() == ([], [])
    s.on_trial_result(trials[1], result(2, 2.0))
    assert s._quantiles() == (["t0"], ["t1"])
    s.on_trial_complete(trials[1], result(2, 2.0))
    assert s._quantiles() == ([], [])


def test_nan_is_the_worst_score():
    s = pbt(quantile_fraction=0.5)
    trials = population(s, 2)
    start(s, trials)
    assert s.on_trial_result(trials[0], result(2, math.nan)) is CONTINUE
    assert s.on_trial_result(trials[1], result(2, -100.0)) is CONTINUE
    assert s._quantiles() == (["t0"], ["t1"])


def test_mode_min_ranks_small_values_on_top():
    s = pbt(mode="min", quantile_fraction=0.5)
    trials = population(s, 2)
    start(s, trials)
    s.on_trial_result(trials[0], result(2, 0.1))
    decision = s.on_trial_result(trials[1], result(2, 5.0))
    assert isinstance(decision, Exploit) and decision.donor_trial_id == "t0"


# -- when a trial is judged ---------------------------------------------------------------------------
def test_no_decision_before_the_burn_in_period_nor_within_an_interval():
    s = pbt(quantile_fraction=0.5, burn_in_period=4, perturbation_interval=2)
    trials = population(s, 2)
    start(s, trials)
    s.on_trial_result(trials[0], result(3, 10.0))
    assert s.on_trial_result(trials[1], result(3, 0.0)) is CONTINUE  # 3 < burn-in 4
    assert s._trials["t1"].last_score is None
    s.on_trial_result(trials[0], result(4, 10.0))
    assert isinstance(s.on_trial_result(trials[1], result(4, 0.0)), Exploit)
    s.on_trial_result(trials[0], result(5, 10.0))  # 5 - 4 < 2: not judged
    assert s._trials["t0"].last_train_time == 4


def test_a_result_without_the_metric_is_an_error_unless_require_attrs_is_off():
    s = pbt()
    (trial,) = population(s, 1)
    with pytest.raises(ConfigError, match="require_attrs=False"):
        s.on_trial_result(trial, {"training_iteration": 2})
    lax = pbt(require_attrs=False)
    (trial,) = population(lax, 1)
    assert lax.on_trial_result(trial, {"training_iteration": 2}) is CONTINUE


def test_others_waiting_for_a_slot_make_a_judged_trial_pause_to_share_it():
    """Ray's time sharing: a judged trial that is not exploited pauses while others have not run."""
    s = pbt(quantile_fraction=0.5)
    trials = population(s, 3)
    assert s.on_trial_result(trials[0], result(1, 1.0)) is CONTINUE  # not judged yet
    assert s.on_trial_result(trials[0], result(2, 1.0)) is PAUSE  # t1, t2 never ran
    assert s.on_trial_result(trials[0], result(3, 1.0)) is CONTINUE  # reported before pausing:
    assert not s._trials["t0"].running  # ... not taken for running
    for trial in trials[1:]:
        s.on_trial_result(trial, result(1, 1.0))
    assert s.resume_decision(trials[0]) is CONTINUE
    s.on_trial_result(trials[0], result(3, 1.0))  # resumed: running again
    assert s.on_trial_result(trials[1], result(2, 5.0)) is CONTINUE  # everyone is running


# -- explore --------------------------------------------------------------------------------------
def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_a_list_value_steps_to_a_neighbour_or_stays_at_an_end():
    values = [1, 2, 3, 4]
    seen = {explore({"b": 2}, {"b": values}, 0.0, (1.2, 0.8), None, rng(i))[0]["b"] for i in range(40)}
    assert seen == {1, 3}
    ends = {explore({"b": 1}, {"b": values}, 0.0, (1.2, 0.8), None, rng(i)) [1]["b"] for i in range(40)}
    assert ends == {"shift left (noop)", "shift right"}
    stays = {explore({"b": 1}, {"b": values}, 0.0, (1.2, 0.8), None, rng(i))[0]["b"] for i in range(40)}
    assert stays == {1, 2}


def test_a_value_not_in_the_list_is_resampled_from_it():
    new, ops = explore({"b": 7}, {"b": [1, 2, 3]}, 0.0, (1.2, 0.8), None, rng())
    assert new["b"] in (1, 2, 3) and ops == {"b": "resample"}


def test_resample_probability_with_a_seeded_generator():
    space = {"lr": tune.uniform(10, 20)}
    draws = [explore({"lr": 1.0}, space, 0.25, (1.2, 0.8), None, rng(i)) for i in range(400)]
    resampled = [new["lr"] for new, ops in draws if ops["lr"] == "resample"]
    perturbed = [new["lr"] for new, ops in draws if ops["lr"] != "resample"]
    assert 60 <= len(resampled) <= 140  # about a quarter of 400
    assert all(10 <= v < 20 for v in resampled)
    assert set(perturbed) == {1.2, 0.8}
    always = [explore({"lr": 1.0}, space, 1.0, (1.2, 0.8), None, rng(i))[1]["lr"] for i in range(20)]
    never = [explore({"lr": 1.0}, space, 0.0, (1.2, 0.8), None, rng(i))[1]["lr"] for i in range(20)]
    assert set(always) == {"resample"} and set(never) == {"* 1.2", "* 0.8"}
    assert explore({"lr": 1.0}, space, 0.25, (1.2, 0.8), None, rng(5)) == \
        explore({"lr": 1.0}, space, 0.25, (1.2, 0.8), None, rng(5))


def test_perturbation_factors_ints_stay_ints_and_functions_resample():
    new, ops = explore({"batch": 64}, {"batch": lambda: 32}, 0.0, (2.0,), None, rng())
    assert new == {"batch": 128} and type(new["batch"]) is int and ops == {"batch": "* 2.0"}
    new, _ = explore({"batch": 64}, {"batch": lambda: 32}, 0.0, (0.7,), None, rng())
    assert new == {"batch": 44} and type(new["batch"]) is int
    new, ops = explore({"batch": 64}, {"batch": lambda: 32}, 1.0, (0.7,), None, rng())
    assert new == {"batch": 32} and ops == {"batch": "resample"}
    new, _ = explore({"n": np.int64(10)}, {"n": tune.randint(1, 5)}, 0.0, (1.5,), None, rng())
    assert new == {"n": 15} and isinstance(new["n"], int)


def test_nested_mutations_and_untouched_keys():
    config = {"opt": {"lr": 0.1, "momentum": 0.9, "name": "sgd"}, "layers": 3}
    mutations = {"opt": {"lr": tune.loguniform(1e-3, 1), "momentum": [0.8, 0.9, 0.99]}}
    new, ops = explore(config, mutations, 0.0, (1.2, 0.8), None, rng(3))
    assert new["opt"]["lr"] in (pytest.approx(0.12), pytest.approx(0.08))
    assert new["opt"]["momentum"] in (0.8, 0.99) and new["opt"]["name"] == "sgd"
    assert new["layers"] == 3 and config["opt"]["lr"] == 0.1  # the donor's config is not changed
    assert set(ops) == {"opt"} and set(ops["opt"]) == {"lr", "momentum"}
    assert mutated_params(new, mutations) == {"opt": {"lr": new["opt"]["lr"],
                                                      "momentum": new["opt"]["momentum"]}}
    assert perturbed_tag("3_lr=0.1", {"opt": {"lr": 0.125, "momentum": 0.9}}, mutations) == \
        "3_lr=0.1@perturbed[opt/lr=0.125,opt/momentum=0.9]"


def test_custom_explore_fn_runs_after_the_built_in_explore():
    seen = []

    def custom(config):
        seen.append(dict(config))
        config["lr"] = min(config["lr"], 0.5)
        config["extra"] = True
        return config

    new, _ = explore({"lr": 1.0}, {"lr": [0.5, 1.0, 2.0]}, 0.0, (1.2, 0.8), custom, rng(1))
    assert seen[0]["lr"] in (0.5, 2.0) and new == {"lr": 0.5, "extra": True}
    only_custom, _ = explore({"lr": 1.0}, {}, 0.0, (1.2,), lambda c: {**c, "lr": 3}, rng())
    assert only_custom == {"lr": 3}
    with pytest.raises(ConfigError, match="custom_explore_fn returned None"):
        explore({"lr": 1.0}, {}, 0.0, (1.2,), lambda c: None, rng())


def test_missing_keys_are_sampled_when_a_trial_is_added():
    s = pbt(hyperparam_mutations={"lr": [0.1, 0.2], "opt": {"momentum": tune.uniform(0.5, 0.6)}})
    trial = TrialInfo("t0", {"layers": 2}, "0")
    s.on_trial_add(trial)
    filled = s.initial_config(trial)
    assert filled["layers"] == 2 and filled["lr"] in (0.1, 0.2) and 0.5 <= filled["opt"]["momentum"] < 0.6
    complete = TrialInfo("t1", {"lr": 0.1, "opt": {"momentum": 0.55}}, "1")
    s.on_trial_add(complete)
    assert s.initial_config(complete) is None
    assert fill_config({"opt": {}}, {"opt": {"m": [1]}}, rng()) == {"opt": {"m": 1}}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"hyperparam_mutations": {}}, "hyperparam_mutations` or `custom_explore_fn"),
    ({"hyperparam_mutations": {"lr": tune.sample_from(lambda spec: 1)}}, "sample_from"),
    ({"hyperparam_mutations": {"lr": 3}}, "must be a list of values"),
    ({"hyperparam_mutations": {"lr": []}}, "empty list"),
    ({"hyperparam_mutations": {"opt": {"lr": "x"}}}, r"hyperparam_mutations\['opt'\]\['lr'\]"),
    ({"quantile_fraction": 0.6}, "between 0 and 0.5"),
    ({"quantile_fraction": -0.1}, "quantile_fraction"),
    ({"perturbation_interval": 0}, "perturbation_interval"),
    ({"resample_probability": 1.5}, "between 0 and 1"),
    ({"perturbation_factors": ()}, "perturbation_factors"),
    ({"custom_explore_fn": 3}, "custom_explore_fn"),
    ({"seed": 1, "rng": np.random.default_rng(1)}, "either `seed` or `rng`"),
    ({"mode": "maximum"}, "must be 'min' or 'max'"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        pbt(**kwargs)


# -- synchronous PBT ------------------------------------------------------------------------------------
def test_synch_trials_pause_at_the_barrier_until_the_last_one_arrives():
    s = pbt(synch=True, quantile_fraction=0.25)
    trials = population(s, 4)
    start(s, trials)
    assert feed_all(s, trials[:3], 2, [3.0, 2.0, 1.0]) == [PAUSE] * 3
    assert [s.resume_decision(t) for t in trials[:3]] == [None] * 3  # held at the barrier
    assert s.on_trial_result(trials[0], result(3, 9.0)) is CONTINUE  # late report while pausing
    assert s._trials["t0"].last_score == 3.0  # ... is not taken into account
    last = s.on_trial_result(trials[3], result(2, 4.0))  # the last one: everyone is ranked
    assert last is CONTINUE  # the best goes on without pausing
    decisions = [s.resume_decision(t) for t in trials[:3]]
    assert decisions[0] is CONTINUE and decisions[1] is CONTINUE
    assert isinstance(decisions[2], Exploit) and decisions[2].donor_trial_id == "t3"
    assert [s.resume_decision(t) for t in trials[:3]] == [CONTINUE] * 3  # handed out once
    assert s._next_perturbation_sync == 4
    assert feed_all(s, trials, 3, [1, 1, 1, 1]) == [CONTINUE] * 4  # until the next barrier


def test_synch_the_last_to_arrive_may_be_the_one_exploited():
    s = pbt(synch=True, quantile_fraction=0.5)
    trials = population(s, 2)
    start(s, trials)
    assert s.on_trial_result(trials[0], result(2, 5.0)) is PAUSE
    decision = s.on_trial_result(trials[1], result(2, 1.0))
    assert isinstance(decision, Exploit) and decision.donor_trial_id == "t0"
    assert s.resume_decision(trials[0]) is CONTINUE


@pytest.mark.parametrize("leave", ["on_trial_error", "on_trial_remove", "on_trial_complete"])
def test_synch_a_trial_that_ends_releases_the_barrier(leave):
    s = pbt(synch=True, quantile_fraction=0.5)
    trials = population(s, 3)
    start(s, trials)
    assert feed_all(s, trials[:2], 2, [5.0, 1.0]) == [PAUSE, PAUSE]
    args = (trials[2], None) if leave == "on_trial_complete" else (trials[2],)
    getattr(s, leave)(*args)  # the third never reaches the barrier
    assert s.resume_decision(trials[0]) is CONTINUE
    decision = s.resume_decision(trials[1])
    assert isinstance(decision, Exploit) and decision.donor_trial_id == "t0"


def test_synch_barrier_waits_for_a_trial_that_has_not_started():
    s = pbt(synch=True, quantile_fraction=0.5)
    trials = population(s, 3)
    start(s, trials[:2])  # t2 is queued in Slurm
    assert feed_all(s, trials[:2], 2, [5.0, 1.0]) == [PAUSE, PAUSE]
    assert s.resume_decision(trials[0]) is None
    assert s.on_trial_result(trials[2], result(1, 0.0)) is CONTINUE
    decision = s.on_trial_result(trials[2], result(2, 3.0))
    assert decision is CONTINUE and isinstance(s.resume_decision(trials[1]), Exploit)


# -- state -----------------------------------------------------------------------------------------------
def test_state_round_trip_continues_the_same_population():
    def fresh():
        return pbt(synch=True, quantile_fraction=0.25, hyperparam_mutations={"lr": tune.uniform(0, 1)})

    first = fresh()
    trials = population(first, 4)
    start(first, trials)
    feed_all(first, trials[:3], 2, [3.0, 2.0, 1.0])
    saved = first.get_state()
    second = fresh()
    second.set_state(saved)
    for scheduler in (first, second):
        assert scheduler.on_trial_result(trials[3], result(2, 4.0)) is CONTINUE
    assert [second.resume_decision(t) for t in trials[:3]] == [first.resume_decision(t) for t in trials[:3]]
    with pytest.raises(ConfigError, match="version"):
        second.set_state({**saved, "version": 99})


def test_the_bridge_passes_exploits_and_resume_decisions_through():
    s = pbt(quantile_fraction=0.5)
    bridge = bridge_scheduler(s)
    trials = population(bridge, 2)
    start(bridge, trials)
    bridge.on_trial_result(trials[0], result(2, 5.0))
    decision = bridge.on_trial_result(trials[1], {"training_iteration": 2, "score": 1.0, "x": {"y": 1}})
    assert isinstance(decision, Exploit) and decision.donor_trial_id == "t0"
    assert bridge.resume_decision(trials[0]) is CONTINUE
    assert type(bridge).__name__ == "PopulationBasedTraining"
    assert bridge._decision("NOOP") is CONTINUE
    with pytest.raises(ConfigError, match="Exploit"):
        bridge._decision("EXPLOIT")


# -- replay -------------------------------------------------------------------------------------------------
ROWS = [  # t2's policy file: inherited from t0 (first row), then t2's own exploits
    ["0_lr=0.1", "1_lr=0.3", 4, 4, {"lr": 0.3}, {"lr": 0.36}],
    ["2_lr=0.2", "3_lr=0.5", 2, 2, {"lr": 0.5}, {"lr": 0.4}],  # overwritten by the next row
    ["2_lr=0.2", "0_lr=0.1", 6, 5, {"lr": 0.36}, {"lr": 0.288}],
    ["2_lr=0.2", "2_lr=0.2", 9, 8, {"lr": 0.288}, {"lr": 0.01}],
]


def test_replay_follows_the_chain_of_the_last_exploit():
    from hpctune.tune.schedulers.pbt_replay import policy_schedule

    # the last two rows chain (t2 <- t2 <- t0); the row before names t2 as recipient of t3: the
    # chain ends there, as in Ray
    assert policy_schedule(ROWS) == ({"lr": 0.36}, [(5, {"lr": 0.288}), (8, {"lr": 0.01})])
    assert policy_schedule([]) == (None, [])


def test_replay_switches_configs_at_the_recorded_steps():
    from hpctune.tune.schedulers import PopulationBasedTrainingReplay

    replay = PopulationBasedTrainingReplay("unused.txt", policy_rows=ROWS)
    trial = TrialInfo("r0", {"lr": 0.9}, "0")
    replay.on_trial_add(trial)
    assert replay.initial_config(trial) == {"lr": 0.36}
    decisions = [replay.on_trial_result(trial, {"training_iteration": i}) for i in range(1, 11)]
    exploits = [(i + 1, d) for i, d in enumerate(decisions) if isinstance(d, Exploit)]
    assert exploits == [
        (5, Exploit("r0", {"lr": 0.288}, False, "replay_unused.txt@perturbed[lr=0.288]")),
        (8, Exploit("r0", {"lr": 0.01}, False, "replay_unused.txt@perturbed[lr=0.01]"))]
    assert replay.debug_string() == "PopulationBasedTraining replay: Step 8, perturb 2"
    again = PopulationBasedTrainingReplay("unused.txt", policy_rows=ROWS)
    again.set_state(replay.get_state())
    assert again.on_trial_result(trial, {"training_iteration": 11}) is CONTINUE
    with pytest.raises(ConfigError, match="num_samples=1"):
        replay.on_trial_add(TrialInfo("r1", {"lr": 0.9}))


def test_replay_reads_its_file_through_the_driver(tmp_path):
    from hpctune.tune.schedulers import PopulationBasedTrainingReplay

    path = tmp_path / "pbt_policy_t2.txt"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    replay = PopulationBasedTrainingReplay(str(path))
    with pytest.raises(ConfigError, match="has not read its policy"):
        replay.on_trial_add(TrialInfo("r0", {}))
    bridge_scheduler(replay)
    assert replay.config == {"lr": 0.36}
    with pytest.raises(ConfigError, match="Policy file not found"):
        bridge_scheduler(PopulationBasedTrainingReplay(str(tmp_path / "missing.txt")))
    path.write_text("not json\n")
    with pytest.raises(ConfigError, match="line 1 is not a JSON list"):
        bridge_scheduler(PopulationBasedTrainingReplay(str(path)))
    empty = PopulationBasedTrainingReplay(str(path), policy_rows=[])
    assert empty.policy_file == str(path)
    with pytest.raises(ConfigError, match="holds no exploit and the trial has no config"):
        empty.on_trial_add(TrialInfo("r0", {}))
    empty.on_trial_add(TrialInfo("r1", {"lr": 1}))
    assert empty.initial_config(TrialInfo("r1", {"lr": 1})) is None


def test_create_scheduler_knows_the_new_names():
    from hpctune.tune.schedulers import PopulationBasedTrainingReplay, create_scheduler

    assert isinstance(create_scheduler("pbt", hyperparam_mutations={"lr": [1, 2]}), PopulationBasedTraining)
    assert isinstance(create_scheduler("PBT_replay", policy_file="x", policy_rows=[]),
                      PopulationBasedTrainingReplay)


def test_replay_takes_the_references_experiment_dir_and_trial_id_form(tmp_path):
    """Ray's docs: ``PopulationBasedTrainingReplay(experiment_dir="~/ray_results/pbt_experiment/",
    trial_id="XXXXX_00001")``."""
    from hpctune.tune.schedulers import PopulationBasedTrainingReplay

    (tmp_path / "pbt_policy_t2.txt").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    replay = PopulationBasedTrainingReplay(experiment_dir=str(tmp_path), trial_id="t2")
    assert replay.policy_file == str(tmp_path / "pbt_policy_t2.txt")
    bridge_scheduler(replay)
    assert replay.config == {"lr": 0.36}
    home = PopulationBasedTrainingReplay(experiment_dir="~/ray_results/pbt_experiment/", trial_id="XXXXX_00001")
    assert home.policy_file == os.path.expanduser("~/ray_results/pbt_experiment/pbt_policy_XXXXX_00001.txt")
    for half in ({"experiment_dir": str(tmp_path)}, {"trial_id": "t2"}, {}):
        with pytest.raises(ConfigError, match="either policy_file=.* or experiment_dir="):
            PopulationBasedTrainingReplay(**half)
