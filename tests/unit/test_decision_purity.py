"""Decision logic stays pure: schedulers, stoppers and searchers never reach Slurm, files or sleep.

Checked statically with ``ast`` so that a violation is caught even in code paths
no test executes. ARCHITECTURE.md: "schedulers/, stoppers: must not know about
Slurm, files, time.sleep"; search/: "Slurm, files (state via get_state/set_state)".
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "hpctune"

FORBIDDEN_MODULES = ("hpctune.backends", "hpctune.storage", "hpctune.controller", "hpctune.tune.tuner",
                     "hpctune.worker", "subprocess", "submitit")
#: searchers keep state through get_state/set_state; only these methods may open files
FILE_METHODS = {"save", "restore"}
#: the storage modules search/ may import: ``Searcher.save``/``restore`` write and load their
#: pickle with the one atomic write and the one safe pickle load (owner, mode, no symlink),
#: rather than a second copy of that security code; nothing else of storage/ (paths, logs)
SEARCH_MAY_IMPORT = ("hpctune.storage.atomic", "hpctune.storage.secure")
CLOCK_CALLS = {"time", "monotonic", "perf_counter", "time_ns", "monotonic_ns", "now", "utcnow"}
GLOBAL_RNG_OK = {"default_rng", "Generator", "SeedSequence", "PCG64", "BitGenerator"}


def _absolute(node: ast.ImportFrom, module_name: str) -> str:
    """The absolute module of ``from ... import`` (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    package = module_name.split(".")[: -node.level]
    return ".".join(package + ([node.module] if node.module else []))


def _imported_modules(tree: ast.AST, module_name: str):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module_name)
            yield node.lineno, base
            for alias in node.names:  # from hpctune import backends
                yield node.lineno, f"{base}.{alias.name}"


def _is_within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == name or module.startswith(name + ".") for name in packages)


def _is_forbidden(module: str, strict: bool) -> bool:
    return _is_within(module, FORBIDDEN_MODULES) and (strict or not _is_within(module, SEARCH_MAY_IMPORT))


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def _file_opens(tree: ast.AST) -> list[str]:
    """``open(...)`` calls outside the methods allowed to touch files (``save``/``restore``)."""
    allowed = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name in FILE_METHODS:
            allowed.update(id(n) for n in ast.walk(node))
    return [f"line {n.lineno}: opens a file outside save/restore" for n in ast.walk(tree)
            if isinstance(n, ast.Call) and _dotted(n.func) in ("open", "io.open", "os.open")
            and id(n) not in allowed]


def violations(source: str, module_name: str, strict: bool) -> list[str]:
    """Impure constructs in ``source``; ``strict`` adds clocks, the global RNG and any ``open``."""
    tree = ast.parse(source)
    found = [] if strict else _file_opens(tree)
    for lineno, module in _imported_modules(tree, module_name):
        if _is_forbidden(module, strict) or module == "time.sleep":
            found.append(f"line {lineno}: imports {module}")
        if strict and module in ("random", "time.time", "time.monotonic"):
            found.append(f"line {lineno}: imports {module}")
    for node in ast.walk(tree):
        name = _dotted(node) if isinstance(node, ast.Attribute) else ""
        if name.endswith("time.sleep"):
            found.append(f"line {node.lineno}: uses {name}")
        if not strict or not isinstance(node, ast.Call):
            continue
        called = _dotted(node.func)
        head, _, last = called.rpartition(".")
        if head in ("time", "datetime", "datetime.datetime") and last in CLOCK_CALLS:
            found.append(f"line {node.lineno}: reads the clock with {called}() (inject a clock)")
        if head.endswith(("np.random", "numpy.random")) and last not in GLOBAL_RNG_OK:
            found.append(f"line {node.lineno}: global RNG {called}() (inject a Generator)")
        if called == "open":
            found.append(f"line {node.lineno}: opens a file")
    return found


def _modules(relative: str):
    path = PACKAGE / relative
    files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
    for file in files:
        # "pkg.__init__" keeps relative imports resolving against "pkg"
        yield file, ".".join(file.relative_to(ROOT).with_suffix("").parts)


def _targets(strict: bool):
    relatives = ["tune/schedulers", "tune/stopper.py"] if strict else ["tune/search"]
    targets = []
    for relative in relatives:
        if not (PACKAGE / relative).exists():
            continue  # a package that does not exist yet has nothing to check
        targets += [pytest.param(f, n, id=n) for f, n in _modules(relative)]
    return targets


@pytest.mark.parametrize(("path", "module_name"), _targets(strict=True))
def test_schedulers_and_stoppers_are_pure(path, module_name):
    assert violations(path.read_text(), module_name, strict=True) == []


@pytest.mark.parametrize(("path", "module_name"), _targets(strict=False))
def test_searchers_are_pure(path, module_name):
    assert violations(path.read_text(), module_name, strict=False) == []


def test_the_packages_checked_exist():
    assert (PACKAGE / "tune" / "schedulers" / "async_hyperband.py").is_file()
    assert (PACKAGE / "tune" / "stopper.py").is_file()
    assert (PACKAGE / "tune" / "search").is_dir()
    checked = {p.values[1] for p in _targets(strict=True) + _targets(strict=False)}
    assert {"hpctune.tune.schedulers.async_hyperband", "hpctune.tune.schedulers.median_stopping",
            "hpctune.tune.stopper", "hpctune.tune.search.basic_variant", "hpctune.tune.search.optuna"} <= checked


@pytest.mark.parametrize(
    "bad",
    [
        "import subprocess",
        "from subprocess import run",
        "import submitit.helpers",
        "from hpctune.backends.slurm import SlurmBackend",
        "from hpctune import storage",
        "from ...backends import local",
        "from ....hpctune.storage import x",
        "from hpctune.controller import Controller",
        "import hpctune.worker",
        "import time\ntime.sleep(1)",
        "from time import sleep",
        "import time\nstart = time.time()",
        "import time\nnow = time.monotonic()",
        "import datetime\nnow = datetime.datetime.now()",
        "import numpy as np\nx = np.random.rand()",
        "import random",
        "data = open('results.json').read()",
    ],
)
def test_the_checker_catches_impurity(bad):
    assert violations(bad, "hpctune.tune.schedulers.pbt", strict=True)


@pytest.mark.parametrize(
    "fine",
    [
        "import time\ndef f(clock=time.monotonic):\n    return clock()",
        "import numpy as np\nrng = np.random.default_rng(0)\nrng.random()",
        "from hpctune.tune.schedulers.trial_scheduler import Decision",
        "from .trial_scheduler import Decision",
        "from hpctune.storage_utils import x",  # a prefix is not the package
    ],
)
def test_the_checker_allows_pure_code(fine):
    assert violations(fine, "hpctune.tune.schedulers.pbt", strict=True) == []


@pytest.mark.parametrize(
    ("source", "bad"),
    [
        ("def suggest(self):\n    return open('x').read()", True),
        ("import os\ndef f():\n    os.open('x', 0)", True),
        ("def save(self, path):\n    with open(path, 'wb') as f:\n        f.write(b'')", False),
        ("def restore(self, path):\n    return open(path, 'rb').read()", False),
    ],
)
def test_searchers_open_files_only_to_save_and_restore(source, bad):
    assert bool(violations(source, "hpctune.tune.search.x", strict=False)) is bad


def test_searchers_may_import_only_the_atomic_write_and_the_safe_pickle_load():
    assert not violations("from hpctune.storage.atomic import write_bytes_atomic", "hpctune.tune.search.x", False)
    assert not violations("from hpctune.storage.secure import load_private_pickle", "hpctune.tune.search.x", False)
    assert violations("from hpctune.storage.experiment import ExperimentDir", "hpctune.tune.search.x", False)
    assert violations("from hpctune.storage import secure", "hpctune.tune.search.x", False)
    assert violations("from hpctune.storage.secure import x", "hpctune.tune.schedulers.pbt", strict=True)


def test_relative_imports_in_a_package_init_resolve_against_the_package():
    assert violations("from .backends import x", "hpctune.__init__", strict=False)
    assert violations("from .slurm import x", "hpctune.backends.__init__", strict=False)
    assert not violations("from .registry import x", "hpctune.tune.schedulers.__init__", strict=False)
