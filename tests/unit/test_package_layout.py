"""The package's shape: no import cycles, no module over 400 lines, one owner per concern.

Checked statically with ``ast`` over every module of ``hpctune`` (imports under
``if TYPE_CHECKING:`` are annotations only and do not count).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "hpctune"
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(source: str, name: str, is_package: bool) -> set[str]:
    """The hpctune modules ``source`` imports at run time (TYPE_CHECKING blocks skipped)."""
    tree = ast.parse(source)
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
            skipped.update(id(n) for n in ast.walk(node))
    found = set()
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m == "hpctune" or m.startswith("hpctune.")}


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    files = {module_name(p): p for p in package.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        imports = runtime_imports(path.read_text(), name, path.name == "__init__.py")
        graph[name] = {m for m in imports if m in files and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 40  # the walk found the package
    assert cycles(graph) == []


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_type_checking_imports_do_not_count():
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from hpctune.x import y\nimport hpctune.z\n"
    assert runtime_imports(source, "hpctune.m", False) == {"hpctune.z"}


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: module_name(p))
def test_modules_stay_small(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES


def test_only_storage_spells_experiment_file_names():
    names = ['"trial.json"', '"result.jsonl"', '"params.json"', '"control.json"', '"state.json"',
             '"summary.json"', '"submit.json"', '"driver.log"', '".driver.lock"', '"tuner.pkl"',
             '"trainable.pkl"', '"driver-state.pkl"', '"experiment.json"', '_0_log']
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.parent.name == "storage":
            continue
        text = path.read_text()
        offenders += [f"{module_name(path)}: {n}" for n in names if n in text]
    assert offenders == []


def test_no_module_of_the_package_shadows_a_public_name():
    """Importing ``hpctune.<name>`` sets the attribute ``hpctune.<name>`` to the module: a
    module named like an exported function (``report``) would turn ``tune.report`` into a
    module in every process that imported it."""
    import hpctune
    from hpctune import tune

    for package, exported in ((PACKAGE, set(hpctune._EXPORTS)), (PACKAGE / "tune", set(tune.__all__) - set(hpctune._SUBMODULES))):
        modules = {p.stem for p in package.glob("*.py")} | {p.name for p in package.iterdir() if p.is_dir()}
        assert sorted(exported & modules) == [], package


def test_tune_report_stays_a_function_after_the_report_package_is_imported():
    import hpctune.results.report.data  # noqa: F401 - what `hpctune report` and ResultGrid import
    from hpctune import train, tune

    assert callable(tune.report) and callable(train.report)


#: what each package may import of hpctune (docs/concepts.md, "Code map"): the worker and the
#: pool run inside Slurm jobs and must start without numpy, pandas or the driver
#: the one counted, rate-limited way to run a Slurm command: a job requeues itself through it
_SLURM_CHOKEPOINT = ("hpctune.backends.slurm_commands", "hpctune.backends.slurm_limits")
LAYERS: dict[str, set[str]] = {
    "hpctune.core": {"hpctune.errors", "hpctune.core"},
    "hpctune.storage": {"hpctune.errors", "hpctune.core", "hpctune.storage"},
    "hpctune.worker": {"hpctune.errors", "hpctune.core", "hpctune.storage", "hpctune.worker",
                       "hpctune.tune.trainable", *_SLURM_CHOKEPOINT},
    "hpctune.pool": {"hpctune.errors", "hpctune.core", "hpctune.storage", "hpctune.worker",
                     "hpctune.pool", "hpctune.tune.trainable", *_SLURM_CHOKEPOINT},
}
#: (importer, imported) pairs that break LAYERS today, each with its reason; keep this short
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {
    ("hpctune.storage.replay", "hpctune.tune.experiment.trial"): "replay rebuilds the driver's Trial",
}


def _layer(module: str) -> str | None:
    return next((layer for layer in LAYERS if module == layer or module.startswith(layer + ".")), None)


def _allowed(imported: str, allowed: set[str]) -> bool:
    return imported == "hpctune" or any(imported == a or imported.startswith(a + ".") for a in allowed)


def layer_violations(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    found = []
    for importer, imports in sorted(graph.items()):
        layer = _layer(importer)
        if layer is None:
            continue
        found += [(importer, imported) for imported in sorted(imports)
                  if not _allowed(imported, LAYERS[layer])]
    return found


def test_each_package_imports_only_the_layers_below_it():
    violations = layer_violations(import_graph())
    assert [v for v in violations if v not in KNOWN_EXCEPTIONS] == []
    assert [e for e in KNOWN_EXCEPTIONS if e not in violations] == []  # fixed: remove it here


def test_the_layer_check_catches_an_upward_import():
    graph = {"hpctune.worker.session": {"hpctune.controller.controller", "hpctune.storage.events"},
             "hpctune.core.metrics": {"hpctune.errors"}}
    assert layer_violations(graph) == [("hpctune.worker.session", "hpctune.controller.controller")]


def test_the_worker_starts_without_numpy_pandas_or_the_driver():
    """What ``python -m hpctune.worker`` loads before it runs a trainable."""
    code = ("import sys, hpctune.worker.run; "
            "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('numpy', 'pandas') or m.startswith(('hpctune.controller', 'hpctune.backends.slurm', "
            "'hpctune.tune.tuner', 'hpctune.tune.schedulers', 'hpctune.tune.search')))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT).stdout.split()
    assert out == []


@pytest.mark.parametrize(("old", "new"), [
    ("hpctune.schedulers.async_hyperband", "hpctune.tune.schedulers.async_hyperband"),
    ("hpctune.search.basic_variant", "hpctune.tune.search.basic_variant"),
    ("hpctune.stoppers", "hpctune.tune.stopper"),
    ("hpctune.trial", "hpctune.tune.experiment.trial"),
    ("hpctune.session", "hpctune.worker.session"),
    ("hpctune.config_checks", "hpctune.core.checks"),
    ("hpctune.loggers.tbx", "hpctune.tune.logger.tbx"),
])
def test_a_module_path_of_0_1_imports_the_module_at_its_new_home(old, new):
    """Pickles of 0.1 name classes by these paths: the old name must give the same module
    object (one class, so isinstance holds), not a second copy."""
    import importlib
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert importlib.import_module(old) is importlib.import_module(new)


def test_a_queued_detached_driver_of_0_1_still_starts():
    """Its sbatch script runs ``python -m hpctune.cli_driver PLAN``: that reaches the driver."""
    proc = subprocess.run([sys.executable, "-m", "hpctune.cli_driver"], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 2 and "usage: python -m hpctune.cli.driver" in proc.stderr
