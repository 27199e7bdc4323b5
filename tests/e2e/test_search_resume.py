"""Library searchers on the lab, across a driver kill: the same search continues, with no
suggestion lost or repeated and every result told to the library once."""

import textwrap

import hyperopt  # noqa: F401 - test dependencies: a missing library fails here
import nevergrad  # noqa: F401
import pytest

from tests.conftest import REPO_ROOT, unique_name
from tests.e2e import trainables
from tests.e2e.chaos import kill_mid_search_and_restore

SEARCHERS = {
    "hyperopt": ("from hpctune.tune.search.hyperopt import HyperOptSearch",
                 "HyperOptSearch(random_state_seed=7, n_initial_points=4)"),
    "nevergrad": ("import nevergrad as ng\nfrom hpctune.tune.search.nevergrad import NevergradSearch",
                  "NevergradSearch(ng.optimizers.OnePlusOne)"),
}

DRIVER = """
import sys
sys.path.insert(0, {repo!r})
from hpctune import tune
{imports}
from tests.e2e import trainables
tune.Tuner(
    trainables.slow_quadratic,
    param_space={{"x": tune.uniform(0, 1), "y": tune.uniform(0, 1), "sleep": 0.4}},
    tune_config=tune.TuneConfig(metric="loss", mode="min", num_samples=10, max_concurrent_trials=3,
                                search_alg={searcher}),
    run_config=tune.RunConfig(name={name!r}, storage_path={storage!r}, verbose=0,
                              slurm=tune.SlurmConfig(poll_interval_s=0.5)),
).fit()
"""


def told(name: str, searcher) -> int:
    """How many results the library was told."""
    if name == "hyperopt":
        return sum(1 for t in searcher._opt["trials"].trials if t["result"]["status"] == "ok")
    return searcher._opt.num_tell


@pytest.mark.slurm
@pytest.mark.parametrize("name", sorted(SEARCHERS))
def test_search_continues_after_driver_kill(name, tmp_path, monkeypatch):
    monkeypatch.setenv("HPCTUNE_BACKEND", "slurm")
    imports, searcher = SEARCHERS[name]
    experiment = unique_name(name)
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(DRIVER.format(
        repo=str(REPO_ROOT), storage=str(tmp_path), name=experiment, imports=imports,
        searcher=searcher)))
    restored, _ = kill_mid_search_and_restore(script, tmp_path / experiment, trainables.slow_quadratic,
                                              tmp_path)
    assert told(name, restored.tune_config.search_alg) == 10
