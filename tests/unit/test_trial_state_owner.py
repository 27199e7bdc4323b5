"""Only the state machine moves a trial: no module but ``hpctune/tune/experiment/trial_lifecycle.py`` writes the
fields that say where a trial is (checked with ``ast``, so a write in a path no test runs is
caught too). Everything else calls the named operations of ``TrialLifecycle``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "hpctune"
OWNER = PACKAGE / "trial_lifecycle.py"
#: where a trial is (``Trial``'s fields that only ``TrialLifecycle`` writes)
FIELDS = frozenset({"status", "job_state", "job_id", "awaiting_restart", "stop_requested_at",
                    "pending_resources", "cancelled_jobs"})
MUTATORS = frozenset({"append", "extend", "insert", "remove", "pop", "clear", "update", "setdefault"})


def _targets(node: ast.AST):
    if isinstance(node, (ast.Tuple, ast.List)):
        for element in node.elts:
            yield from _targets(element)
    elif isinstance(node, ast.Starred):
        yield from _targets(node.value)
    else:
        yield node


def _foreign(node: ast.AST) -> bool:
    """``x.status`` for anything but a class's own ``self.status`` (``Result.status`` is its own)."""
    return (isinstance(node, ast.Attribute) and node.attr in FIELDS
            and not (isinstance(node.value, ast.Name) and node.value.id == "self"))


def writes(source: str) -> list[str]:
    """Each write of a trial's location fields in ``source``: ``line N: <code>``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign):
            targets = [t for target in node.targets for t in _targets(target)]
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = list(_targets(node.target)) if not isinstance(node, ast.Delete) else node.targets
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            mutated = node.func.attr in MUTATORS and _foreign(node.func.value)
            targets = [node.func.value] if mutated else []
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr":
            name = node.args[1] if len(node.args) > 1 else None
            targets = [node] if isinstance(name, ast.Constant) and name.value in FIELDS else []
        else:
            continue
        if any(_foreign(t) or t is node for t in targets):
            found.append(f"line {node.lineno}: {ast.unparse(node).splitlines()[0]}")
    return found


def test_the_check_finds_every_kind_of_write():
    source = """
trial.status = TrialStatus.RUNNING
trial.job_id, trial.job_state = None, ""
self.trial.awaiting_restart = True
trial.stop_requested_at += 1
trial.cancelled_jobs.append("7_0")
setattr(trial, "pending_resources", None)
self.status = "fine: a class's own field"
trial.job_reason = "fine: not where the trial is"
print(trial.status)
"""
    assert [w.split(":")[0] for w in writes(source)] == [f"line {n}" for n in (2, 3, 4, 5, 6, 7)]


@pytest.mark.parametrize("path", sorted(p for p in PACKAGE.rglob("*.py") if p != OWNER),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_state_machine_writes_where_a_trial_is(path):
    found = writes(path.read_text())
    assert not found, (f"{path.relative_to(ROOT)} changes a trial's state directly; call an operation "
                       "of TrialLifecycle (hpctune/tune/experiment/trial_lifecycle.py) instead:\n" + "\n".join(found))
