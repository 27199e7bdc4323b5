"""Library searchers on the lab, across a driver kill: the same search continues, with no
suggestion lost or repeated and every result told to the library once."""

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import hyperopt  # noqa: F401 - test dependencies: a missing library fails here
import nevergrad  # noqa: F401
import pytest

from hpctune import tune
from hpctune.storage.result_log import read_events
from tests.conftest import REPO_ROOT, unique_name, wait_for
from tests.e2e import trainables

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
    driver = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path)
    exp = tmp_path / experiment

    def three_done():
        state = exp / "state.json"
        trials = json.loads(state.read_text())["trials"] if state.exists() else []
        return sum(1 for t in trials if t["status"] == "TERMINATED") >= 3

    wait_for(three_done, timeout=120)
    driver.send_signal(signal.SIGKILL)
    driver.wait()

    restored = tune.Tuner.restore(str(exp), trainables.slow_quadratic)
    grid = restored.fit()
    assert len(grid) == 10 and grid.num_terminated == 10, [str(e) for e in grid.errors]
    assert len({(r.config["x"], r.config["y"]) for r in grid}) == 10, "a suggestion was repeated"
    for result in grid:
        starts = [e for e in read_events(Path(result.path) / "result.jsonl") if e["event"] == "start"]
        assert len(starts) == 1, "a trial was run twice"
    assert told(name, restored.tune_config.search_alg) == 10
