"""Old module paths of hpctune 0.1, kept importable: pickles and queued jobs name them.

``tuner.pkl``, ``driver-state.pkl`` and a searcher's or scheduler's state pickle name their
classes by module path (``hpctune.schedulers.async_hyperband.ASHAScheduler``), and an sbatch
script already in the queue may run ``python -m hpctune.cli_driver``. When the modules moved
into packages (``docs/concepts.md``, "Code map"), this finder kept the old names working: an
import of an old name returns the module at its new home (the same module object, so
``isinstance`` holds), with a ``DeprecationWarning``. It answers only for the names below.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from types import ModuleType

#: old dotted name -> new dotted name; a package maps everything under it too
MOVED: dict[str, str] = {
    "hpctune.trial": "hpctune.tune.experiment.trial",
    "hpctune.metrics": "hpctune.core.metrics",
    "hpctune.objective": "hpctune.core.objective",
    "hpctune.config_checks": "hpctune.core.checks",
    "hpctune.checkpoint": "hpctune.core.checkpoint",
    "hpctune.profiles": "hpctune.config.profiles",
    "hpctune.experiment_file": "hpctune.config.experiment_file",
    "hpctune.ray_compat": "hpctune.config.ray_env",
    "hpctune.tuner": "hpctune.tune.tuner",
    "hpctune.tune_run": "hpctune.tune.tune_run",
    "hpctune.trainable": "hpctune.tune.trainable",
    "hpctune.trainable_registry": "hpctune.tune.registry",
    "hpctune.trainable_pickle": "hpctune.storage.pickling",
    "hpctune.callbacks": "hpctune.tune.callback",
    "hpctune.stoppers": "hpctune.tune.stopper",
    "hpctune.stopper": "hpctune.tune.stopper",
    "hpctune.search": "hpctune.tune.search",
    "hpctune.schedulers": "hpctune.tune.schedulers",
    "hpctune.loggers": "hpctune.tune.logger",
    "hpctune.driver_bridge": "hpctune.controller.bridge",
    "hpctune.trial_names": "hpctune.controller.trial_names",
    "hpctune.session": "hpctune.worker.session",
    "hpctune.trial_context": "hpctune.worker.context",
    "hpctune.exit_guard": "hpctune.worker.exit_guard",
    "hpctune.log_to_file": "hpctune.worker.output",
    "hpctune.report_values": "hpctune.worker.report_values",
    "hpctune.distributed": "hpctune.worker.distributed",
    "hpctune.analysis": "hpctune.results.analysis",
    "hpctune.export_hdf5": "hpctune.results.hdf5",
    "hpctune.experiment_report": "hpctune.results.report",
    "hpctune.run_view": "hpctune.display.view",
    "hpctune.progress": "hpctune.display.reporter",
    "hpctune.status_table": "hpctune.display.table",
    "hpctune.pool.settings": "hpctune.backends.pool_settings",
    "hpctune.cli_driver": "hpctune.cli.driver",
}


def new_name(old: str) -> str | None:
    """Where module ``old`` lives now, or None when it did not move."""
    if not old.startswith("hpctune."):
        return None  # every import of the process asks this finder first: answer others at once
    for prefix, target in MOVED.items():
        if old == prefix or old.startswith(prefix + "."):
            return target + old[len(prefix):]
    return None


class _AliasLoader(importlib.abc.Loader):
    """Loads an old name as the module at its new home (``python -m OLD`` runs the new file)."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(f"{spec.name} moved to {self.target}: import it from there",
                      DeprecationWarning, stacklevel=2)
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        """The module ran at its new home already."""

    def get_code(self, fullname: str):  # noqa: ANN201 - runpy's protocol (``python -m OLD``)
        spec = importlib.util.find_spec(self.target)
        assert spec is not None and spec.loader is not None
        return spec.loader.get_code(self.target)  # type: ignore[attr-defined]

    def is_package(self, fullname: str) -> bool:
        spec = importlib.util.find_spec(self.target)
        return bool(spec and spec.submodule_search_locations is not None)


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):  # noqa: ANN001, ANN201 - importlib's protocol
        moved = new_name(fullname)
        if moved is None:
            return None
        loader = _AliasLoader(moved)
        return importlib.machinery.ModuleSpec(fullname, loader,
                                              is_package=loader.is_package(fullname))


def install() -> None:
    """Answer for the old names, before the path finder would load a second copy (idempotent)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _MovedFinder())  # before PathFinder: no second copy of a module
