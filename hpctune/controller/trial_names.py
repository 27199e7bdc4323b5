"""Trial names from ``TuneConfig(trial_name_creator=..., trial_dirname_creator=...)``.

Each creator is called once per new trial with the driver's ``Trial`` (``trial_id``,
``config``, ``experiment_tag``, ``trainable_name``, as in Ray). What it returns is made
safe and unique: one path component, no control characters, no ``/``, not ``.`` or ``..``,
at most ``TUNE_MAX_LEN_IDENTIFIER`` characters (130), with ``_2``, ``_3``... appended to a
name already taken. The name is shown in the status table and returned by
``get_context().get_trial_name()`` (it goes into the trial's ``trial.json``). The trial's
files stay in ``trials/<trial_id>/`` (what the worker, the logs' replay and the CLI rely
on); the directory name becomes a link to it at the experiment root, where Ray puts trial
directories.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from typing import Any

from hpctune.errors import ConfigError
from hpctune.storage import experiment as layout
from hpctune.storage.experiment import ExperimentDir
from hpctune.tune.experiment.trial import Trial

MAX_LEN_ENV = "TUNE_MAX_LEN_IDENTIFIER"
DEFAULT_MAX_LEN = 130
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")


def safe_name(value: str, fallback: str, max_len: int = DEFAULT_MAX_LEN) -> str:
    """``value`` as one safe path component: control characters and separators become ``_``."""
    name = _UNSAFE.sub("_", value).strip()
    while len(name.encode()) > max_len:
        name = name[:-1]
    return fallback if name in ("", ".", "..") else name


def unique(name: str, taken: set[str], exists: Callable[[str], bool] = lambda _: False) -> str:
    """``name``, or ``name_2``, ``name_3``... when taken (or when ``exists`` says so)."""
    candidate, n = name, 1
    while candidate in taken or exists(candidate):
        n += 1
        candidate = f"{name}_{n}"
    taken.add(candidate)
    return candidate


def max_identifier_length() -> int:
    try:
        return max(8, int(os.environ.get(MAX_LEN_ENV, DEFAULT_MAX_LEN)))
    except ValueError:
        return DEFAULT_MAX_LEN


class TrialNamer:
    """Names new trials with the user's creators and records the names (see the module doc)."""

    def __init__(self, exp: ExperimentDir, name_creator: Any = None, dirname_creator: Any = None):
        self.exp = exp
        self.name_creator, self.dirname_creator = name_creator, dirname_creator
        self._names: set[str] | None = None
        self._dirnames: set[str] = set()

    def name(self, trial: Trial, trials: Iterable[Trial]) -> None:
        """Name ``trial`` (new) unless it has names already; ``trials``: all trials so far."""
        if self._names is None:  # the names of a restored experiment's trials are taken
            known = [t for t in trials if t is not trial]
            self._names = {t.trial_name for t in known if t.trial_name}
            self._dirnames = {t.dirname for t in known if t.dirname}
        limit = max_identifier_length()
        meta = {}
        if self.name_creator is not None and not trial.trial_name:
            text = call_creator(self.name_creator, "trial_name_creator", trial)
            trial.trial_name = unique(safe_name(text, trial.trial_id, 255), self._names)
            meta["trial_name"] = trial.trial_name
        if self.dirname_creator is not None and not trial.dirname:
            text = call_creator(self.dirname_creator, "trial_dirname_creator", trial)
            trial.dirname = unique(safe_name(text, trial.trial_id, limit), self._dirnames,
                                   lambda n: layout.is_reserved_name(n) or os.path.lexists(self.exp.root / n))
            os.symlink(os.path.relpath(trial.path, self.exp.root), self.exp.root / trial.dirname)
            meta["trial_dirname"] = trial.dirname
        if meta:
            self.exp.write_trial_meta(trial.trial_id, {**self.exp.read_trial_meta(trial.trial_id), **meta})


def call_creator(creator: Any, option: str, trial: Trial) -> str:
    """What ``creator(trial)`` returns, as text; a ConfigError naming ``option`` when it raises or
    returns None (also ``Tuner.fit``'s check on a probe trial, before anything is written)."""
    try:
        value = creator(trial)
    except Exception as exc:
        raise ConfigError(f"TuneConfig({option}=...) raised {type(exc).__name__}: {exc} for trial "
                          f"{trial.trial_id} (config {trial.config}). Fix the function; it gets "
                          "the trial (trial_id, config, experiment_tag, trainable_name).") from exc
    if value is None:
        raise ConfigError(f"TuneConfig({option}=...) returned None for trial {trial.trial_id}: "
                          "it must return a string.")
    return str(value)
