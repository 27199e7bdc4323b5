"""Checks of settings (config fields, searcher, scheduler, stopper and reporter arguments)
and of the metrics they name in results, all with one kind of message: what is wrong, then
``Fix:`` and what to write instead (``invalid``). The owner is named where the caller knows
it: ``TuneConfig(num_samples='3') is not valid: ...``; otherwise ``The value of `max_t` is 0,
but must be ...``. Nothing is coerced: a number written as a string is refused, not converted.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any

from hpctune.core.metrics import MISSING, flat_value
from hpctune.errors import ConfigError

_WHAT = {"int": "a whole number", "number": "a finite number", "real": "a number",
         "bool": "True or False", "str": "a string"}
_MODE_FIX = "mode='min' to minimise the metric, or mode='max' to maximise it"


def invalid(name: str, value: Any, what: str, fix: str, owner: str | None = None) -> ConfigError:
    """The error for setting ``name`` to ``value``: it must be ``what``; ``fix`` says what to write."""
    problem = (f"{owner}({name}={value!r}) is not valid: `{name}` must be {what}" if owner
               else f"The value of `{name}` is {value!r}, but must be {what}")
    return ConfigError(f"{problem}. Fix: {fix}.")


def _is_kind(value: Any, kind: str) -> bool:
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if isinstance(value, bool):
        return False
    if kind == "int":
        return isinstance(value, Integral)
    return isinstance(value, Real) and (kind == "real" or math.isfinite(value))


def check_value(owner: str | None, name: str, value: Any, kind: str, low: float | None = None,
                strict: bool = False, optional: bool = False, also: str = "") -> None:
    """Refuse a setting of the wrong type (``kind``: int, number (finite), real (inf too), bool,
    str) or below ``low`` (or at it, when ``strict``); a number written as a string too."""
    if (value is None and optional) or (_is_kind(value, kind) and (
            low is None or (value > low if strict else value >= low))):
        return
    bound = "" if low is None else f" {'>' if strict else '>='} {low:g}"
    what = _WHAT[kind] + bound + also + (", or None" if optional else "")
    fix = f"choose {name}{bound}" if _is_kind(value, kind) else _fix(name, value, kind)
    raise invalid(name, value, what, fix, owner)


def check_number(name: str, value: Any, bound: float, *, strict: bool = True, integer: bool = False) -> None:
    """A numeric argument of a scheduler, stopper or reporter: a whole number if ``integer``,
    else any number (inf too), above ``bound`` (or at it, unless ``strict``)."""
    check_value(None, name, value, "int" if integer else "real", bound, strict)


def check_mode(mode: Any, allow_none: bool = False, owner: str | None = None) -> None:
    """``mode`` must be 'min' or 'max' (or None where ``allow_none``)."""
    if mode in ("min", "max") or (mode is None and allow_none):
        return
    raise invalid("mode", mode, "'min' or 'max'", _MODE_FIX, owner)


def check_metric(owner: str, metric: Any) -> None:
    """``metric`` must name a reported metric: a non-empty string."""
    if not isinstance(metric, str) or not metric:
        raise invalid("metric", metric, "the name of a reported metric (a non-empty string)",
                      f"{owner}(metric='loss')", owner)


def require_number(result: Mapping[str, Any], key: str, trial_id: str, owner: str) -> float:
    """The number a trial reported under ``key`` (``"a/b"`` finds a nested value); None counts
    as NaN. A key the result lacks, or a value that is no number, is a ConfigError: the
    configuration of ``owner`` names a metric the trainable does not report."""
    value = flat_value(result, key, MISSING)
    if value is MISSING:
        raise ConfigError(
            f"{owner} needs `{key}` in every result, but trial {trial_id} reported only "
            f"{sorted(result)}. Fix: report `{key}` with `tune.report()`, or configure "
            f"{owner} with one of the reported keys.")
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"The value of `{key}` reported by trial {trial_id} is {value!r}, but {owner} needs a "
            f"number. Fix: report `{key}` as a number, or configure {owner} with another metric."
        ) from None


#: Ray's switch: ``1`` turns off the check that results hold the metrics the experiment names
STRICT_METRIC_ENV = "TUNE_DISABLE_STRICT_METRIC_CHECKING"


def strict_metric_checking() -> bool:
    """False when ``TUNE_DISABLE_STRICT_METRIC_CHECKING=1`` (Ray reads it as a number)."""
    return os.environ.get(STRICT_METRIC_ENV, "0").strip() in ("", "0")


def check_result_metrics(flat: Mapping[str, Any], tune_metric: Any, scheduler: Any, searcher: Any) -> None:
    """Ray's strict metric checking: a ConfigError (a ValueError, as Ray's) at the first result
    that lacks the metric of ``TuneConfig``, else of the scheduler, else of the searcher (each
    ``.metric``; names as flattened), unless ``TUNE_DISABLE_STRICT_METRIC_CHECKING=1``."""
    if not strict_metric_checking():
        return
    for where, metric in (("tune.TuneConfig()", tune_metric),
                          (_owner_name(scheduler), getattr(scheduler, "metric", None)),
                          (_owner_name(searcher), getattr(searcher, "metric", None))):
        names = [metric] if isinstance(metric, str) else list(metric or [])
        missing = [name for name in names if name and name != "_metric" and name not in flat]
        if missing:
            shown = missing[0] if len(missing) == 1 else missing
            raise ConfigError(
                f"Trial returned a result which did not include the specified metric(s) `{shown}` "
                f"that `{where}` expects. Make sure your calls to `tune.report()` include the metric, "
                f"or set the {STRICT_METRIC_ENV} environment variable to 1. Result: {dict(flat)}")


def _owner_name(decider: Any) -> str:
    """The user's scheduler or searcher's class name, through hpctune's wrappers."""
    inner = getattr(decider, "scheduler", None) or getattr(decider, "searcher", None) or decider
    return type(inner).__name__


def _fix(name: str, value: Any, kind: str) -> str:
    if isinstance(value, str) and kind in ("int", "number"):
        try:
            number = int(value) if kind == "int" else float(value)
        except ValueError:
            return f"give {name} as a number, e.g. {name}=1"
        return f"write {name}={number!r} (a number, not the string {value!r})"
    if kind == "bool":
        return f"write {name}=True or {name}=False (without quotes)"
    return f"give {name} as {_WHAT[kind]}" + (" (not a string)" if isinstance(value, str) else "")


def check_instance(owner: str, name: str, value: Any, cls: type, optional: bool = False) -> None:
    """Refuse a dict (or anything else) where a config object such as FailureConfig belongs."""
    if (value is None and optional) or isinstance(value, cls):
        return
    raise ConfigError(f"{owner}({name}={value!r}) is not valid: `{name}` must be a {cls.__name__}"
                      f"{', or None' if optional else ''}. Fix: {name}={cls.__name__}(...), e.g. "
                      f"{name}={cls.__name__}(**{{...}}) for a dict of its fields.")


def check_plugin(name: str, value: Any, method: str, factory: str) -> None:
    """A searcher or scheduler given by name (a string) or as something without its methods."""
    if value is None or (not isinstance(value, (str, type)) and hasattr(value, method)):
        return
    hint = (f"create it by name: {name}=tune.{factory}({value!r})" if isinstance(value, str)
            else f"pass an instance, e.g. {name}={getattr(value, '__name__', '?')}()"
            if isinstance(value, type) else f"pass an object with {method}()")
    raise ConfigError(f"TuneConfig({name}={value!r}) is not valid: it must be an object with "
                      f"{method}(). Fix: {hint}.")



def check_tuner_args(param_space: Any, configs: dict[str, tuple[Any, type]]) -> None:
    """``Tuner(...)``'s arguments: a dict param_space and config objects, not dicts of fields."""
    if param_space is not None and not hasattr(param_space, "keys"):
        raise ConfigError(f"Tuner(param_space={param_space!r}) is not valid: it must be a dict of "
                          "parameters. Fix: param_space={'lr': tune.loguniform(1e-4, 1e-1)}.")
    if param_space is not None:
        check_space_shape(param_space)
    for name, (value, cls) in configs.items():
        if value is not None and not isinstance(value, cls):
            raise ConfigError(f"Tuner({name}={value!r}) is not valid: `{name}` must be a "
                              f"{cls.__name__}. Fix: {name}={cls.__name__}(...), e.g. "
                              f"{cls.__name__}(**fields) for a dict of its fields.")


#: how deep a param_space may nest dicts and lists (the resolver walks it recursively)
MAX_SPACE_DEPTH = 100


def check_space_shape(param_space: Any) -> None:
    """A param_space the resolver and every flattened view can take: at most
    ``MAX_SPACE_DEPTH`` levels of dicts and lists (walked without recursion), and no two
    entries that flatten to one name (``{"a/b": 1, "a": {"b": 2}}``)."""
    from collections.abc import Mapping

    from hpctune.core.metrics import flat_collision

    stack: list[tuple[Any, str, int]] = [(param_space, "", 0)]
    while stack:
        value, where, depth = stack.pop()
        if depth > MAX_SPACE_DEPTH:
            raise ConfigError(f"param_space is nested more than {MAX_SPACE_DEPTH} levels deep (at "
                              f"{where[:80]}...): hpctune cannot resolve it. Fix: flatten it; keep "
                              "deep constants out of param_space (tune.with_parameters).")
        if isinstance(value, Mapping):
            stack.extend((item, f"{where}{key}/", depth + 1) for key, item in value.items())
        elif isinstance(value, (list, tuple)):
            stack.extend((item, f"{where}[{i}]/", depth + 1) for i, item in enumerate(value))
    clash = flat_collision(param_space)
    if clash is not None:
        raise ConfigError(f"param_space has two entries both named `{clash}` once nested keys are "
                          "joined with '/' (as the result table and searchers see them), so one "
                          "would silently hide the other. Fix: rename one.")


def has_hooks(callback: Any) -> bool:
    """Whether ``callback`` has a hook hpctune calls (``on_trial_result``, ``setup``...): an
    object without any would be ignored in silence."""
    return any(name.startswith(("on_", "setup")) and callable(getattr(callback, name, None))
               for name in dir(callback))


def check_slurm_signal(name: str) -> None:
    """``SlurmConfig(signal=...)``: a signal Slurm and the worker know (``USR1``, ``SIGUSR2``, ``10``)."""
    import signal as signals

    text = name.upper().removeprefix("SIG")
    known = {s.name.removeprefix("SIG") for s in signals.Signals}
    if text in known or (text.isdigit() and 0 < int(text) < signals.NSIG):
        return
    raise ConfigError(f"SlurmConfig(signal={name!r}) is not a signal: Slurm would refuse the job at "
                      "sbatch. Fix: a name such as 'USR1' (the default) or 'USR2', or a number.")
