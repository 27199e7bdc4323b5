"""The examples run as written, on the lab and as local processes."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

BACKENDS = ["local", pytest.param("slurm", marks=pytest.mark.slurm)]


def run_example(args, backend, cwd, timeout=300):
    env = {**os.environ, "HPCTUNE_BACKEND": backend, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.parametrize("backend", BACKENDS)
def test_quickstart(backend, tmp_path):
    out = run_example([str(REPO_ROOT / "examples" / "quickstart.py")], backend, tmp_path)
    assert "Best config: {'a': " in out and "score:" in out, out
    (experiment,) = (tmp_path / "hpctune_results").iterdir()
    assert len(list((experiment / "trials").iterdir())) == 4  # the 4 grid points


def _torch_available() -> bool:
    if os.environ.get("CI", "").lower() == "true":
        return True  # CI installs torch: a missing torch must fail, not skip
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _torch_available(), reason="torch is not installed (scripts/test.sh installs it)")
@pytest.mark.parametrize("backend", BACKENDS)
def test_pytorch_mlp(backend, tmp_path):
    out = run_example([str(REPO_ROOT / "examples" / "pytorch_mlp.py"), "--samples", "2",
                       "--epochs", "3", "--storage", str(tmp_path / "results")], backend, tmp_path)
    assert "Best val_loss" in out and "checkpoint_000003" in out, out


def test_lightning_mnist(tmp_path):
    """One trial of two epochs as a local process (each trial imports torch and Lightning)."""
    out = run_example([str(REPO_ROOT / "examples" / "lightning_mnist.py"), "--samples", "1", "--epochs", "2",
                       "--gpus", "0", "--storage", str(tmp_path / "results")], "local", tmp_path)
    assert "Best loss" in out and "after 2 epochs" in out, out
    best = out.split("Best checkpoint: Checkpoint(path='")[1].split("'")[0]
    assert (Path(best) / "trainer.ckpt").is_file(), out  # the trainer, checkpointed by the callback


def test_xgboost_tune(tmp_path):
    out = run_example([str(REPO_ROOT / "examples" / "xgboost_tune.py"), "--samples", "2", "--rounds", "6",
                       "--checkpoint-every", "3", "--storage", str(tmp_path / "results")], "local", tmp_path)
    assert "Best logloss" in out, out
    # the best trial is one ASHA let finish: its last checkpoint holds all 6 rounds
    assert out.rstrip().endswith("/checkpoint_000006') (6 rounds)"), out
