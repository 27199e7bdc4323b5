"""The API reference pages, generated from the package's own tables of public names.

``hpctune`` and ``hpctune.tune`` load their names lazily (``_EXPORTS`` in ``hpctune/__init__.py``),
so mkdocstrings cannot find them by walking the package: each name is imported here and
documented at its real home (``hpctune.tune.tuner.Tuner``). Names come from ``_EXPORTS``, the
``__all__`` of ``hpctune.train`` and of the ``hpctune.tune`` subpackages Ray has (schedulers,
search, stopper, logger, experiment, result): a name added there appears here without an edit.
Each object is documented once; every other place that exports it links to it.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from types import ModuleType

import hpctune

#: the subpackages of ``hpctune.tune`` that get a page of their own (their ``__all__``), with the
#: modules Ray imports by path below them (``ray.tune.search.optuna.OptunaSearch``)
SUBPACKAGES: dict[str, tuple[str, ...]] = {
    "hpctune.tune.schedulers": (),
    "hpctune.tune.search": ("hpctune.tune.search.optuna",),
    "hpctune.tune.stopper": (),
    "hpctune.tune.logger": (),
    "hpctune.tune.experiment": (),
    "hpctune.tune.result": (),
    "hpctune.tune.utils": (),
}
#: the ``hpctune`` submodules that are other names of a subpackage above
SUBMODULE_ALIASES = {"stoppers": "stopper", "loggers": "logger"}
REFERENCE = "reference"
#: where the index points for the public names that are modules without a page of their own
MODULE_TARGETS = {"hpctune.train": "#hpctune.train", "hpctune.tune": "#hpctune.tune",
                  "hpctune.space": "hpctune.space.domains.uniform"}


@dataclass(frozen=True)
class Entry:
    """One public name: where it is exported, the object's real path, and its docstring."""

    name: str
    exported_from: str
    path: str  # the identifier mkdocstrings and autorefs know the object by
    documented: bool

    @property
    def alias(self) -> bool:
        """Exported under another name than its own (``ASHAScheduler`` is ``AsyncHyperBandScheduler``)."""
        return self.path.rsplit(".", 1)[1] != self.name


def _entry(name: str, module: ModuleType, exported_from: str) -> Entry:
    obj = getattr(module, name)
    if inspect.ismodule(obj):
        return Entry(name, exported_from, obj.__name__, bool(inspect.getdoc(obj)))
    if inspect.isclass(obj) or inspect.isroutine(obj):
        doc = obj.__doc__ and obj.__doc__.strip()
        return Entry(name, exported_from, f"{obj.__module__}.{obj.__qualname__}", bool(doc))
    # a constant: documented where it is defined (the module exporting it), by its comment
    return Entry(name, exported_from, f"{module.__name__}.{name}", True)


def _names(module: ModuleType) -> list[str]:
    return [n for n in getattr(module, "__all__", []) if not n.startswith("_")]


def subpackage_entries(package: str) -> list[Entry]:
    """The public names of one ``hpctune.tune`` subpackage (and the modules Ray imports under it)."""
    found = []
    for name in (package, *SUBPACKAGES[package]):
        module = importlib.import_module(name)
        found += [_entry(n, module, name) for n in _names(module)]
    return found


def top_level_entries() -> list[Entry]:
    """The names of ``hpctune._EXPORTS`` (``import hpctune as tune``)."""
    return [_entry(name, hpctune, "hpctune") for name in hpctune._EXPORTS]


@dataclass(frozen=True)
class Page:
    """A generated page: its path under docs/ and its Markdown."""

    uri: str
    title: str
    markdown: str


def page_uri(home: str) -> str:
    return f"{REFERENCE}/{home}.md"


def _object_block(entry: Entry) -> str:
    if entry.alias:
        return (f"## {entry.name}\n\n`{entry.exported_from}.{entry.name}` is another name for "
                f"[`{entry.path.rsplit('.', 1)[1]}`][{entry.path}].\n")
    return f"::: {entry.path}\n"


def _page(uri: str, title: str, intro: str, entries: list[Entry]) -> Page:
    own = [e for e in entries if not e.alias]
    aliases = [e for e in entries if e.alias]
    body = "\n".join(_object_block(e) for e in [*own, *aliases])
    return Page(uri, title, f"# {title}\n\n{intro}\n\n{body}")


def documented_entries() -> dict[str, Entry]:
    """Every documented object by path: first the subpackages, then the rest of ``_EXPORTS``."""
    seen: dict[str, Entry] = {}
    for package in SUBPACKAGES:
        for entry in subpackage_entries(package):
            seen.setdefault(entry.path, entry)
    for entry in top_level_entries():
        seen.setdefault(entry.path, entry)
    return seen


def pages() -> list[Page]:
    """Every page of the reference: one per subpackage, one per home module of the other names,
    and the index, which lists each public name of ``hpctune``, ``hpctune.tune`` and ``hpctune.train``."""
    out: list[Page] = []
    placed: dict[str, str] = {}  # object path -> page uri
    for package in SUBPACKAGES:
        entries = [e for e in subpackage_entries(package) if e.path not in placed]
        uri = page_uri(package)
        for e in entries:
            placed.setdefault(e.path, uri)
        doc = inspect.getdoc(importlib.import_module(package)) or ""
        out.append(_page(uri, f"{package}", doc.split("\n\n")[0], entries))
    by_home: dict[str, list[Entry]] = {}
    for entry in top_level_entries():
        if entry.path not in placed:
            by_home.setdefault(entry.path.rsplit(".", 1)[0], []).append(entry)
    for home, entries in sorted(by_home.items()):
        uri = page_uri(home)
        for e in entries:
            placed.setdefault(e.path, uri)
        intro = (f"Exported as `hpctune.X` and `hpctune.tune.X` for each name below; defined in "
                 f"`{home}`.")
        out.append(_page(uri, home, intro, entries))
    out.insert(0, index_page(placed))
    return out


def _link(entry: Entry, placed: dict[str, str]) -> str:
    """Where the index points for ``entry``: the object's anchor, a module's page or section."""
    target = MODULE_TARGETS.get(entry.path, entry.path)
    if target.startswith("#"):
        return target
    uri = placed[target].removeprefix(REFERENCE + "/")
    return uri if target in SUBPACKAGES or target != entry.path else f"{uri}#{target}"


def _index_table(entries: list[Entry], placed: dict[str, str]) -> str:
    rows = ["| name | documented at | docstring |", "| --- | --- | --- |"]
    for e in sorted(entries, key=lambda e: e.name.lower()):
        where = f"[`{e.path}`]({_link(e, placed)})"
        rows.append(f"| `{e.name}` | {where} | {'yes' if e.documented else '**missing**'} |")
    return "\n".join(rows)


def public_names() -> dict[str, list[Entry]]:
    """The public names of the three packages a Ray Tune script imports, each with its object."""
    train = importlib.import_module("hpctune.train")
    tune = importlib.import_module("hpctune.tune")
    top = top_level_entries()
    by_name = {e.name: e for e in top}
    modules = {**{k: f"hpctune.tune.{v}" for k, v in SUBMODULE_ALIASES.items()},
               **{s.rsplit(".", 1)[1]: s for s in SUBPACKAGES}}
    modules.update(train="hpctune.train", tune="hpctune.tune", space="hpctune.space")
    submodules = [Entry(name, "hpctune", modules[name], True) for name in hpctune._SUBMODULES]
    return {
        "hpctune": top + submodules,
        "hpctune.tune": [by_name[n] for n in tune.__all__ if n in by_name]
        + [Entry(n, "hpctune.tune", f"hpctune.tune.{n}", True) for n in tune._SUBPACKAGES],
        "hpctune.train": [by_name[n] for n in train.__all__],
    }


def coverage() -> tuple[int, int]:
    """(objects with a docstring, objects) over every documented object."""
    entries = list(documented_entries().values())
    return sum(e.documented for e in entries), len(entries)


def index_page(placed: dict[str, str]) -> Page:
    for package in SUBPACKAGES:
        placed.setdefault(package, page_uri(package))
    documented, total = coverage()
    parts = [
        "# API reference\n",
        "Generated from the docstrings at every build: each public name of `hpctune`, "
        "`hpctune.tune` and `hpctune.train`, documented where it is defined. "
        "[Every option](../api.md) explains them with examples; this is the reference.\n",
        f"**{documented} of {total} objects have a docstring** "
        f"({100 * documented / total:.0f}%).\n",
    ]
    for package, entries in public_names().items():
        parts += [f"## `{package}` {{#{package}}}\n", _index_table(entries, placed), ""]
    return Page(f"{REFERENCE}/index.md", "API reference", "\n".join(parts))
