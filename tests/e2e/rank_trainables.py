"""Trainables of multi-task trials (tests/e2e/test_distributed.py): every rank runs the same
code and records what it saw in ``ranks/`` of the trial directory (its working directory)."""

import json
import os
import signal
import tempfile
import time
from pathlib import Path

from hpctune import tune


def _record(name: str, data: dict) -> None:
    folder = Path("ranks")
    folder.mkdir(exist_ok=True)
    tmp = folder / f".{name}.tmp"
    tmp.write_text(json.dumps(data))
    tmp.rename(folder / f"{name}.json")


def rank_steps(config):
    """``steps`` reports of loss ``c + 1/step`` from every rank, each rank's checkpoint holding
    the step; a rank named by ``crash_rank`` raises (or is SIGKILLed: ``crash_how="kill"``) at
    step 2 of the trial's first run; every
    rank records its ranks, pid, node and the step it restored from."""
    ctx = tune.get_context()
    rank = ctx.get_world_rank()
    checkpoint = tune.get_checkpoint()
    start = 0
    if checkpoint is not None:
        start = json.loads((Path(checkpoint.path) / "state.json").read_text())["step"]
    _record(f"rank{rank}-run{ctx.restart_count}-{os.getpid()}", {
        "rank": rank, "local_rank": ctx.get_local_rank(), "node_rank": ctx.get_node_rank(),
        "world_size": ctx.get_world_size(), "local_world_size": ctx.get_local_world_size(),
        "node": os.environ.get("SLURMD_NODENAME"), "pid": os.getpid(), "restored": start,
        "master": [os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT")],
        "checkpoint": Path(checkpoint.path).name if checkpoint else None,
        "restart_count": ctx.restart_count})
    for step in range(start + 1, config["steps"] + 1):
        time.sleep(config.get("sleep", 0.0))
        if rank == config.get("crash_rank") and step == 2 and not Path("crashed").exists():
            Path("crashed").write_text(str(rank))
            if config.get("crash_how") == "kill":  # no Python exception: as the OOM killer does
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError(f"rank {rank} crashed at step {step}")
        with tempfile.TemporaryDirectory() as tmp:
            saved = None
            if config.get("checkpoint"):
                (Path(tmp) / "state.json").write_text(json.dumps({"step": step, "rank": rank}))
                saved = tune.Checkpoint.from_directory(tmp)
            tune.report({"loss": config.get("c", 0.0) + 1.0 / step, "step": step, "rank": rank},
                        checkpoint=saved)
