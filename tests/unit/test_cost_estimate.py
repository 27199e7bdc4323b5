"""The worst-case cost estimate (accounting/estimate.py) against figures worked out by hand,
and the inputs gathered from a Tuner (accounting/from_tuner.py)."""

from __future__ import annotations

import subprocess

import pytest

import hpctune as tune
from hpctune import TuneConfig, Tuner
from hpctune.accounting.estimate import (
    UNWEIGHTED,
    BillingWeights,
    CostInputs,
    TrialShape,
    asha_bound,
    describe,
    estimate,
    hyperband_bound,
    iteration_limit,
)
from hpctune.accounting.from_tuner import cost_inputs, estimate_for_tuner
from hpctune.backends.slurm import SlurmBackend
from hpctune.config import FailureConfig, RunConfig, SlurmConfig
from hpctune.tune.schedulers import ASHAScheduler, HyperBandScheduler
from hpctune.tune.stopper import MaximumIterationStopper
from tests.unit.cli_env import cli_env, run  # noqa: F401 - cli_env is autouse: storage under tmp_path


@pytest.fixture(autouse=True)
def slurm_backend(cli_env, monkeypatch):  # noqa: F811 - after cli_env, which it overrides
    monkeypatch.setenv("HPCTUNE_BACKEND", "slurm")  # the Tuners here preview Slurm (HPCTUNE_BACKEND wins)


def train(config):
    pass


def figures(cost):
    return (cost.trials, cost.jobs, cost.node_hours, cost.cpu_hours, cost.gpu_hours, cost.billing_hours)


# -- the arithmetic ------------------------------------------------------------------------------
def test_a_grid_is_trials_times_the_time_limit_times_the_resources():
    # 4 grid points x 2 samples = 8 trials of 4 CPUs + 1 GPU, 30 min each: 8 x 0.5 h = 4 trial-hours
    cost = estimate(CostInputs(trials=8, shape=TrialShape(cpus=4, gpus=1), time_limit_min=30))
    assert figures(cost) == (8, 8, 4.0, 16.0, 4.0, 16.0)  # unweighted: billing = CPU-hours
    assert cost.billing == UNWEIGHTED
    assert cost.bounded_by == "time limit 30 min per job"


def test_billing_weights_sum_over_cpu_memory_and_gpus():
    weights = BillingWeights.parse("CPU=1.0,Mem=0.25G,GRES/gpu=2.0")
    assert (weights.cpu, weights.mem_per_gb, weights.gpu, weights.node) == (1.0, 0.25, 2.0, 0.0)
    # per trial: 4 CPUs x 1 + 8 GB x 0.25 + 1 GPU x 2 = 8 units; 8 trials x 0.5 h x 8 = 32
    cost = estimate(CostInputs(trials=8, shape=TrialShape(cpus=4, gpus=1, mem_gb=8), time_limit_min=30,
                               billing=weights))
    assert cost.billing_hours == 32.0
    assert cost.cpu_hours == 16.0  # the other figures do not change
    assert cost.billing == "TRESBillingWeights=CPU=1.0,Mem=0.25G,GRES/gpu=2.0"


def test_a_memory_weight_without_a_unit_is_per_megabyte():
    assert BillingWeights.parse("Mem=0.001").mem_per_gb == pytest.approx(1.024)
    assert BillingWeights.parse("Mem=2T").mem_per_gb == pytest.approx(2 / 1024)
    assert BillingWeights.parse("CPU=0.5,Node=10,GRES/gpu:a100=4").node == 10.0
    assert BillingWeights.parse("GRES/gpu:a100=4").gpu == 4.0


def test_a_memory_weight_without_a_memory_request_is_said():
    cost = estimate(CostInputs(trials=1, shape=TrialShape(cpus=2), time_limit_min=60,
                               billing=BillingWeights.parse("CPU=1,Mem=1G")))
    assert cost.billing_hours == 2.0
    assert any("no memory requested" in note for note in cost.notes)


def test_a_multi_node_trial_counts_every_node_task_and_gpu():
    # 2 nodes x 4 tasks of 8 CPUs = 64 CPUs; 4 GPUs per node = 8 GPUs; 3 trials x 2 h = 6 h
    shape = TrialShape.from_resources({"cpu": 8, "gpu": 4, "nodes": 2, "tasks_per_node": 4})
    assert shape == TrialShape(nodes=2, cpus=64, gpus=8.0, mem_gb=None)
    cost = estimate(CostInputs(trials=3, shape=shape, time_limit_min=120))
    assert figures(cost) == (3, 3, 12.0, 384.0, 48.0, 384.0)


def test_tasks_without_nodes_may_span_a_node_each():
    shape = TrialShape.from_resources({"cpu": 2, "tasks": 6, "gpus_per_task": 1, "mem_gb": 4})
    assert shape == TrialShape(nodes=6, cpus=12, gpus=6.0, mem_gb=24.0)


def test_pool_slots_change_the_jobs_not_the_hours():
    # 10 trials of 2 CPUs and a quarter GPU: 4 per pool task -> ceil(10 / 4) = 3 jobs
    shape = TrialShape.from_resources({"cpu": 2, "gpu": 0.25})
    pooled = estimate(CostInputs(trials=10, shape=shape, time_limit_min=60, pool_slots=4))
    alone = estimate(CostInputs(trials=10, shape=shape, time_limit_min=60))
    assert figures(pooled) == (10, 3, 10.0, 20.0, 2.5, 20.0)
    assert figures(alone) == (10, 10, 10.0, 20.0, 2.5, 20.0)


def test_retries_multiply_and_endless_ones_are_unbounded():
    shape = TrialShape(cpus=1)
    assert estimate(CostInputs(trials=4, shape=shape, time_limit_min=60, attempts=3)).cpu_hours == 12.0
    endless = estimate(CostInputs(trials=4, shape=shape, time_limit_min=60, attempts=None))
    assert figures(endless) == (4, None, None, None, None, None)
    assert any("max_failures=-1" in note for note in endless.notes)


def test_unbounded_samples_say_so():
    cost = estimate(CostInputs(trials=None, shape=TrialShape(), time_limit_min=60))
    assert figures(cost) == (None, None, None, None, None, None)
    assert "worst-case cost: unbounded trials, unbounded Slurm jobs" in describe(cost)
    assert any("num_samples=-1" in note for note in cost.notes)


def test_the_time_budget_caps_the_hours_when_concurrency_is_bounded():
    # 100 trials x 1 h would be 100 h; a 1 h budget with 2 at once is 2 trial-hours at most
    cost = estimate(CostInputs(trials=100, shape=TrialShape(cpus=3), time_limit_min=60,
                               max_concurrent=2, time_budget_s=3600))
    assert (cost.trial_hours, cost.cpu_hours) == (2.0, 6.0)
    assert cost.bounded_by == "time_budget_s=3600 x max_concurrent_trials=2"
    no_cap = estimate(CostInputs(trials=100, shape=TrialShape(), time_limit_min=60, time_budget_s=3600))
    assert no_cap.trial_hours == 100.0  # no max_concurrent: the budget bounds nothing


def test_an_iteration_limit_bounds_time_only_with_seconds_per_iteration():
    bound = iteration_limit(10, "stop={'training_iteration': 10}")
    plain = estimate(CostInputs(trials=5, shape=TrialShape(), time_limit_min=60, bound=bound))
    assert (plain.trial_hours, plain.trial_iterations) == (5.0, 50)  # the time limit, and 5 x 10
    assert any("bounds training_iteration, not time" in note for note in plain.notes)
    # 50 iterations x 36 s = 0.5 h, tighter than 5 h of time limits
    timed = estimate(CostInputs(trials=5, shape=TrialShape(), time_limit_min=60, bound=bound,
                                seconds_per_iteration=36))
    assert timed.trial_hours == pytest.approx(0.5)
    assert timed.bounded_by == "stop={'training_iteration': 10} at 36 s per iteration"


def test_asha_is_bounded_by_max_t_per_trial_and_reports_its_rungs():
    bound = asha_bound(max_t=81, grace_period=1, reduction_factor=3, trials=10)
    assert (bound.per_trial, bound.total) == (81, None)
    # rungs 1, 3, 9, 27, 81; as designed each trial runs 1 + 2/3 + 6/9 + 18/27 + 54/81 = 11/3
    # iterations on average: 10 trials -> 36.67
    assert "rungs at 1, 3, 9, 27, 81" in bound.note and "about 36.6667 trial-iterations" in bound.note
    cost = estimate(CostInputs(trials=10, shape=TrialShape(cpus=2), time_limit_min=60, bound=bound,
                               seconds_per_iteration=10))
    # worst case 10 x 81 = 810 iterations x 10 s = 2.25 h, under 10 h of time limits
    assert (cost.trial_iterations, cost.trial_hours, cost.cpu_hours) == (810, 2.25, 4.5)


def test_hyperband_brackets_bound_the_sum():
    # max_t=9, eta=3: s_max_1 = 3 brackets: (3 trials from 9), (5 from 3), (9 from 1)
    # bracket 0: 3 x 9 = 27; bracket 1: 5 x 3, then ceil(5/3) = 2 to min(9, 9 - 3) = 6: 15 + 6 = 21
    # bracket 2: 9 x 1, 3 to 3 (+6), 1 to min(9, 9 - 3) = 6 (+3): 18. In all 66.
    bound = hyperband_bound(max_t=9, eta=3, trials=17)
    assert (bound.total, bound.jobs_per_trial) == (66, 3)
    cost = estimate(CostInputs(trials=17, shape=TrialShape(), time_limit_min=60, bound=bound))
    assert cost.jobs == 51  # each pause at a milestone resubmits: 3 jobs per trial at most
    assert cost.trial_iterations == 66
    # a partly filled bracket: 4 trials -> 3 x 9 in bracket 0, 1 x 3 then 1 x 3 more in bracket 1
    assert hyperband_bound(max_t=9, eta=3, trials=4).total == 27 + 3 + 3


def test_the_description_is_comment_lines():
    text = describe(estimate(CostInputs(trials=2, shape=TrialShape(cpus=4), time_limit_min=90)))
    assert text.splitlines()[:3] == [
        "# worst-case cost: 2 trials, 2 Slurm jobs",
        "#   node-hours 3.0, CPU-hours 12.0, GPU-hours 0.0, billing units x hours 12.0",
        "#   bounded by: time limit 90 min per job"]
    assert all(line.startswith("# ") for line in text.splitlines())


# -- from a Tuner -----------------------------------------------------------------------------------
def grid_tuner(**tune_config):
    return Tuner(tune.with_resources(train, {"cpu": 4, "gpu": 1}),
                 param_space={"x": tune.grid_search([1, 2, 3, 4])},
                 tune_config=TuneConfig(**{"num_samples": 2, **tune_config}), backend="slurm",
                 slurm_config=SlurmConfig(time_min=30))


def test_a_tuner_gives_grid_times_samples_and_its_resources():
    inputs = cost_inputs(grid_tuner(), "CPU=1.0,GRES/gpu=2.0")
    assert (inputs.trials, inputs.shape, inputs.time_limit_min, inputs.attempts) == (
        8, TrialShape(cpus=4, gpus=1.0), 30, 1)
    cost = estimate_for_tuner(grid_tuner(), "CPU=1.0,GRES/gpu=2.0")
    assert figures(cost) == (8, 8, 4.0, 16.0, 4.0, 24.0)  # (4 + 2) units x 4 h


def test_a_tuner_with_asha_stoppers_and_retries():
    tuner = Tuner(train, param_space={"x": tune.uniform(0, 1)},
                  tune_config=TuneConfig(num_samples=6, metric="loss", mode="min",
                                         scheduler=ASHAScheduler(max_t=27, grace_period=3, reduction_factor=3)),
                  run_config=RunConfig(stop={"training_iteration": 9},
                                       failure_config=FailureConfig(max_failures=1)), backend="slurm")
    inputs = cost_inputs(tuner)
    assert (inputs.trials, inputs.attempts) == (6, 2)
    assert inputs.bound.rule == "stop={'training_iteration': 9}"  # tighter than ASHA's max_t=27
    cost = estimate(inputs)
    assert (cost.trial_iterations, cost.trial_hours) == (54, 12.0)  # 6 x 9; 6 x 2 attempts x 1 h
    asha_only = cost_inputs(Tuner(train, tune_config=TuneConfig(
        num_samples=6, metric="loss", mode="min",
        scheduler=ASHAScheduler(max_t=27, grace_period=3, reduction_factor=3)), backend="slurm"))
    assert (asha_only.bound.rule, asha_only.bound.per_trial) == ("ASHA max_t=27", 27)
    assert "rungs at 3, 9, 27" in asha_only.bound.note


def test_a_tuner_with_hyperband_and_a_max_iteration_stopper():
    hb = cost_inputs(Tuner(train, tune_config=TuneConfig(
        num_samples=17, metric="loss", mode="min", scheduler=HyperBandScheduler(max_t=9)), backend="slurm"))
    assert (hb.bound.total, hb.bound.jobs_per_trial) == (66, 3)
    stopped = cost_inputs(Tuner(train, tune_config=TuneConfig(num_samples=3), backend="slurm",
                                run_config=RunConfig(stop=MaximumIterationStopper(4))))
    assert (stopped.bound.rule, stopped.bound.per_trial) == ("MaximumIterationStopper(4)", 4)


def test_a_pooled_tuner_counts_pool_tasks():
    tuner = Tuner(tune.with_resources(train, {"cpu": 2, "gpu": 0.5}), backend="slurm",
                  tune_config=TuneConfig(num_samples=5, reuse_actors=True))
    cost = estimate_for_tuner(tuner)
    assert figures(cost) == (5, 3, 5.0, 10.0, 2.5, 10.0)  # 2 trials per GPU -> ceil(5 / 2) pool tasks


def test_unbounded_samples_from_a_tuner():
    assert cost_inputs(Tuner(train, tune_config=TuneConfig(num_samples=-1), backend="slurm")).trials is None


def test_preview_sbatch_ends_with_the_cost_and_stays_a_script(monkeypatch):
    monkeypatch.setattr(SlurmBackend, "billing_weights", lambda self: "CPU=1.0,GRES/gpu=2.0")
    monkeypatch.setattr(SlurmBackend, "requeue_enabled", lambda self: False)
    text = grid_tuner(max_concurrent_trials=8).preview_sbatch()
    assert text.startswith("#!/bin/bash")
    assert "# worst-case cost: 8 trials, 8 Slurm jobs\n" in text
    assert "#   node-hours 4.0, CPU-hours 16.0, GPU-hours 4.0, billing units x hours 24.0\n" in text
    assert "#   billing: TRESBillingWeights=CPU=1.0,GRES/gpu=2.0\n" in text
    assert text.index("exec ") < text.index("# worst-case cost")  # after the command: not a directive


# -- the partition's billing weights --------------------------------------------------------------
class PartitionAnswers:
    """``scontrol show partition -o [NAME]`` as a fake Slurm answers it."""

    def __init__(self, lines):
        self.lines, self.calls, self.counts = lines, [], {}

    def run(self, args, check=True):
        self.calls.append(list(args))
        named = args[-1] if args[-1] != "-o" else None
        lines = [line for line in self.lines if named is None or f"PartitionName={named} " in line]
        return subprocess.CompletedProcess(args, 0, "\n".join(lines) + "\n", "")


LINES = ["PartitionName=gpu Default=YES PreemptMode=OFF TRES=cpu=8,billing=8 "
         "TRESBillingWeights=CPU=1.0,Mem=0.25G,GRES/gpu=2.0 MaxTime=UNLIMITED",
         "PartitionName=cpu Default=NO PreemptMode=REQUEUE TRES=cpu=8,billing=8"]


@pytest.mark.parametrize("partition, weights", [(None, "CPU=1.0,Mem=0.25G,GRES/gpu=2.0"),
                                                ("gpu", "CPU=1.0,Mem=0.25G,GRES/gpu=2.0"), ("cpu", None)])
def test_billing_weights_come_from_the_one_partition_lookup(tmp_path, partition, weights):
    slurm = PartitionAnswers(LINES)
    backend = SlurmBackend(tmp_path / "exp", SlurmConfig(partition=partition), commands=slurm)
    assert backend.billing_weights() == weights
    backend.requeue_enabled(), backend.billing_weights()
    assert slurm.calls == [["scontrol", "show", "partition", "-o", *([partition] if partition else [])]]


def test_submit_dry_run_prints_the_cost_of_an_experiment_file(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(SlurmBackend, "billing_weights", lambda self: None)  # no TRESBillingWeights
    monkeypatch.setattr(SlurmBackend, "requeue_enabled", lambda self: False)  # asks no Slurm
    (tmp_path / "train.py").write_text("def objective(config):\n    pass\n")
    (tmp_path / "exp.toml").write_text('trainable = "train.py:objective"\nnum_samples = 2\n'
                                       "[param_space]\na = {grid_search = [3, 1, 2]}\n")
    code, out, err = run(capsys, "submit", "--dry-run", "--time-min", "45",
                         "--cpus", "2", "--nodes", "2", "--name", "dry", "exp.toml")
    assert code == 0, err
    # 3 grid points x 2 samples = 6 trials of 2 nodes x 2 CPUs, 45 min: 4.5 trial-hours
    assert "# worst-case cost: 6 trials, 6 Slurm jobs\n" in out
    assert "#   node-hours 9.0, CPU-hours 18.0, GPU-hours 0.0, billing units x hours 18.0\n" in out
    assert f"#   billing: {UNWEIGHTED}\n" in out
    assert not (tmp_path / "results" / "dry").exists()
