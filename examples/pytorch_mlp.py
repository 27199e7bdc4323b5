"""Tune a small PyTorch MLP on generated data; one GPU per trial when the cluster has GPUs.

No downloads: the data set is generated from a fixed seed. Each epoch reports the
validation loss and checkpoints model and optimizer, so preempted trials resume.
    python examples/pytorch_mlp.py [--samples 8] [--epochs 10] [--gpus auto|0|1]
"""

import argparse
import os
import shutil
import subprocess
import tempfile

import torch
from torch import nn

from hpctune import train, tune


def make_data(seed: int = 0, n: int = 2048):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=gen)
    y = torch.sin(x[:, :1] * 2) + 0.5 * x[:, 1:2] ** 2 + 0.1 * torch.randn(n, 1, generator=gen)
    split = int(n * 0.8)
    return (x[:split], y[:split]), (x[split:], y[split:])


def build_model(config):
    layers, width = [], 8
    for _ in range(config["layers"]):
        layers += [nn.Linear(width, config["hidden"]), nn.ReLU()]
        width = config["hidden"]
    return nn.Sequential(*layers, nn.Linear(width, 1))


def train_mlp(config):
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(config.get("seed", 0))
    (x_train, y_train), (x_val, y_val) = [(a.to(device), b.to(device)) for a, b in make_data()]
    model = build_model(config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    start_epoch = 0
    checkpoint = train.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as path:
            state = torch.load(os.path.join(path, "state.pt"), map_location=device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch = state["epoch"] + 1
    for epoch in range(start_epoch, config["epochs"]):
        model.train()
        for i in range(0, len(x_train), config["batch_size"]):
            xb, yb = x_train[i:i + config["batch_size"]], y_train[i:i + config["batch_size"]]
            optimizer.zero_grad()
            nn.functional.mse_loss(model(xb), yb).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            val_loss = nn.functional.mse_loss(model(x_val), y_val).item()
        with tempfile.TemporaryDirectory() as tmp:
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "epoch": epoch}, os.path.join(tmp, "state.pt"))
            train.report({"val_loss": val_loss, "epoch": epoch, "device": device},
                         checkpoint=train.Checkpoint.from_directory(tmp))


def cluster_has_gpus() -> bool:
    if not shutil.which("sinfo") or os.environ.get("HPCTUNE_BACKEND") == "local":
        return torch.cuda.is_available()
    out = subprocess.run(["sinfo", "-h", "-o", "%G"], capture_output=True, text=True).stdout
    return "gpu" in out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--gpus", default="auto")
    parser.add_argument("--storage", default="./hpctune_results")
    parser.add_argument("--name", default=None, help="experiment name (default: train_mlp_<date>, "
                        "so the example can run again)")
    args = parser.parse_args()
    gpus = int(cluster_has_gpus()) if args.gpus == "auto" else int(args.gpus)
    trainable = tune.with_resources(train_mlp, {"cpu": 1, "gpu": gpus})
    tuner = tune.Tuner(
        trainable,
        param_space={
            "lr": tune.loguniform(1e-4, 3e-2),
            "hidden": tune.choice([16, 32, 64]),
            "layers": tune.randint(1, 4),
            "batch_size": tune.choice([32, 64, 128]),
            "epochs": args.epochs,
        },
        tune_config=tune.TuneConfig(metric="val_loss", mode="min", num_samples=args.samples,
                                    max_concurrent_trials=4, seed=0),
        run_config=tune.RunConfig(name=args.name, storage_path=args.storage,
                                  checkpoint_config=train.CheckpointConfig(num_to_keep=2)),
    )
    results = tuner.fit()
    best = results.get_best_result()
    print(f"Best val_loss {best.metrics['val_loss']:.4f} with {best.config} on {best.metrics['device']}")
    print(f"Best checkpoint: {best.checkpoint}")


if __name__ == "__main__":
    main()
