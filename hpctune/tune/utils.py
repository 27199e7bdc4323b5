"""Ray's ``ray.tune.utils`` helpers: ``wait_for_gpu``, ``diagnose_serialization``,
``validate_save_restore``.

``wait_for_gpu`` reads the GPU's memory with ``nvidia-smi`` (or GPUtil when installed), so it
needs no extra package; the trial's GPU is the first of ``CUDA_VISIBLE_DEVICES``, which Slurm
(or the local backend) sets for each trial. ``validate_save_restore`` runs in this process:
there are no actors to start.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import tempfile
import time
from typing import Any

from hpctune.errors import ConfigError, TrainableError

__all__ = ["diagnose_serialization", "validate_save_restore", "wait_for_gpu"]


def wait_for_gpu(gpu_id: int | str | None = None, target_util: float = 0.01, retry: int = 20,
                 delay_s: int = 5, gpu_memory_limit: float | None = None) -> bool:
    """Wait until the GPU's memory use is at most ``target_util`` (a fraction), checking
    ``retry`` times ``delay_s`` seconds apart (Ray's): a trial started where the previous one
    still frees its memory waits for it. ``gpu_id``: an index or a UUID; by default the first
    GPU of ``CUDA_VISIBLE_DEVICES``. Returns True; RuntimeError if the memory was not freed."""
    if gpu_memory_limit is not None:
        raise ConfigError("wait_for_gpu(gpu_memory_limit=...) is deprecated in Ray: pass target_util=.")
    gpu = str(gpu_id) if gpu_id is not None else _first_visible_gpu()
    for attempt in range(int(retry)):
        used = _memory_utilisation(gpu)
        if used <= target_util:
            return True
        if attempt < int(retry) - 1:
            time.sleep(delay_s)
    raise RuntimeError(f"GPU memory was not freed: GPU {gpu} still uses {used:.1%} of its memory "
                       f"after {retry} checks {delay_s} s apart (target_util={target_util}).")


def _first_visible_gpu() -> str:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    if not visible:
        raise RuntimeError("No GPU ids found: CUDA_VISIBLE_DEVICES is not set. Did you set the trial's "
                           "resources correctly (tune.with_resources(trainable, {'gpu': 1}))?")
    return visible


def _memory_utilisation(gpu: str) -> float:
    """Used / total memory of the GPU with index or UUID ``gpu``, from nvidia-smi."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index,uuid,memory.used,memory.total",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True,
                             timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeError(f"wait_for_gpu needs nvidia-smi, which could not run here ({exc}).") from exc
    for line in out.strip().splitlines():
        index, uuid, used, total = (field.strip() for field in line.split(","))
        if gpu in (index, uuid):
            return float(used) / float(total) if float(total) else 0.0
    raise RuntimeError(f"wait_for_gpu: no GPU {gpu!r} among those nvidia-smi lists:\n{out.strip()}")


def diagnose_serialization(trainable: Any) -> bool | set[str]:
    """Why a trainable cannot be pickled for its jobs (Ray's): True when it can; otherwise
    prints and returns the names of the global or captured variables that cannot."""
    from hpctune.storage.pickling import dumps_by_value

    print(f"Trying to serialize {trainable}...")
    try:
        dumps_by_value(trainable)
    except Exception as exc:  # noqa: BLE001 - any pickling failure is what we diagnose
        print(f"FAIL: Trainable '{trainable}' failed with {type(exc).__name__}: {exc}")
    else:
        print("Serialization succeeded!")
        return True
    print("Inspecting the scope of the trainable (its globals and closure variables).")
    function = trainable if inspect.isfunction(trainable) else getattr(trainable, "__init__", None)
    scope = inspect.getclosurevars(function) if inspect.isfunction(function) else None
    candidates = {**scope.globals, **scope.nonlocals} if scope else {}
    failing = set()
    for name, value in candidates.items():
        try:
            dumps_by_value(value)
        except Exception as exc:  # noqa: BLE001
            failing.add(name)
            print(f"FAIL: {name} ({type(exc).__name__}: {exc})")
    if failing:
        print(f"Variable(s) {sorted(failing)} failed serialization. Fix: create them inside the "
              "trainable, or pass them with tune.with_parameters().")
    else:
        print("Nothing was found in the trainable's own scope: look at the objects it refers to.")
    return failing


def validate_save_restore(trainable_cls: type, config: dict | None = None, num_gpus: int = 0) -> bool:
    """Check that a class trainable restores from its own checkpoint (Ray's): three steps,
    ``save_checkpoint``, ``load_checkpoint`` into a second instance, two more steps there.
    Runs here, in this process (``num_gpus`` is Ray's actor request, unused). Returns True;
    the trainable's own error, or a TrainableError, when something fails."""
    from hpctune.tune.trainable import is_class_trainable, step_result
    from hpctune.worker.class_trainable import load, save

    if not is_class_trainable(trainable_cls):
        raise TrainableError(f"validate_save_restore takes a tune.Trainable subclass, got {trainable_cls!r}.")
    first, second = trainable_cls(config or {}), trainable_cls(config or {})
    try:
        for _ in range(3):
            step_result(first)
        with tempfile.TemporaryDirectory(prefix="hpctune-validate-") as checkpoint_dir:
            save(first, checkpoint_dir)
            load(second, checkpoint_dir)
        for _ in range(2):
            step_result(second)
    finally:
        first.cleanup()
        second.cleanup()
    return True
