"""Tune a small PyTorch Lightning classifier with ASHA; one GPU per trial when the cluster has GPUs.

MNIST-style without the download: 10 classes of 8x8 "digits" generated from a fixed seed (a
noisy prototype image per class). Lightning reports the validation loss and accuracy to Tune
after every validation with ``TuneReportCheckpointCallback``, which also checkpoints the
trainer, so a preempted trial resumes where its last epoch ended. ASHA stops the weak trials
early. Works with ``import lightning.pytorch as pl`` and ``import pytorch_lightning as pl``.
    python examples/lightning_mnist.py [--samples 8] [--epochs 8] [--gpus auto|0|1]
"""

import argparse
import os
import shutil
import subprocess

import torch
from torch.utils.data import DataLoader, TensorDataset

try:
    import lightning.pytorch as pl
except ImportError:
    import pytorch_lightning as pl

from hpctune import train, tune
from hpctune.tune.integration.pytorch_lightning import TuneReportCheckpointCallback
from hpctune.tune.schedulers import ASHAScheduler

CHECKPOINT = "trainer.ckpt"


def make_digits(n: int = 2000, seed: int = 0) -> TensorDataset:
    gen = torch.Generator().manual_seed(seed)
    prototypes = torch.rand(10, 64, generator=gen)
    labels = torch.randint(0, 10, (n,), generator=gen)
    images = prototypes[labels] + 0.6 * torch.randn(n, 64, generator=gen)
    return TensorDataset(images, labels)


class DigitClassifier(pl.LightningModule):
    def __init__(self, hidden: int, lr: float):
        super().__init__()
        self.lr = lr
        self.net = torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self.net(x)
        self.log("val_loss", torch.nn.functional.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(dim=1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def train_digits(config):
    data = make_digits()
    train_set, val_set = torch.utils.data.random_split(data, [1600, 400], torch.Generator().manual_seed(0))
    trainer = pl.Trainer(
        max_epochs=config["epochs"], accelerator="gpu" if torch.cuda.is_available() else "cpu", devices=1,
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[TuneReportCheckpointCallback({"loss": "val_loss", "accuracy": "val_acc"},
                                                filename=CHECKPOINT, on="validation_end")])
    model = DigitClassifier(config["hidden"], config["lr"])
    loaders = (DataLoader(train_set, batch_size=config["batch_size"], shuffle=True),
               DataLoader(val_set, batch_size=200))
    checkpoint = train.get_checkpoint()
    if checkpoint:  # a preempted or retried trial continues from its last epoch
        with checkpoint.as_directory() as directory:
            trainer.fit(model, *loaders, ckpt_path=os.path.join(directory, CHECKPOINT))
    else:
        trainer.fit(model, *loaders)


def cluster_has_gpus() -> bool:
    if not shutil.which("sinfo") or os.environ.get("HPCTUNE_BACKEND") == "local":
        return torch.cuda.is_available()
    return "gpu" in subprocess.run(["sinfo", "-h", "-o", "%G"], capture_output=True, text=True).stdout


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--gpus", default="auto")
    parser.add_argument("--storage", default="./hpctune_results")
    parser.add_argument("--name", default=None)
    args = parser.parse_args()
    gpus = int(cluster_has_gpus()) if args.gpus == "auto" else int(args.gpus)
    tuner = tune.Tuner(
        tune.with_resources(train_digits, {"cpu": 1, "gpu": gpus}),
        param_space={"lr": tune.loguniform(1e-3, 3e-2), "hidden": tune.choice([32, 64, 128]),
                     "batch_size": tune.choice([32, 64]), "epochs": args.epochs},
        tune_config=tune.TuneConfig(metric="loss", mode="min", num_samples=args.samples, seed=0,
                                    scheduler=ASHAScheduler(max_t=args.epochs, grace_period=1,
                                                            reduction_factor=2)),
        run_config=tune.RunConfig(name=args.name, storage_path=args.storage,
                                  checkpoint_config=train.CheckpointConfig(num_to_keep=2)),
    )
    results = tuner.fit()
    best = results.get_best_result()
    print(f"Best loss {best.metrics['loss']:.4f} (accuracy {best.metrics['accuracy']:.3f}) "
          f"after {best.metrics['training_iteration']} epochs with {best.config}")
    print(f"Best checkpoint: {best.checkpoint}")


if __name__ == "__main__":
    main()
