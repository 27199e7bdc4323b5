"""What ``Tuner.fit`` checks before it writes a byte: user functions called once on a probe
trial, files the run would read, and whether an experiment of the same name was ever started.

An error that shows only when the first trial is created (a ``trial_name_creator`` returning
None, a resources function that raises, ``gpu=1`` on a machine without GPUs, a missing PBT
policy file) would otherwise come after ``experiment.json`` exists. The probe config is the
first grid variant of ``param_space`` with its distributions sampled: what the default search
gives a trial. Another searcher's configs cannot be known in advance, so its trials are not
probed; a ``fit()`` that fails before its first trial ran leaves an experiment that is not
``started`` (``ExperimentDir.has_started``), and the next ``fit()`` of the same name starts over.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import numpy as np

from hpctune.core.resources import RESOURCES_ATTR, resources_for
from hpctune.errors import ConfigError, HpctuneError, TrainableError
from hpctune.storage.experiment import ExperimentDir
from hpctune.tune.experiment.trial import Trial

if TYPE_CHECKING:
    from hpctune.tune.tuner import Tuner

PROBE_TRIAL_ID = "probe_00000"


def check_before_writing(tuner: Tuner, scheduler: Any) -> None:
    """Every check of ``fit()`` that needs the searcher's first config or a file, run now."""
    read_replay_policy(scheduler)
    check_checkpoint_settings(tuner)
    tell_if_endless(tuner)
    config = probe_config(tuner)
    resources = _probe_resources(tuner.trainable, config)
    if resources is not None and tuner.backend_name == "local":
        from hpctune.backends.local import check_local_gpus, detect_gpus

        check_local_gpus(resources, detect_gpus)
    if config is not None:
        _probe_names(tuner, config)


def check_checkpoint_settings(tuner: Tuner) -> None:
    """``CheckpointConfig(checkpoint_frequency=..., checkpoint_at_end=True)`` with a function
    trainable is a ConfigError, as in Ray: only a class trainable's ``save_checkpoint`` can be
    called by the driver's schedule; a function saves with ``tune.report(checkpoint=...)``."""
    from hpctune.tune.trainable import is_class_trainable

    cc = tuner.run_config.checkpoint_config
    asked = [f"{name}={value!r}" for name, value in (("checkpoint_frequency", cc.checkpoint_frequency),
                                                    ("checkpoint_at_end", cc.checkpoint_at_end)) if value]
    if asked and not is_class_trainable(tuner.trainable):
        raise ConfigError(
            f"CheckpointConfig({', '.join(asked)}) needs a class trainable (hpctune.Trainable with "
            "save_checkpoint); a function trainable would ignore it. Fix: save from the function "
            "with tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(path)), and drop "
            "the setting (as Ray Tune requires).")


#: a search of more trials than this is said to be long before it starts
LONG_SEARCH_TRIALS = 100_000


def tell_if_endless(tuner: Tuner) -> None:
    """Say on stderr, before the run, that the search never ends by itself (``num_samples=-1``
    without a stop criterion or time budget) or holds a vast grid: Ray runs both as asked,
    and so does hpctune, but not without a word."""
    import sys

    from hpctune.space import count_grid_variants

    tc, rc = tuner.tune_config, tuner.run_config
    if tc.num_samples == -1 and rc.stop is None and tc.time_budget_s is None:
        print("hpctune: num_samples=-1 with no stop criterion or time budget: trials are created "
              "until you stop the run (Ctrl+C, `hpctune cancel`); set RunConfig(stop=...) or "
              "TuneConfig(time_budget_s=...) to end it.", file=sys.stderr)
    elif tc.search_alg is None and tc.num_samples > 0:
        try:
            total = count_grid_variants(tuner.param_space) * tc.num_samples
        except Exception:  # noqa: BLE001 - the search reports a bad space itself
            return
        if total > LONG_SEARCH_TRIALS:
            print(f"hpctune: this search has {total:.3g} trials (grid points x num_samples): it "
                  "runs until all have run or you stop it; a random or model-based search with "
                  "fewer samples may be what you meant.", file=sys.stderr)


def refuse_started(exp: ExperimentDir) -> None:
    """A ConfigError if ``exp`` holds an experiment that ran a trial (a re-run would mix two
    experiments); one whose first ``fit()`` failed or was killed before any trial ran is fine."""
    if exp.has_started():
        raise ConfigError(
            f"{exp.root} already holds an experiment: continue it with "
            f"Tuner.restore('{exp.root}', trainable), or choose another RunConfig(name=...).")


def read_replay_policy(scheduler: Any) -> None:
    """Give ``PopulationBasedTrainingReplay`` its policy file's rows now (schedulers never open
    files): a missing or damaged file is a ConfigError naming it, before the run."""
    if not getattr(scheduler, "needs_policy_rows", False):
        return
    from hpctune.storage.pbt_files import read_policy_rows

    rows = read_policy_rows(scheduler.policy_file)
    try:
        scheduler.set_policy(rows)
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigError(f"Could not read PBT policy file {scheduler.policy_file}: a row's configs "
                          f"are not dicts or its step is not a number ({exc}). Give a "
                          "pbt_policy_<trial>.txt written by a PBT run.") from exc


def probe_config(tuner: Tuner) -> dict[str, Any] | None:
    """The config the default search gives its first trial (grid variant 0, sampled); None
    with another search algorithm, or when sampling needs more than the space holds."""
    from hpctune.space import grid_variant, resolve_config

    if tuner.tune_config.search_alg is not None:
        return None
    try:
        return resolve_config(grid_variant(tuner.param_space, 0), np.random.default_rng(0))
    except Exception:  # noqa: BLE001 - the search reports it when it samples the same value
        return None


def trial_resources(trainable: Any, config: dict[str, Any]) -> dict[str, Any]:
    """``resources_for``, with an exception raised by the user's resources function (or
    ``default_resource_request``) as a ConfigError that names it and the config."""
    try:
        return resources_for(trainable, config)
    except HpctuneError:
        raise
    except Exception as exc:
        raise ConfigError(
            f"The trainable's resources function raised {type(exc).__name__}: {exc} for the config "
            f"{_short(config)}. Fix it: it gets the trial's config and returns a dict such as "
            "{'cpu': 2, 'gpu': 1} (with_resources(trainable, fn) or default_resource_request)."
        ) from exc


def _probe_resources(trainable: Any, config: dict[str, Any] | None) -> dict[str, Any] | None:
    getter = getattr(trainable, RESOURCES_ATTR, None)
    config_free = getter is not None and not callable(getter()) or (
        getter is None and not hasattr(trainable, "default_resource_request"))
    if config is None and not config_free:
        return None
    return trial_resources(trainable, config or {})


def _probe_names(tuner: Tuner, config: dict[str, Any]) -> None:
    from hpctune.controller.trial_names import call_creator

    tc = tuner.tune_config
    probe = Trial(trial_id=PROBE_TRIAL_ID, config=config, experiment_tag="0", path="")
    probe.trainable_name = tuner._trainable_name()
    for option in ("trial_name_creator", "trial_dirname_creator"):
        creator = getattr(tc, option)
        if creator is not None:
            call_creator(creator, option, probe)


#: Trainable methods as hpctune calls them: (positional arguments after self, how to write it)
_METHODS = {"setup": (1, "def setup(self, config)"), "step": (0, "def step(self)"),
            "save_checkpoint": (1, "def save_checkpoint(self, checkpoint_dir)"),
            "load_checkpoint": (1, "def load_checkpoint(self, checkpoint)")}


def check_signature(trainable: Any) -> None:
    """A TrainableError, before anything is submitted, for a function trainable that cannot be
    called as ``f(config)`` or a Trainable whose methods cannot be called as Ray calls them."""
    if isinstance(trainable, type):
        for method, (count, expected) in _METHODS.items():
            _check_call(getattr(trainable, method, None), (None,) + ({},) * count,
                        f"{trainable.__name__}.{method}", expected)
        return
    name = getattr(trainable, "__name__", "trainable")
    _check_call(trainable, ({},), name, f"def {name}(config)")


def _check_call(function: Any, args: tuple, what: str, expected: str) -> None:
    if function is None:
        return
    try:
        signature = inspect.signature(function, follow_wrapped=False)
    except (TypeError, ValueError):  # a builtin or C function: nothing to check
        return
    try:
        signature.bind(*args)
    except TypeError as exc:
        raise TrainableError(
            f"{what}{signature} cannot be called the way hpctune calls it ({exc}): write it as "
            f"`{expected}: ...`; pass other objects with tune.with_parameters(trainable, name=obj)."
        ) from None


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
