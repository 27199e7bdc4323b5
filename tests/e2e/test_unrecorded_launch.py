"""A driver killed between ``sbatch`` and its snapshot: the restored driver re-attaches to the
submitted array (found by its job id file, or by its ``--comment`` when even that file was
not written) instead of submitting the trials again."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hpctune import tune
from hpctune.storage.result_log import read_events
from tests.conftest import REPO_ROOT
from tests.e2e import trainables
from tests.e2e.state import state_of

DRIVER = """
import os, sys
sys.path.insert(0, {repo!r})
from hpctune import tune
from hpctune.backends import slurm
from tests.e2e import trainables

if {where!r} == "before-snapshot":  # sbatch returned and its job id file is written
    real_launch = slurm.SlurmBackend.launch
    def launch(self, *args, **kwargs):
        real_launch(self, *args, **kwargs)
        os._exit(9)
    slurm.SlurmBackend.launch = launch
else:  # before the array's job id file is written
    real = slurm.write_bytes_atomic
    def write(path, data, fsync=True):
        if str(path).endswith(".jobid"):
            os._exit(9)
        real(path, data, fsync)
    slurm.write_bytes_atomic = write
tune.Tuner(
    trainables.slow_quadratic,
    param_space={{"x": tune.grid_search([0.1, 0.2, 0.3, 0.4]), "y": 0.5, "sleep": 0.3}},
    tune_config=tune.TuneConfig(reuse_actors=False),  # one array (the pool: tests/unit/test_pool.py)
    run_config=tune.RunConfig(name="unrecorded", storage_path={storage!r}, verbose=0,
                              slurm=tune.SlurmConfig(poll_interval_s=0.5)),
).fit()
"""


@pytest.mark.slurm
@pytest.mark.parametrize("where", ["before-snapshot", "before-job-id-file"])
def test_restore_adopts_an_array_the_snapshot_missed(tmp_path, where, monkeypatch):
    monkeypatch.setenv("HPCTUNE_BACKEND", "slurm")
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(DRIVER.format(repo=str(REPO_ROOT), where=where,
                                                    storage=str(tmp_path))))
    proc = subprocess.run([sys.executable, str(script)], env={**os.environ, "HPCTUNE_BACKEND": "slurm"},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr[-2000:]
    exp = tmp_path / "unrecorded"
    state = state_of(exp)  # state.json and its journal
    assert len(state["trials"]) == 4, "the trials were saved before their submission"
    assert all(t.get("job_id") is None for t in state["trials"]), "the snapshot knew the jobs"
    grid = tune.Tuner.restore(str(exp), trainables.slow_quadratic).fit()
    assert grid.num_terminated == 4, [str(e) for e in grid.errors]
    for result in grid:
        starts = [e for e in read_events(Path(result.path) / "result.jsonl") if e["event"] == "start"]
        assert len(starts) == 1, f"{result.trial_id} ran {len(starts)} times"
    commands = state_of(exp)["backend_commands"]
    assert commands.get("sbatch", 0) == 0, commands
