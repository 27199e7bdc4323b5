"""A class trainable's loop inside the worker: ``step()``, its checkpoints, ``cleanup()``.

Ray's semantics: a checkpoint is written when ``should_checkpoint``, ``checkpoint_frequency``
or ``checkpoint_at_end`` asks for it, and when a scheduler PAUSEs the trial (at the result it
judged: the trial resumes from there); ``checkpoint_at_end`` holds also when a stopper or a
scheduler ends the trial (the state saved is the one after the last reported step: with it set,
a STOP never interrupts ``step()``). A
``save_checkpoint`` that returns a dict has it kept in the checkpoint (``_dict_checkpoint.pkl``),
and ``load_checkpoint`` then receives that dict instead of the directory.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hpctune.core.checkpoint import Checkpoint
from hpctune.storage.checkpoints import checkpoint_dir_name, persist_checkpoint
from hpctune.storage.secure import load_private_pickle
from hpctune.worker.session import PAUSE, Preempted, Session, StopTrial

#: the file holding the dict a ``save_checkpoint`` returned (Ray's name)
DICT_CHECKPOINT_FILE = "_dict_checkpoint.pkl"


def run_class(cls: Any, config: dict, session: Session, ckpt_config: dict) -> None:
    """Run ``cls`` until a result says ``done`` (or a STOP ends it), checkpointing as asked."""
    from hpctune.tune.trainable import step_result

    instance = cls(config)
    at_end = bool(ckpt_config.get("checkpoint_at_end"))
    try:
        if session.checkpoint is not None:
            load(instance, session.checkpoint.path)
        frequency = ckpt_config.get("checkpoint_frequency", 0)
        while True:
            # checkpoint_at_end: a STOP's signal waits for step() to end (within stop_grace_s) and
            # is raised by the report, so that the state saved is that of a reported result
            session.interruptible = not at_end
            result = step_result(instance)  # a clear error when step() returns no dict
            session.interruptible = True
            done = bool(result.get("done", False))
            due = frequency and (session.iteration + 1) % frequency == 0
            if result.get("should_checkpoint") or due or (done and at_end) or session.context.should_checkpoint():
                result = _report_with_checkpoint(instance, result, session)
            else:
                result = session.report(result)
            instance.log_result(result)
            if done:
                return
    except StopTrial as stop:
        if stop.final and at_end:  # a stopper or a scheduler ended the trial (not a cancel)
            stop.checkpoint = _checkpoint_at_stop(instance, session)
        raise
    except Preempted as paused:
        if str(paused) == PAUSE:  # Ray saves a class trainable as it pauses it: resumed from here
            paused.checkpoint = _checkpoint_at_stop(instance, session)
        raise
    finally:
        session.interruptible = False  # a STOP arriving now must not cut cleanup() short
        instance.cleanup()


def save(instance: Any, directory: str) -> None:
    """``instance.save_checkpoint(directory)``; a dict it returns is kept in the directory."""
    saved = instance.save_checkpoint(directory)
    if isinstance(saved, dict):
        import cloudpickle

        (Path(directory) / DICT_CHECKPOINT_FILE).write_bytes(cloudpickle.dumps(saved))


def load(instance: Any, directory: str) -> None:
    """``instance.load_checkpoint`` with the dict ``save_checkpoint`` returned, else the directory."""
    saved = Path(directory) / DICT_CHECKPOINT_FILE
    instance.load_checkpoint(load_private_pickle(saved) if saved.is_file() else directory)


def _report_with_checkpoint(instance: Any, result: dict, session: Session) -> dict:
    with tempfile.TemporaryDirectory(prefix="hpctune-ckpt-") as tmp:
        save(instance, tmp)
        return session.report(result, checkpoint=Checkpoint(tmp))


def _checkpoint_at_stop(instance: Any, session: Session) -> str | None:
    """``checkpoint_at_end`` for a trial a STOP ended, or a PAUSE: the checkpoint of its last
    reported iteration (its name; the worker's ``stopped``/``paused`` event records it), unless
    it has one already or reported nothing."""
    if not session.writes or session.last_result is None:
        return None  # rank 0 writes checkpoints; nothing reported in this run: nothing to save
    name = checkpoint_dir_name(session.iteration)
    if session.checkpoint is not None and Path(session.checkpoint.path).name == name:
        return None  # the last result came with its checkpoint
    trial_dir = Path(session.context.trial_dir)
    with tempfile.TemporaryDirectory(prefix="hpctune-ckpt-") as tmp:
        save(instance, tmp)
        session.checkpoint = Checkpoint(persist_checkpoint(tmp, trial_dir, session.iteration))
    return name
