"""Golden sbatch scripts: what hpctune submits, byte for byte, in ``tests/data/sbatch/``.

One script per shipped profile (``slurm_templates/*.toml``, a 16-trial array, 4 at a time),
a multi-node trial, a pool array (``reuse_actors=True``) and the detached driver
(``hpctune submit --detach``). Each is rendered from fixed inputs (experiment directory,
Python, requeue) and asks nothing of Slurm (a command would fail the test) or of this
machine, so the files are the same everywhere and a change to what jobs look like shows in
the diff. After an intended change, regenerate them all from the repository root and review
that diff (docs/testing.md):

    python -m tests.unit.test_golden_sbatch --regen
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from hpctune.backends.pool import PoolBackend
from hpctune.backends.slurm import SlurmBackend
from hpctune.cli.driver import driver_script
from hpctune.cli.plan import SubmitPlan
from hpctune.config.profiles import available_profiles, load_profile, package_profile_dir
from hpctune.core.resources import normalize_resources
from hpctune.storage.pool_queue import PoolQueue

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "sbatch"
REGEN = "python -m tests.unit.test_golden_sbatch --regen"
#: fixed inputs: under a top-level directory that no machine has, so no symlink resolves differently
EXPERIMENT = Path("/golden/hpctune_results/lr-sweep")
UID = "0123456789"  # an array's uid (random when submitted)
MANIFEST = EXPERIMENT / "jobs" / f"array_{UID}.trials"
PYTHON = "/golden/venv/bin/python"
SHIPPED = [package_profile_dir()]  # as shipped: never the user's ~/.config/hpctune


class NoSlurm:
    """The commands of a renderer that must not ask Slurm anything."""

    counts: dict[str, int] = {}

    def run(self, args: list[str], check: bool = True) -> None:
        raise AssertionError(f"rendering a script ran {args}: look it up before, pass it in")


def _backend(kind: type[SlurmBackend], profile: str, **fields: object) -> SlurmBackend:
    """A backend of the shipped ``profile``: requeue as the profile says (False when it leaves
    it to the partition, which is looked up outside rendering), the fixed Python."""
    config = load_profile(profile, SHIPPED).slurm_config()
    config = dataclasses.replace(config, python=PYTHON, requeue=bool(config.requeue), **fields)
    return kind(EXPERIMENT, config, commands=NoSlurm())


def trial_array(profile: str, resources: dict | None = None) -> str:
    """The array ``fit()`` submits for 16 trials, 4 at a time, with the profile's resources."""
    request = load_profile(profile, SHIPPED).resources if resources is None else resources
    return _backend(SlurmBackend, profile).render_script(normalize_resources(request), 16, 4, MANIFEST)


def pool_array() -> str:
    """The first pool array of 40 trials of half a GPU each, 8 at a time (2 per pool task)."""
    backend = _backend(PoolBackend, "gpu")
    manifest = PoolQueue(EXPERIMENT).array_paths(UID)[0]
    return backend.preview_script(normalize_resources({"cpu": 2, "gpu": 0.5}), 40, 8, manifest)


def detached_driver() -> str:
    """``hpctune submit --detach experiment.toml`` with the default profile."""
    profile = load_profile("default", SHIPPED)
    plan = SubmitPlan(mode="file", target="/golden/home/experiment.toml",
                      experiment_path=str(EXPERIMENT), slurm=profile.slurm, driver=profile.driver,
                      detached=True, cwd="/golden/home", python=PYTHON)
    return driver_script(plan)


def cases() -> dict[str, Callable[[], str]]:
    """File name -> how its script is rendered."""
    found: dict[str, Callable[[], str]] = {
        f"profile-{name}.sbatch": (lambda name=name: trial_array(name)) for name in available_profiles(SHIPPED)}
    found["trial-multinode-gpus-per-task.sbatch"] = lambda: trial_array(
        "default", {"cpu": 8, "nodes": 2, "tasks_per_node": 4, "gpus_per_task": 1, "mem_gb": 64})
    found["pool-array.sbatch"] = pool_array
    found["driver.sbatch"] = detached_driver
    return found


@pytest.mark.parametrize("name", sorted(cases()))
def test_the_script_is_the_golden_one(name):
    rendered = cases()[name]()
    golden = GOLDEN / name
    assert golden.exists(), f"no golden {golden}: create it with `{REGEN}`"
    expected = golden.read_text()
    diff = "".join(difflib.unified_diff(expected.splitlines(True), rendered.splitlines(True),
                                        f"{name} (golden)", f"{name} (rendered)"))
    assert rendered == expected, f"{diff}\nIf this change is intended: `{REGEN}`, and review the diff."


def test_every_golden_file_has_a_case():
    assert sorted(p.name for p in GOLDEN.glob("*.sbatch")) == sorted(cases()), f"stale files: `{REGEN}`"


def test_the_goldens_cover_what_the_issue_lists():
    assert {"profile-default.sbatch", "profile-gpu.sbatch", "profile-multinode.sbatch",
            "profile-preemptible.sbatch", "trial-multinode-gpus-per-task.sbatch", "pool-array.sbatch",
            "driver.sbatch"} <= set(cases())


def regenerate() -> None:
    """Write every golden script anew and remove the ones no case renders any more."""
    GOLDEN.mkdir(parents=True, exist_ok=True)
    wanted = cases()
    for stale in set(p.name for p in GOLDEN.glob("*.sbatch")) - set(wanted):
        (GOLDEN / stale).unlink()
        print(f"removed {GOLDEN / stale}")
    for name, render in sorted(wanted.items()):
        (GOLDEN / name).write_text(render())
        print(f"wrote {GOLDEN / name}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--regen"]:
        sys.exit(f"usage: {REGEN}")
    regenerate()
