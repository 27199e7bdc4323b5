"""The code in README.md and docs/ cannot go stale: every Python block parses, the complete
examples run (up to ``fit()``, captured with ``tuner_hooks``) and do what the text around them
says, and every ``hpctune`` command a shell block names exists."""

from __future__ import annotations

import ast
import contextlib
import re
import shlex
from pathlib import Path

import pytest

from hpctune.cli.main import build_parser
from hpctune.tune.tuner import tuner_hooks

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def blocks(language: str) -> list:
    found = []
    for doc in DOCS:
        for match in FENCE.finditer(doc.read_text()):
            if match.group(1) == language:
                line = doc.read_text()[: match.start()].count("\n") + 1
                found.append(pytest.param(match.group(2), id=f"{doc.name}:{line}"))
    return found


@pytest.mark.parametrize("code", blocks("python"))
def test_python_blocks_parse(code):
    ast.parse(code)


def captured_tuner(code: str, namespace: dict | None = None):
    """Run ``code`` until its Tuner's ``fit()``; return that Tuner (None: it never fits)."""
    seen = []

    class Captured(BaseException):
        pass

    def capture(tuner):
        seen.append(tuner)
        raise Captured

    with tuner_hooks(before_fit=capture), contextlib.suppress(Captured):
        exec(compile(code, "<doc>", "exec"), namespace or {})
    return seen[0] if seen else None


def test_readme_example_submits_what_the_readme_says(monkeypatch):
    monkeypatch.setattr("hpctune.tune.tuner.choose_backend", lambda requested: "slurm")
    readme = (ROOT / "README.md").read_text()
    code = next(m.group(2) for m in FENCE.finditer(readme) if m.group(1) == "python")
    tuner = captured_tuner(code)
    assert tuner is not None, "the README example must call fit()"
    script = tuner.preview_sbatch()
    claim = re.search(r"The (\d+) trials run through a worker pool: one Slurm array of (\d+) pool "
                      r"tasks \(`(--array=\S+)`,\s+`(--gres=\S+)`\).*?one array task per trial, "
                      r"`(--array=\S+)`\)", readme, re.S)
    assert claim, "the README states how its example is submitted"
    count, tasks, array, gres, per_trial = claim.groups()
    assert f"#SBATCH {array}" in script and f"#SBATCH {gres}" in script
    assert array.startswith(f"--array=0-{int(tasks) - 1}%") and "-m hpctune.pool" in script
    assert per_trial.startswith(f"--array=0-{int(count) - 1}%")
    tuner.tune_config.reuse_actors = False
    assert f"#SBATCH {per_trial}" in tuner.preview_sbatch()
    assert f"#SBATCH --partition={tuner.slurm_config.partition}" in script
    assert "module load cuda" in script


def test_cli_reporter_example_configures_the_columns_it_names():
    cli = (ROOT / "docs" / "cli.md").read_text()
    code = next(m.group(2) for m in FENCE.finditer(cli) if m.group(1) == "python" and "CLIReporter" in m.group(2))
    namespace = {"train": lambda config: None}
    exec(compile(code, "<docs/cli.md>", "exec"), namespace)
    reporter = namespace["reporter"]
    assert list(reporter._metric_columns) == ["loss", "acc", "val_loss"]
    assert reporter._parameter_columns == {"lr": "LR"}
    assert namespace["tuner"].run_config.progress_reporter is reporter


def hpctune_commands() -> list:
    found = []
    for param in blocks("bash") + blocks("sh") + blocks("console"):
        for line in param.values[0].splitlines():
            line = line.split("#", 1)[0].strip().removeprefix("$ ")
            if line.startswith("hpctune "):
                found.append(pytest.param(shlex.split(line)[1], id=f"{param.id}:{line[:40]}"))
    return found


@pytest.mark.parametrize("command", hpctune_commands())
def test_shell_blocks_name_real_commands(command):
    subcommands = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert command in subcommands or command.startswith("-")


def test_the_readme_names_files_that_exist():
    readme = (ROOT / "README.md").read_text()
    for path in re.findall(r"\((docs/[\w.-]+\.md|bench/[\w./-]*|examples/[\w./-]*)\)", readme):
        assert (ROOT / path).exists(), path
    for path in re.findall(r"`((?:examples|scripts)/[\w./-]+)`", readme):
        assert (ROOT / path).exists(), path


# -- the documentation site's own pages ------------------------------------------------------------
#: every page of the site (mkdocs.yml): every code block on them is run below, or marked
#: ``<!-- not runnable: REASON -->`` on the line before it
SITE_PAGES = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
NOT_RUNNABLE = re.compile(r"<!-- not runnable: (.+?) -->\n$")


def site_blocks() -> list:
    found = []
    for name in SITE_PAGES:
        text = (ROOT / "docs" / name).read_text()
        for match in FENCE.finditer(text):
            line = text[: match.start()].count("\n") + 1
            marked = NOT_RUNNABLE.search(text[: match.start()])
            found.append(pytest.param(match.group(1), match.group(2), marked and marked.group(1),
                                      id=f"{name}:{line}"))
    return found


@pytest.mark.parametrize(("language", "code", "not_runnable"), site_blocks())
def test_every_site_block_is_run_or_says_why_not(language, code, not_runnable, tmp_path, monkeypatch):
    """Python runs until its ``fit()``; a shell block's lines are hpctune commands the real parser
    accepts. Anything else must say why it cannot run here."""
    if not_runnable:
        assert len(not_runnable) > 10, "say why the block cannot run"
        return
    monkeypatch.chdir(tmp_path)
    if language == "python":
        assert captured_tuner(code) is not None, "a Python block on the site builds a Tuner and fits it"
    elif language in ("bash", "sh"):
        for line in filter(None, (raw.split("#", 1)[0].strip() for raw in code.splitlines())):
            words = shlex.split(line)
            while words and "=" in words[0] and not words[0].startswith("-"):  # VAR=value command
                words.pop(0)
            if words[:1] == ["python"]:
                continue  # `python first.py`: the Python block above it, run by this test
            assert words[:1] == ["hpctune"], f"not an hpctune command: {line}"
            build_parser().parse_args(words[1:])
    else:
        pytest.fail(f"a {language or 'plain'} block must be marked <!-- not runnable: why -->")


def _site_code(page: str, *needles: str) -> str:
    text = (ROOT / "docs" / page).read_text()
    return next(m.group(2) for m in FENCE.finditer(text)
                if m.group(1) == "python" and all(n in m.group(2) for n in needles))


def test_the_laptop_experiment_runs_to_the_end(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HPCTUNE_BACKEND", "local")
    code = _site_code("getting-started.md", 'name="first", storage_path="./hpctune_results"')
    exec(compile(code.replace("num_samples=4", "num_samples=2"), "<getting-started>", "exec"), {})
    out = capsys.readouterr().out
    assert re.search(r"best config: \{'lr': [\d.e-]+, 'width': (16|32|64)\} loss: [\d.e-]+", out), out
    assert (tmp_path / "hpctune_results" / "first" / "summary.json").exists()


def test_the_cluster_experiment_submits_what_the_page_says(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("hpctune.tune.tuner.choose_backend", lambda requested: "slurm")
    tuner = captured_tuner(_site_code("getting-started.md", "SlurmConfig"))
    script = tuner.preview_sbatch()
    page = (ROOT / "docs" / "getting-started.md").read_text()
    array, gres, cpus, partition = re.search(
        r"as `(--array=\S+)` with `(--gres=\S+)` and `(--cpus-per-task=\d+)`\s+on partition `(\w+)`", page).groups()
    for directive in (array, gres, cpus, f"--partition={partition}"):
        assert f"#SBATCH {directive}\n" in script, directive


def test_every_message_the_troubleshooting_page_quotes_is_one_hpctune_prints():
    """A quoted message (``> `text` ``) must occur in hpctune's code: a reworded error fails here."""
    page = (ROOT / "docs" / "troubleshooting.md").read_text()
    quotes = [q for line in page.splitlines() if line.startswith("> ") for q in re.findall(r"`([^`]+)`", line)]
    source = "\n".join(p.read_text() for p in (ROOT / "hpctune").rglob("*.py"))
    assert len(quotes) >= 15
    assert [q for q in quotes if q not in source] == []
