"""Site profiles: named TOML files that fill ``SlurmConfig`` for a cluster.

A profile is looked up, by file name without ``.toml``, in (later wins):

1. the profiles shipped with hpctune (``default``, ``gpu``, ``preemptible``, ``multinode``):
   the repository's top-level ``slurm_templates/``, installed as ``hpctune/slurm_templates``,
2. ``~/.config/hpctune/`` (``$XDG_CONFIG_HOME/hpctune/``),
3. every directory listed in ``$HPCTUNE_PROFILE_PATH`` (``:``-separated).

Top-level keys are ``SlurmConfig`` fields; the optional tables ``[resources]`` (the default
per-trial request: cpu, gpu, mem_gb, nodes, tasks_per_node) and ``[driver]`` (the detached
driver job: partition, account, qos, time_min, mem_gb, setup, sbatch_options) and the keys
``description`` and ``extends`` (another profile to start from) are hpctune's own.

``hpctune submit train.py`` runs the user's script and applies the profile and the
command-line options to every ``Tuner`` it builds: ``SubmitOverrides.apply``, run through
``hpctune.tune.tuner.tuner_hooks(on_create=...)``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpctune.config import SlurmConfig
from hpctune.core.resources import RESOURCES_ATTR, resources_for
from hpctune.errors import ConfigError
from hpctune.tune.trainable import with_resources

PROFILE_PATH_ENV = "HPCTUNE_PROFILE_PATH"
TEMPLATES = "slurm_templates"
SLURM_FIELDS = {f.name for f in dataclasses.fields(SlurmConfig)}
RESOURCE_FIELDS = {"cpu", "gpu", "mem_gb", "nodes", "tasks_per_node", "tasks", "gpus_per_task"}
DRIVER_FIELDS = {"partition", "account", "qos", "time_min", "mem_gb", "setup", "sbatch_options"}
_OWN_KEYS = {"description", "extends", "resources", "driver"}


@dataclass(frozen=True)
class Profile:
    """One site profile: SlurmConfig fields, default trial resources, driver job settings."""

    name: str
    path: Path
    description: str = ""
    slurm: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)
    driver: dict[str, Any] = field(default_factory=dict)

    def slurm_config(self, *overrides: dict[str, Any]) -> SlurmConfig:
        """The profile's SlurmConfig with ``overrides`` (dicts of fields) applied in order."""
        return merge_slurm(self.slurm, *overrides)


def package_profile_dir() -> Path:
    """The profiles shipped with hpctune: ``hpctune/slurm_templates`` in an installed wheel,
    else (a source checkout, an editable install) the repository's top-level folder."""
    package = Path(__file__).resolve().parents[1]  # hpctune/
    installed = package / TEMPLATES
    return installed if installed.is_dir() else package.parent / TEMPLATES


def profile_dirs() -> list[Path]:
    """Where profiles are looked up, lowest precedence first."""
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    dirs = [package_profile_dir(), config_home / "hpctune"]
    extra = os.environ.get(PROFILE_PATH_ENV, "")
    dirs += [Path(p).expanduser() for p in extra.split(os.pathsep) if p]
    return dirs


def available_profiles(dirs: Sequence[Path] | None = None) -> dict[str, Path]:
    """``{name: file}`` of every profile in ``dirs`` (default: ``profile_dirs()``); a later
    directory's file replaces an earlier one."""
    found: dict[str, Path] = {}
    for directory in profile_dirs() if dirs is None else dirs:
        if directory.is_dir():
            found.update({p.stem: p for p in sorted(directory.glob("*.toml"))})
    return dict(sorted(found.items()))


def load_profile(name: str, dirs: Sequence[Path] | None = None, _seen: tuple[str, ...] = ()) -> Profile:
    """The profile called ``name`` (``extends`` resolved), looked up in ``dirs`` (default:
    ``profile_dirs()``; ``[package_profile_dir()]``: as shipped, whatever the user's own say);
    ConfigError names the available ones."""
    files = available_profiles(dirs)
    if name not in files:
        raise ConfigError(
            f"Unknown profile {name!r}. Available profiles: {', '.join(files) or 'none'} "
            f"(looked in {', '.join(str(d) for d in (profile_dirs() if dirs is None else dirs))}). "
            "Write your own as ~/.config/hpctune/<name>.toml (see docs/profiles.md)."
        )
    if name in _seen:
        raise ConfigError(f"Profiles extend each other in a cycle: {' -> '.join((*_seen, name))}.")
    data = read_toml(files[name])
    base = load_profile(data["extends"], dirs, (*_seen, name)) if "extends" in data else None
    return _profile_from(name, files[name], data, base)


def _profile_from(name: str, path: Path, data: dict[str, Any], base: Profile | None) -> Profile:
    slurm = {k: v for k, v in data.items() if k not in _OWN_KEYS}
    _check_keys(path, "", slurm, SLURM_FIELDS, "a SlurmConfig field")
    _check_keys(path, "resources.", data.get("resources", {}), RESOURCE_FIELDS, "a resource")
    _check_keys(path, "driver.", data.get("driver", {}), DRIVER_FIELDS, "a driver setting")
    merge_slurm(slurm)  # raise now, naming the file, if a value is invalid
    if base is not None:
        slurm = _merge_fields(base.slurm, slurm)
    return Profile(
        name=name, path=path,
        description=str(data.get("description", base.description if base else "")),
        slurm=slurm,
        resources={**(base.resources if base else {}), **data.get("resources", {})},
        driver=_merge_fields(base.driver if base else {}, data.get("driver", {})),
    )


def _check_keys(path: Path, prefix: str, table: Any, valid: set[str], what: str) -> None:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: `{prefix.rstrip('.')}` must be a table, got {table!r}.")
    unknown = sorted(set(table) - valid)
    if unknown:
        raise ConfigError(
            f"{path}: `{prefix}{unknown[0]}` is not {what}; valid keys: {', '.join(sorted(valid))}."
        )


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; syntax errors name the file and line."""
    try:  # here, not at the top: tomllib costs every `hpctune` command ~5 ms
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def merge_slurm(*layers: dict[str, Any]) -> SlurmConfig:
    """A SlurmConfig from field dicts, later layers winning (``setup`` lines are concatenated,
    ``sbatch_options`` merged); invalid values raise ConfigError."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = _merge_fields(merged, layer)
    unknown = sorted(set(merged) - SLURM_FIELDS)
    if unknown:
        raise ConfigError(f"`{unknown[0]}` is not a SlurmConfig field; valid: {sorted(SLURM_FIELDS)}.")
    try:
        return SlurmConfig(**merged)
    except TypeError as exc:
        raise ConfigError(f"Invalid Slurm settings {merged}: {exc}") from None


def _merge_fields(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if key == "setup":
            lines = [value] if isinstance(value, str) else list(value)
            merged["setup"] = list(dict.fromkeys([*merged.get("setup", []), *lines]))
        elif key == "sbatch_options":
            merged["sbatch_options"] = {**merged.get("sbatch_options", {}), **value}
        else:
            merged[key] = value
    return merged


def non_default_fields(config: SlurmConfig) -> dict[str, Any]:
    """The fields of ``config`` that differ from ``SlurmConfig()``'s defaults."""
    default = SlurmConfig()
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(SlurmConfig)
            if getattr(config, f.name) != getattr(default, f.name)}


# -- script mode: profile + command-line options handed to the user's Tuner ----------------
@dataclass
class SubmitOverrides:
    """What ``hpctune submit train.py`` imposes on the Tuner that the script builds.

    ``slurm_defaults`` (the profile) fill the SlurmConfig fields the script leaves at their
    defaults; ``slurm_forced`` (command-line options) win over the script;
    ``resource_defaults`` (the profile) apply to a trainable without ``with_resources``;
    ``resources`` (command-line) win over the trainable's own request; ``name`` and
    ``storage_path`` pin the experiment directory so that the CLI can watch and resume it.
    """

    slurm_defaults: dict[str, Any] = field(default_factory=dict)
    slurm_forced: dict[str, Any] = field(default_factory=dict)
    resource_defaults: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)
    max_concurrent_trials: int | None = None
    name: str | None = None
    storage_path: str | None = None
    keep_jobs_on_interrupt: bool | None = None

    def apply(self, tuner: Any) -> None:
        """Change ``tuner`` (a Tuner being constructed) in place."""
        script = non_default_fields(tuner.slurm_config)
        tuner.slurm_config = merge_slurm(self.slurm_defaults, script, self.slurm_forced)
        if self.max_concurrent_trials is not None:
            tuner.tune_config.max_concurrent_trials = self.max_concurrent_trials
        if self.name:
            tuner.run_config.name = self.name
        if self.storage_path:
            tuner.run_config.storage_path = self.storage_path
        if self.keep_jobs_on_interrupt is not None:
            tuner.run_config.keep_jobs_on_interrupt = self.keep_jobs_on_interrupt
        if self.resources or self.resource_defaults:
            tuner.trainable = _override_resources(tuner.trainable, self.resource_defaults,
                                                  self.resources)


def _override_resources(trainable: Any, defaults: dict[str, Any], forced: dict[str, Any]) -> Any:
    """Profile resources apply when the trainable requests none; command-line ones always."""
    original = trainable
    base = {} if hasattr(trainable, RESOURCES_ATTR) else dict(defaults)
    return with_resources(trainable, lambda config: {**resources_for(original, config), **base, **forced})

