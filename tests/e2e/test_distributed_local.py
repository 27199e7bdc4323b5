"""The distributed examples without Slurm: the local backend runs each trial as one process, rank 0
of 1, and the same code runs (torch_setup joins a one-process group on a free port)."""

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT


def need(module: str) -> None:
    """Skip without ``module`` on a developer's machine; in CI (which installs it) fail instead."""
    if os.environ.get("CI", "").lower() == "true":
        __import__(module)
    else:
        pytest.importorskip(module)


def run_local(name: str, tmp_path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HPCTUNE_BACKEND": "local"}
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "examples" / name), "--storage",
                           str(tmp_path / "results"), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_torch_ddp_example_as_local_processes(tmp_path):
    need("torch")
    out = run_local("torch_ddp.py", tmp_path, "--samples", "2", "--epochs", "2")
    assert "world size 1 (gloo)" in out and "checkpoint_000002" in out, out  # 2 trials side by side


def test_mpi_allreduce_example_as_local_processes(tmp_path):
    need("mpi4py")
    out = run_local("mpi_allreduce.py", tmp_path, "--samples", "2")
    assert "ranks: 1" in out, out
