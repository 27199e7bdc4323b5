"""Checkpoints: a directory of files, persisted into the trial directory atomically."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from hpctune.errors import ConfigError
from hpctune.storage.atomic import full_storage_is_clear
from hpctune.storage.secure import copy_tree_private, dir_mode_for

CHECKPOINT_PREFIX = "checkpoint_"


def checkpoint_dir_name(iteration: int) -> str:
    return f"{CHECKPOINT_PREFIX}{iteration:06d}"


def persist_checkpoint(source: str | os.PathLike, trial_dir: Path, iteration: int) -> Path:
    """Copy ``source`` into ``trial_dir/checkpoint_<iteration>``: temp dir, fsync, rename.

    A reader never sees a partial checkpoint: the final name appears only once every
    file is written. An existing checkpoint with the same name is replaced. The copy is
    private like the trial directory (0700/0600, or 0750/0640 when shared), whatever the
    modes of the source; the temp directory's name is unpredictable (``mkdtemp``).
    """
    final = trial_dir / checkpoint_dir_name(iteration)
    if Path(source).resolve() == final.resolve():
        return final
    refuse_nested_source(Path(source), trial_dir)
    # ENOSPC/EDQUOT/EROFS: StorageFullError, temp dir removed
    with full_storage_is_clear(final), _temp_dir(trial_dir, f".tmp_{final.name}.") as tmp:
        copy_tree_private(source, tmp, fsync=True)
        _replace_dir(tmp, final)
    return final


@contextlib.contextmanager
def _temp_dir(trial_dir: Path, prefix: str) -> Iterator[Path]:
    """A new hidden directory in ``trial_dir`` (unpredictable name, the directory's policy mode),
    removed if the block fails."""
    tmp = Path(tempfile.mkdtemp(dir=trial_dir, prefix=prefix))
    try:
        os.chmod(tmp, dir_mode_for(trial_dir))
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def refuse_nested_source(source: Path, trial_dir: Path) -> None:
    """A checkpoint directory that holds the trial directory (``Checkpoint.from_directory(".")``
    run in the trial directory) or lies inside one of its checkpoints would be copied into
    itself, growing at every report: a ConfigError instead."""
    source, trial = source.resolve(), trial_dir.resolve()
    inside = next((p for p in source.parents if p.parent == trial
                   and p.name.startswith(CHECKPOINT_PREFIX)), None)
    contains = source == trial or source in trial.parents
    if not contains and inside is None:
        return
    why = (f"lies inside the trial's checkpoint {inside.name}" if inside is not None else
           f"contains the trial directory {trial} (Checkpoint.from_directory('.') in the trial "
           "directory?)")
    raise ConfigError(
        f"report(checkpoint=...): the checkpoint directory {source} {why}: persisting it would copy "
        "the trial's checkpoints into themselves. Fix: save the checkpoint in a directory of its "
        "own, e.g. tempfile.mkdtemp(), and report Checkpoint.from_directory(that_directory).")


def _replace_dir(new: Path, final: Path) -> None:
    """Rename ``new`` to ``final``, replacing what is there (the name is never missing for long)."""
    if final.exists():
        old = tempfile.mkdtemp(dir=final.parent, prefix=f".old_{final.name}.")
        os.replace(final, old)  # onto the empty temp dir
        shutil.rmtree(old, ignore_errors=True)
    os.replace(new, final)


STAGE_PREFIX = ".exploit_"


def stage_checkpoint(source: str | os.PathLike, trial_dir: Path) -> Path:
    """A private copy of the checkpoint ``source`` in a hidden directory of ``trial_dir``, made
    now (PBT pins its donor's checkpoint while the recipient still runs): files are hard-linked
    (checkpoints are never changed in place), copied where a link is not possible."""
    with _temp_dir(trial_dir, STAGE_PREFIX) as staged:
        try:
            _link_tree(Path(source), staged)
        except OSError:  # another filesystem, or links not allowed: copy instead
            shutil.rmtree(staged)
            staged.mkdir(mode=dir_mode_for(trial_dir))
            copy_tree_private(source, staged, fsync=True)
    return staged


def _link_tree(source: Path, target: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(source):
        here = target / Path(dirpath).relative_to(source)
        for name in dirnames:
            (here / name).mkdir(mode=dir_mode_for(target))
        for name in filenames:
            os.link(os.path.join(dirpath, name), here / name, follow_symlinks=False)


def install_checkpoint(staged: Path, trial_dir: Path, iteration: int) -> Path:
    """Make the staged copy the trial's newest checkpoint, ``checkpoint_<iteration>``: newer
    checkpoints of the trial are removed (the worker resumes from the newest), one of the
    same name is replaced atomically. Done again after a crash, it leaves the same result."""
    final = trial_dir / checkpoint_dir_name(iteration)
    for path in trial_dir.glob(f"{CHECKPOINT_PREFIX}*"):
        if path.is_dir() and checkpoint_iteration(path.name) > iteration:
            shutil.rmtree(path, ignore_errors=True)
    if staged.is_dir():
        _replace_dir(staged, final)
    return final


def discard_staged(trial_dir: Path, keep: Path | None = None) -> None:
    """Remove staged copies left behind (an exploit dropped, a driver killed mid-way)."""
    for path in trial_dir.glob(f"{STAGE_PREFIX}*"):
        if keep is None or path != keep:
            shutil.rmtree(path, ignore_errors=True)


def checkpoint_iteration(name: str) -> int:
    """The iteration in a checkpoint's name (``checkpoint_000007`` -> 7; -1 if none)."""
    try:
        return int(name.rsplit("_", 1)[1])
    except (IndexError, ValueError):
        return -1


def latest_checkpoint(trial_dir: Path) -> Path | None:
    """The newest complete checkpoint directory of a trial (the highest iteration), if any; a
    directory whose name holds no iteration is not a checkpoint."""
    found = [p for p in trial_dir.glob(f"{CHECKPOINT_PREFIX}*")
             if p.is_dir() and checkpoint_iteration(p.name) >= 0]
    return max(found, key=lambda p: checkpoint_iteration(p.name), default=None)


def checkpoints_to_delete(checkpoints: list[tuple[str, float | None]], num_to_keep: int | None,
                          order: str = "max", by_score: bool = False) -> list[str]:
    """Names of the checkpoints ``CheckpointConfig(num_to_keep)`` no longer keeps (Ray's rule).

    ``checkpoints`` are (name, score) in the order they were written. Kept: the best
    ``num_to_keep`` (the newest ones without a score attribute; with one, the best scores, a
    checkpoint without a score counting as worst and the older of two equal scores going
    first), plus the latest checkpoint whatever its score: the best are never deleted to make
    room for it.
    """
    if num_to_keep is None or len(checkpoints) <= num_to_keep:
        return []
    latest = checkpoints[-1][0]
    if by_score:
        sign = 1 if order == "max" else -1
        ranked = sorted(checkpoints, key=lambda c: float("-inf") if c[1] is None else sign * c[1])
    else:
        ranked = list(checkpoints)
    kept = {name for name, _ in ranked[len(ranked) - num_to_keep:]} | {latest}
    return [name for name, _ in checkpoints if name not in kept]


def discard_checkpoints(trial_dir: Path) -> None:
    """Remove a trial's checkpoints so that it restarts from scratch."""
    for path in trial_dir.glob(f"{CHECKPOINT_PREFIX}*"):
        shutil.rmtree(path, ignore_errors=True)
