"""Declarative experiments: a TOML (or YAML) file that says what ``Tuner(...)`` would say.

    trainable = "examples/quickstart.py:objective"    # or "package.module:function"
    metric = "score"
    mode = "min"
    num_samples = 2

    [param_space]
    a = {grid_search = [0.001, 0.01, 0.1, 1.0]}
    b = {choice = [1, 2, 3]}
    lr = {loguniform = [1e-4, 1e-1]}

    [scheduler]
    name = "asha"
    max_t = 10

    [slurm]
    partition = "debug"

A search-space primitive is a one-key table named after the function, with its arguments
as a list (``{uniform = [0, 1]}``) or a table (``{uniform = {lower = 0, upper = 1}}``).
Every other value is a constant; tables nest. Errors name the key path and the expected
form and are raised as ``ConfigError``.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpctune.config.file_space import PRIMITIVES, parse_space, show_data  # noqa: F401 - PRIMITIVES: tests
from hpctune.errors import ConfigError, HpctuneError

TOP_LEVEL = {
    "name", "storage_path", "trainable", "param_space", "metric", "mode", "num_samples",
    "max_concurrent_trials", "reuse_actors", "time_budget_s", "seed", "scheduler", "search", "stop",
    "resources", "slurm", "failure", "checkpoint", "profile", "backend", "verbose",
    "gpu_hours_budget", "cpu_hours_budget",
}


@dataclass
class ExperimentFile:
    """A parsed experiment file; ``tuner()`` builds the Tuner it describes."""

    path: Path
    trainable_ref: str
    param_space: dict[str, Any] = field(default_factory=dict)
    tune: dict[str, Any] = field(default_factory=dict)
    scheduler: dict[str, Any] | None = None
    search: dict[str, Any] | None = None
    stop: dict[str, Any] | None = None
    resources: dict[str, Any] = field(default_factory=dict)
    slurm: dict[str, Any] = field(default_factory=dict)
    failure: dict[str, Any] = field(default_factory=dict)
    checkpoint: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    storage_path: str | None = None
    profile: str | None = None
    backend: str | None = None
    verbose: int = 1

    def load_trainable(self) -> Any:
        """Import the trainable named by ``trainable`` (relative paths: from the file's folder)."""
        return load_trainable(self.trainable_ref, self.path.parent)

    def tuner(self, slurm_config: Any = None, resources: dict[str, Any] | None = None,
              **tune_overrides: Any) -> Any:
        """The Tuner this file describes; ``slurm_config``/``resources`` replace the file's."""
        from hpctune.config import CheckpointConfig, FailureConfig, RunConfig, TuneConfig
        from hpctune.tune.trainable import with_resources
        from hpctune.tune.tuner import Tuner

        trainable = self.load_trainable()
        wanted = {**self.resources, **(resources or {})}
        if wanted:
            trainable = with_resources(trainable, wanted)
        tune = {**self.tune, **{k: v for k, v in tune_overrides.items() if v is not None}}
        tune_config = _build("tune", TuneConfig, {**tune, "scheduler": self._scheduler(),
                                                  "search_alg": self._searcher()})
        run_config = RunConfig(
            name=self.name, storage_path=self.storage_path, stop=self.stop,
            verbose=self.verbose, slurm=slurm_config,
            failure_config=_build("failure", FailureConfig, self.failure),
            checkpoint_config=_build("checkpoint", CheckpointConfig, self.checkpoint),
        )
        return Tuner(trainable, param_space=self.param_space, tune_config=tune_config,
                     run_config=run_config, backend=self.backend, slurm_config=slurm_config)

    def _scheduler(self) -> Any:
        if self.scheduler is None:
            return None
        from hpctune.tune.schedulers import create_scheduler

        params = dict(self.scheduler)
        return _call_named("scheduler", create_scheduler, params.pop("name"), params)

    def _searcher(self) -> Any:
        if self.search is None:
            return None
        from hpctune.tune.search import create_searcher

        params = dict(self.search)
        return _call_named("search", create_searcher, params.pop("name"), params)


def _call_named(where: str, factory: Any, name: str, params: dict[str, Any]) -> Any:
    try:
        return factory(name, **params)
    except TypeError as exc:
        raise ConfigError(f"{where}: invalid parameters for {name!r}: {exc}.") from None
    except HpctuneError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _build(where: str, cls: type, params: dict[str, Any]) -> Any:
    valid = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - valid)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key; valid keys: {', '.join(sorted(valid))}.")
    try:
        return cls(**params)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


# -- reading ---------------------------------------------------------------------------
def load_experiment_file(path: str | Path) -> ExperimentFile:
    """Parse and check an experiment file (.toml, .yaml/.yml); nothing is imported yet."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(f"Experiment file {path} does not exist: check the path "
                          "(write one like examples/experiment.toml).")
    data = _read(path)
    try:
        return parse_experiment(data, path)
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply; an experiment file has a few levels of "
                          "tables.") from None


def _read(path: Path) -> dict[str, Any]:
    try:
        return _parse_file(path)
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to read.") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text file ({exc.reason} at byte {exc.start}): an experiment "
                          "file is UTF-8 text, like examples/experiment.toml.") from None


def _parse_file(path: Path) -> dict[str, Any]:
    if path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ConfigError(f"{path}: reading YAML needs PyYAML: pip install 'hpctune[yaml]', "
                              "or write the experiment as TOML.") from None
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    elif path.suffix == ".toml":
        from hpctune.config.profiles import read_toml

        data = read_toml(path)
    else:
        raise ConfigError(f"{path}: an experiment file must end in .toml, .yaml or .yml.")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a table of settings at the top level, got {show_data(data)}.")
    return data


def parse_experiment(data: dict[str, Any], path: Path) -> ExperimentFile:
    """Check every section of an experiment file's data; errors name the key path."""
    odd = [key for key in data if not isinstance(key, str)]
    if odd:
        raise ConfigError(f"{show_data(odd[0])}: a setting's name must be text, like num_samples; valid "
                          f"keys: {', '.join(sorted(TOP_LEVEL))}.")
    unknown = sorted(set(data) - TOP_LEVEL)
    if unknown:
        hint = _did_you_mean(unknown[0], TOP_LEVEL)
        raise ConfigError(f"{unknown[0]}: unknown key{hint}; valid keys: {', '.join(sorted(TOP_LEVEL))}.")
    if not isinstance(data.get("trainable"), str) or ":" not in data["trainable"]:
        raise ConfigError('trainable: expected "module:function" or "path/to/file.py:function", '
                          f"got {show_data(data.get('trainable'))}.")
    tune = {k: data[k] for k in ("metric", "mode", "num_samples", "max_concurrent_trials",
                                 "reuse_actors", "time_budget_s", "seed", "gpu_hours_budget",
                                 "cpu_hours_budget") if k in data}
    return ExperimentFile(
        path=path, trainable_ref=data["trainable"],
        param_space=parse_space(_table(data, "param_space"), "param_space"),
        tune=tune,
        scheduler=_named_table(data, "scheduler"),
        search=_named_table(data, "search"),
        stop=_table(data, "stop") or None,
        resources=_table(data, "resources"),
        slurm=_table(data, "slurm"),
        failure=_table(data, "failure"),
        checkpoint=_table(data, "checkpoint"),
        name=data.get("name"), storage_path=data.get("storage_path"),
        profile=_text(data, "profile"), backend=_backend(data),
        verbose=_verbose(data),
    )


def _text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f'{key}: expected a name in quotes, like {key} = "gpu", got {show_data(value)}.')
    return value


def _backend(data: dict[str, Any]) -> str | None:
    value = data.get("backend")
    if value not in (None, "slurm", "local"):
        raise ConfigError(f'backend: expected "slurm" or "local", got {show_data(value)}.')
    return value


def _verbose(data: dict[str, Any]) -> int:
    from hpctune.config import check_verbose

    try:
        return check_verbose(data.get("verbose", 1))
    except ConfigError as exc:
        raise ConfigError(f"verbose: {exc}") from None


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: expected a table ([{key}] or {key} = {{...}}), got {show_data(value)}.")
    return dict(value)


def _named_table(data: dict[str, Any], key: str) -> dict[str, Any] | None:
    """``scheduler = "asha"`` or ``[scheduler] name = "asha" ...`` -> {"name": ..., params}."""
    if key not in data:
        return None
    value = data[key]
    if isinstance(value, str):
        return {"name": value}
    table = _table(data, key)
    if not isinstance(table.get("name"), str):
        raise ConfigError(f'{key}.name: expected the {key} name, like {key} = {{name = "...", ...}}, '
                          f"got {show_data(table.get('name'))}.")
    return table


def _did_you_mean(key: str, options: set[str]) -> str:
    close = difflib.get_close_matches(key, sorted(options), n=1)
    return f" (did you mean `{close[0]}`?)" if close else ""


# -- trainable references ------------------------------------------------------------------
def load_trainable(ref: str, base_dir: Path) -> Any:
    """``module:function`` (imported) or ``path.py:function`` (loaded from the file)."""
    target, _, attribute = ref.rpartition(":")
    if not target or not attribute:
        raise ConfigError(f'trainable: expected "module:function" or "file.py:function", got "{ref}".')
    module = _load_file(target, base_dir) if target.endswith(".py") else _import(target, ref)
    try:
        trainable = getattr(module, attribute)
    except AttributeError:
        names = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                 and getattr(v, "__module__", None) == module.__name__]
        raise ConfigError(f'trainable: "{target}" has no `{attribute}`; it defines: '
                          f"{', '.join(names) or 'no functions'}.") from None
    if not (callable(trainable) or inspect.isclass(trainable)):
        raise ConfigError(f"trainable: `{ref}` is not a function or Trainable class.")
    return trainable


def _import(module_name: str, ref: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f'trainable: cannot import "{module_name}" ({exc}); use '
                          '"path/to/file.py:function" for a file that is not an installed module.') from None


def _load_file(target: str, base_dir: Path) -> Any:
    candidates = [Path(target).expanduser(), base_dir / target]
    path = next((p.resolve() for p in candidates if p.is_file()), None)
    if path is None:
        raise ConfigError(f'trainable: file "{target}" not found (looked in the current directory '
                          f"and in {base_dir}).")
    name = f"hpctune_user_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.parent))  # the file may import its neighbours
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise ConfigError(f"trainable: importing {path} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        sys.path.remove(str(path.parent))
    return module
