"""Tune the learning rate of a small DistributedDataParallel model: each trial is 2 ranks.

One rank per node (``--nodes 2``), gloo on CPUs; on a cluster with GPUs the same script gives
each rank a GPU and NCCL. ``torch_setup()`` does what a Slurm DDP script usually does by hand
(MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK, init_process_group). Every rank
reports; rank 0 alone saves the checkpoint, and every rank restores from it after a requeue.
    python examples/torch_ddp.py [--samples 4] [--epochs 5] [--nodes 2] [--gpus auto|0|1]
"""

import argparse
import os
import shutil
import subprocess
import tempfile

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from hpctune import train, tune
from hpctune.worker.distributed import torch_setup


def make_data(n: int = 4096):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, 16, generator=gen)
    y = x @ torch.linspace(-1, 1, 16).unsqueeze(1) + 0.1 * torch.randn(n, 1, generator=gen)
    return x, y


def train_ddp(config):
    info = torch_setup()  # rank, world size, device: gloo on CPUs, NCCL on GPUs
    torch.manual_seed(0)  # the same initial weights on every rank
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 1)).to(info.device)
    ddp = DistributedDataParallel(model, device_ids=[info.device] if info.device != "cpu" else None)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=config["lr"])
    start = 0
    checkpoint = train.get_checkpoint()  # the same on every rank
    if checkpoint:
        with checkpoint.as_directory() as path:
            state = torch.load(os.path.join(path, "state.pt"), map_location=info.device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = state["epoch"] + 1
    x, y = make_data()
    x, y = x[info.rank::info.world_size].to(info.device), y[info.rank::info.world_size].to(info.device)
    for epoch in range(start, config["epochs"]):
        for i in range(0, len(x), 64):
            optimizer.zero_grad()
            nn.functional.mse_loss(ddp(x[i:i + 64]), y[i:i + 64]).backward()  # gradients all-reduced
            optimizer.step()
        with torch.no_grad():
            loss = nn.functional.mse_loss(ddp(x), y).detach()
        torch.distributed.all_reduce(loss)
        metrics = {"loss": loss.item() / info.world_size, "epoch": epoch,
                   "world": f"world size {info.world_size} ({info.backend})"}
        with tempfile.TemporaryDirectory() as tmp:
            saved = None
            if info.rank == 0:  # one copy of the weights; other ranks report without one
                torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                            "epoch": epoch}, os.path.join(tmp, "state.pt"))
                saved = train.Checkpoint.from_directory(tmp)
            train.report(metrics, checkpoint=saved)


def cluster_has_gpus() -> bool:
    if not shutil.which("sinfo") or os.environ.get("HPCTUNE_BACKEND") == "local":
        return torch.cuda.is_available()
    out = subprocess.run(["sinfo", "-h", "-o", "%G"], capture_output=True, text=True).stdout
    return "gpu" in out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--gpus", default="auto", help="GPUs per rank: auto, 0 (gloo) or 1 (NCCL)")
    parser.add_argument("--storage", default="./hpctune_results")
    args = parser.parse_args()
    gpus = int(cluster_has_gpus()) if args.gpus == "auto" else int(args.gpus)
    resources = {"nodes": args.nodes, "tasks_per_node": 1, "cpu": 1, "gpus_per_task": gpus}
    tuner = tune.Tuner(
        tune.with_resources(train_ddp, resources),
        param_space={"lr": tune.loguniform(1e-3, 1e-1), "epochs": args.epochs},
        tune_config=tune.TuneConfig(metric="loss", mode="min", num_samples=args.samples, seed=0,
                                    max_concurrent_trials=2),
        run_config=tune.RunConfig(storage_path=args.storage,
                                  checkpoint_config=train.CheckpointConfig(num_to_keep=2)),
    )
    best = tuner.fit().get_best_result()
    print(f"Best lr: {best.config['lr']:.5f}, loss {best.metrics['loss']:.4f}, "
          f"{best.metrics['world']}, checkpoint {best.checkpoint}")


if __name__ == "__main__":
    main()
