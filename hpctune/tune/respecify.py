"""``Tuner.restore(path, trainable, param_space=...)``: Ray's re-specified objects.

Ray keeps the objects of a param_space (values that are not numbers, strings, booleans or None:
object references, datasets, models) as placeholders in each trial's config and resolves them
again from the param_space given to ``Tuner.restore``: that is how a restored experiment gets
the objects of a new session. Here a trial's config holds the objects themselves
(``params.pkl``); the same re-specification replaces, in every restored trial's config, each
object that came from the old param_space by the object at the same place of the new one (a
plain value, or the option of a ``grid_search``/``choice`` the trial got), and the trials that
run again get the new objects. Trials still running in their Slurm jobs keep the objects they
loaded until they are launched again.

Everything else must stay as it was. Ray refuses a param_space whose keys differ; here a
changed number, string, distribution or grid is refused too (a ConfigError naming the key,
before anything is written): restored trials could not take it and new ones would silently
differ. ``sample_from`` functions are not compared (a restored script defines them anew):
trials keep their sampled values, new trials call the new function.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from hpctune.errors import ConfigError
from hpctune.space import GRID_SEARCH, Categorical, Domain, is_grid_search
from hpctune.space.sample_from import Function

Path = tuple[Any, ...]


@dataclass
class ObjectSlots:
    """Where the param_space holds objects: per place of a trial's config, the (old object as
    pickled, new object) pairs (one for a plain value, one per object option of a grid/choice)."""

    slots: dict[Path, list[tuple[bytes, Any]]] = field(default_factory=dict)

    def add(self, path: Path, old: Any, new: Any) -> None:
        self.slots.setdefault(path, []).append((_pickled(old), new))

    def apply(self, config: dict[str, Any]) -> dict[str, Any] | None:
        """``config`` with its objects re-specified; None when nothing in it changes."""
        changed = config
        for path, pairs in self.slots.items():
            found, value = _get(changed, path)
            if not found:
                continue
            mine = _pickled(value)
            for old, new in pairs:
                if mine == old:
                    changed = _set(changed, path, new)
                    break
        return None if changed is config else changed


def object_slots(old_space: dict[str, Any], new_space: dict[str, Any]) -> ObjectSlots:
    """The objects ``new_space`` re-specifies; a ConfigError when anything else differs."""
    slots = ObjectSlots()
    _walk(old_space, new_space, (), slots)
    return slots


def respecify(trials: Iterable[Any], slots: ObjectSlots, write: Any) -> list[str]:
    """Give each trial (``.config``, ``.trial_id``) the new objects; ``write(trial_id, config)``
    saves a changed config (``params.pkl``). Returns the ids of the trials changed."""
    changed = []
    for trial in trials:
        config = slots.apply(trial.config)
        if config is not None:
            write(trial.trial_id, config)
            trial.config = config
            changed.append(trial.trial_id)
    return changed


def _walk(old: Any, new: Any, path: Path, slots: ObjectSlots) -> None:
    if is_grid_search(old) or is_grid_search(new):
        _options(old, new, path, slots, GRID_SEARCH, lambda s: s[GRID_SEARCH] if is_grid_search(s) else None)
    elif isinstance(old, Categorical) or isinstance(new, Categorical):
        _options(old, new, path, slots, "choice", lambda s: s.categories if isinstance(s, Categorical) else None)
    elif isinstance(old, Function) and isinstance(new, Function):
        return  # sample_from: a function of the restored script, not compared
    elif isinstance(old, Domain) or isinstance(new, Domain):
        if not (isinstance(old, Domain) and isinstance(new, Domain) and _pickled(old) == _pickled(new)):
            _differs(path, old, new)
    elif isinstance(old, dict) and isinstance(new, dict):
        if set(old) != set(new):
            raise ConfigError(_message(path, f"keys {sorted(map(str, old))} became {sorted(map(str, new))}"))
        for key in old:
            _walk(old[key], new[key], (*path, key), slots)
    elif isinstance(old, list | tuple) and type(old) is type(new) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            _walk(a, b, (*path, index), slots)
    elif _primitive(old) or _primitive(new) or isinstance(old, dict | list | tuple) or isinstance(new, dict | list | tuple):
        if type(old) is not type(new) or old != new:
            _differs(path, old, new)
    else:
        slots.add(path, old, new)


def _options(old: Any, new: Any, path: Path, slots: ObjectSlots, what: str, options_of: Any) -> None:
    """A grid_search's values or a choice's categories: objects re-specified one by one."""
    before, after = options_of(old), options_of(new)
    if before is None or after is None or len(before) != len(after):
        _differs(path, old, new)
    for a, b in zip(before, after, strict=True):
        if _primitive(a) or _primitive(b) or isinstance(a, dict | list | tuple | Domain):
            if type(a) is not type(b) or _pickled(a) != _pickled(b):
                raise ConfigError(_message(path, f"the {what} value {a!r} became {b!r}"))
        elif isinstance(b, dict | list | tuple | Domain):
            raise ConfigError(_message(path, f"the {what} value {a!r} became {b!r}"))
        else:
            slots.add(path, a, b)


def _differs(path: Path, old: Any, new: Any) -> None:
    raise ConfigError(_message(path, f"{old!r} became {new!r}"))


def _message(path: Path, what: str) -> str:
    key = "/".join(map(str, path)) or "param_space"
    return (f"Tuner.restore(param_space=...) changes {key!r}: {what}. Pass the param_space the "
            "experiment was started with; only its objects (values that are not numbers, strings, "
            "booleans or None, such as a dataset or a model) may be given anew, as in Ray. To tune "
            "new values, start a new experiment.")


def _primitive(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def _pickled(value: Any) -> bytes:
    try:
        return cloudpickle.dumps(value)
    except Exception:  # noqa: BLE001 - an object that cannot be pickled matches nothing
        return repr(("unpicklable", id(value))).encode()


def _get(config: Any, path: Path) -> tuple[bool, Any]:
    for key in path:
        in_dict = isinstance(config, dict) and key in config
        in_list = isinstance(config, list | tuple) and isinstance(key, int) and key < len(config)
        if not (in_dict or in_list):
            return False, None
        config = config[key]
    return True, config


def _set(config: Any, path: Path, value: Any) -> Any:
    """A copy of ``config`` with ``value`` at ``path`` (containers along it copied)."""
    if not path:
        return value
    key, rest = path[0], path[1:]
    if isinstance(config, dict):
        return {**config, key: _set(config[key], rest, value)}
    items = list(config)
    items[key] = _set(items[key], rest, value)
    return type(config)(items) if isinstance(config, tuple) else items
