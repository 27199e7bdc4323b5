"""MkDocs hooks of the documentation site (mkdocs.yml ``hooks:``).

* **Generated pages**: the API reference (``reference.py``, from the package's tables of public
  names) and the CLI reference (``cli_reference.py``, from the argument parser), added to the
  nav under "Reference".
* **Includes**: a line ``<!-- include: PATH "Heading" -->`` (PATH from the repository root) is
  replaced by that section of the file, without its heading. A section of a page under docs/
  that another page includes is shown there only: its own page says where it went. So a table
  stays in one file (and its tests) and appears once on the site.
* **Repository files**: a link from a page to a file outside docs/ (``../examples/torch_ddp.py``)
  points at a generated page showing that file; a link to a file that does not exist is left
  alone, so the strict build reports it.
"""

from __future__ import annotations

import posixpath
import re
import sys
from pathlib import Path

from mkdocs.structure.files import File, Files

sys.path.insert(0, str(Path(__file__).parent))

import cli_reference  # noqa: E402
import reference  # noqa: E402

DOCS = Path(__file__).resolve().parents[1]
ROOT = DOCS.parent
INCLUDE = re.compile(r'^<!-- include: (\S+) "([^"]+)" -->$', re.M)
LINK = re.compile(r"\]\((?!https?:|mailto:|#)([^)\s#]+)(#[^)\s]*)?\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
REPO_PAGES = "repo"
LANGUAGES = {".py": "python", ".toml": "toml", ".sh": "bash", ".yml": "yaml", ".yaml": "yaml"}


def section(path: Path, heading: str) -> str:
    """The body of ``heading``'s section in ``path``: up to the next heading of its level or above."""
    text = path.read_text()
    match = re.search(rf"^(#+) {re.escape(heading)}\s*$", text, re.M)
    if not match:
        raise ValueError(f"{path} has no heading {heading!r}")
    level = len(match.group(1))
    rest = text[match.end():]
    end = re.search(rf"^#{{1,{level}}} ", _blank_fences(rest), re.M)
    return rest[: end.start() if end else len(rest)].strip("\n")


def _blank_fences(text: str) -> str:
    """``text`` with fenced code replaced by spaces of the same length (a ``# comment`` in a
    shell block is not a heading)."""
    return FENCE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


def includes() -> dict[tuple[str, str], str]:
    """(file, heading) -> the page that includes it, over every page under docs/."""
    found = {}
    for page in DOCS.rglob("*.md"):
        for path, heading in INCLUDE.findall(page.read_text()):
            found[(path, heading)] = page.relative_to(DOCS).as_posix()
    return found


def _repo_target(link: str, source_dir: Path) -> Path | None:
    """The repository file a relative link from ``source_dir`` names, when it is outside docs/."""
    target = (source_dir / link).resolve()
    inside_docs = target == DOCS or DOCS in target.parents
    return target if not inside_docs and ROOT in target.parents and target.is_file() else None


def _repo_page_uri(target: Path) -> str:
    return f"{REPO_PAGES}/{target.relative_to(ROOT).as_posix()}.md"


def relink(text: str, source_dir: Path, page_uri: str) -> str:
    """Rewrite the relative links of ``text`` (written in ``source_dir``) for the page ``page_uri``."""
    page_dir = posixpath.dirname(page_uri)

    def fix(match: re.Match) -> str:
        link, anchor = match.group(1), match.group(2) or ""
        target = (source_dir / link).resolve()
        repo_file = _repo_target(link, source_dir)
        if repo_file is not None:
            uri = _repo_page_uri(repo_file)
        elif DOCS in target.parents:
            uri = target.relative_to(DOCS).as_posix()
        else:
            return match.group(0)
        return f"]({posixpath.relpath(uri, page_dir or '.')}{anchor})"

    return LINK.sub(fix, text)


def _repo_page(target: Path) -> str:
    name = target.relative_to(ROOT).as_posix()
    if target.suffix == ".md":
        return relink(target.read_text(), target.parent, _repo_page_uri(target))
    language = LANGUAGES.get(target.suffix, "text")
    return (f"# {name}\n\nThe file `{name}` of the repository, as this site was built.\n\n"
            f"<!-- not runnable: shown as it is in the repository, where its own tests run it -->\n"
            f"```{language}\n{target.read_text().rstrip()}\n```\n")


# -- the hooks ---------------------------------------------------------------------------------
def on_config(config):
    """Put the generated reference pages in the nav, after the reference's index."""
    uris = [p.uri for p in reference.pages()[1:]]
    for item in config["nav"]:
        if isinstance(item, dict) and "Reference" in item:
            entries = item["Reference"]
            at = entries.index(f"{reference.REFERENCE}/index.md") + 1
            entries[at:at] = uris
    return config


def on_files(files: Files, config) -> Files:
    for page in reference.pages():
        files.append(File.generated(config, page.uri, content=page.markdown))
    files.append(File.generated(config, cli_reference.URI, content=cli_reference.markdown()))
    targets = set()
    for page in DOCS.rglob("*.md"):
        for match in LINK.finditer(page.read_text()):
            target = _repo_target(match.group(1), page.parent)
            if target is not None:
                targets.add(target)
    for target in sorted(targets):
        files.append(File.generated(config, _repo_page_uri(target), content=_repo_page(target)))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    uri = page.file.src_uri
    source = DOCS / uri

    def include(match: re.Match) -> str:
        path = ROOT / match.group(1)
        return relink(section(path, match.group(2)), path.parent, uri)

    markdown = INCLUDE.sub(include, markdown)
    for (path, heading), where in includes().items():
        if (ROOT / path).resolve() == source.resolve():
            body = section(source, heading)
            note = f"Moved to its own page: [{heading}]({posixpath.relpath(where, posixpath.dirname(uri) or '.')})."
            markdown = markdown.replace(body, note, 1)
    if source.is_file():
        markdown = relink(markdown, source.parent, uri)
    return markdown
