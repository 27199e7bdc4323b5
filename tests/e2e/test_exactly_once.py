"""Exactly once under driver crashes, on the local backend and on the lab (see chaos.py).

A few seeded runs here, on the lab both with one job per trial and with the worker pool;
``python bench/chaos.py --runs 20 --backend slurm --mode pool`` runs the full campaign.
"""

import random

import pytest

from tests.e2e.chaos import chaos_run, check


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_local_driver_killed_at_random_points(tmp_path, seed):
    rng = random.Random(seed)
    exp = tmp_path / f"chaos{seed}"
    outcome = chaos_run(exp, "local", kills=rng.randint(1, 3), rng=rng)
    assert outcome["kills"] >= 1, outcome
    assert check(exp) == [], outcome


@pytest.mark.parametrize("reuse_actors", [False, True], ids=["job-per-trial", "pool"])
@pytest.mark.slurm
def test_lab_driver_killed_at_random_points(tmp_path, reuse_actors):
    rng = random.Random(7)
    exp = tmp_path / "chaoslab"
    outcome = chaos_run(exp, "slurm", kills=2, rng=rng, sleep=0.1, reuse_actors=reuse_actors)
    assert outcome["kills"] >= 1, outcome
    assert check(exp) == [], outcome
