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
    claim = re.search(r"The (\d+) trials go to Slurm as one job array \(`(--array=\S+)`, `(--gres=\S+)`\)",
                      readme)
    assert claim, "the README states how its example is submitted"
    count, array, gres = claim.groups()
    assert f"#SBATCH {array}" in script and f"#SBATCH {gres}" in script
    assert array.startswith(f"--array=0-{int(count) - 1}%")
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
