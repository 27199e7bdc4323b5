"""The controller is split by responsibility: its parts get the state they need, never the
``Controller`` (checked with ``ast``), and the loop's queries change nothing."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from hpctune.backends.base import Backend

PACKAGE = Path(__file__).resolve().parents[2] / "hpctune" / "controller"
#: bridge.py is Ray's ``tune_controller`` view, handed to Ray-style schedulers: a view of the
#: whole run by design (read-only; ``RunView``)
PARTS = sorted(p for p in PACKAGE.glob("*.py") if p.name not in ("controller.py", "__init__.py", "bridge.py"))


def names_of_controller(source: str) -> list[str]:
    """Where ``source`` imports or names the ``Controller`` class (``ControllerSettings`` is fine)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and any(a.name == "Controller" for a in node.names):
            found.append(f"line {node.lineno}: imports Controller")
        elif isinstance(node, ast.Name) and node.id == "Controller":
            found.append(f"line {node.lineno}: names Controller")
        elif isinstance(node, ast.Constant) and node.value == "Controller":
            found.append(f"line {node.lineno}: annotates with 'Controller'")
    return found


def test_the_check_finds_a_part_that_takes_the_controller():
    source = ("from hpctune.controller.controller import Controller, ControllerSettings\n"
              "def f(ctl: Controller, settings: ControllerSettings): ...\n")
    assert names_of_controller(source) == ["line 1: imports Controller", "line 2: names Controller"]


@pytest.mark.parametrize("path", PARTS, ids=lambda p: p.name)
def test_no_part_of_the_loop_takes_the_whole_controller(path):
    found = names_of_controller(path.read_text())
    assert not found, f"controller/{path.name} reaches for the Controller; pass it what it needs:\n" + \
        "\n".join(found)


def test_poll_ready_is_part_of_the_backend_protocol():
    """The job watch asks every backend before a poll (no getattr for an optional method)."""
    assert "poll_ready" in Backend.__dict__
