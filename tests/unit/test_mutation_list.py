"""The mutant list of scripts/mutation.py stays applicable: every snippet is found exactly once
in its file, each mutant changes one line, and the tests it names exist. (Running the
mutants themselves takes minutes: ``.venv/bin/python scripts/mutation.py``.)"""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter

import pytest

from tests.conftest import REPO_ROOT


def load_mutation_script():
    spec = importlib.util.spec_from_file_location("hpctune_mutation", REPO_ROOT / "scripts" / "mutation.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


MUTATION = load_mutation_script()
MUTANTS = MUTATION.MUTANTS


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.id for m in MUTANTS])
def test_snippet_found_exactly_once_and_one_line_changed(mutant):
    text = (REPO_ROOT / mutant.file).read_text()
    assert text.count(mutant.original) == 1, (
        f"{mutant.id}: {mutant.original!r} occurs {text.count(mutant.original)} times in "
        f"{mutant.file}; update scripts/mutation.py to the code as it is now")
    before, after = mutant.original.split("\n"), mutant.replacement.split("\n")
    assert len(before) == len(after), f"{mutant.id}: the replacement must keep the line count"
    changed = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert len(changed) == 1, f"{mutant.id}: a mutant changes exactly one line, not {len(changed)}"
    mutated = text.replace(mutant.original, mutant.replacement)
    compile(mutated, mutant.file, "exec")  # a mutant is a bug, not a syntax error


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.id for m in MUTANTS])
def test_named_tests_exist_and_need_no_lab(mutant):
    """Test files (or ``file::test`` of one test); only ``lab=True`` mutants name lab tests."""
    assert mutant.tests, f"{mutant.id} names no tests"
    for test in mutant.tests:
        file, _, name = test.partition("::")
        path = REPO_ROOT / file
        assert path.is_file(), f"{mutant.id}: {file} does not exist"
        assert not name or f"def {name}(" in path.read_text(), f"{mutant.id}: no {name} in {file}"
        roots = ("tests/unit/", "tests/e2e/", "tests/slurm/") if mutant.lab else ("tests/unit/", "tests/e2e/")
        assert test.startswith(roots), f"{mutant.id}: {test}"


def test_the_list_covers_the_decision_code():
    """Unique ids; at least 25 mutants; every module the campaign is about has some."""
    assert len(MUTANTS) >= 25
    assert not [i for i, n in Counter(m.id for m in MUTANTS).items() if n > 1]
    files = {m.file for m in MUTANTS}
    assert files >= {
        "hpctune/tune/schedulers/async_hyperband.py", "hpctune/tune/schedulers/median_stopping.py",
        "hpctune/tune/stopper.py", "hpctune/storage/checkpoints.py", "hpctune/controller/controller.py",
        "hpctune/controller/job_watch.py", "hpctune/controller/snapshot.py",
        "hpctune/storage/replay.py", "hpctune/core/metrics.py", "hpctune/backends/slurm_limits.py",
        "hpctune/space/resolve.py", "hpctune/tune/search/basic_variant.py", "hpctune/tune/tuner.py",
    }


def test_the_script_reports_a_missing_snippet():
    mutant = MUTATION.Mutant("x", "f.py", "a = 1", "a = 2", ("tests/unit/test_x.py",))
    assert MUTATION.snippet_problem("b = 1\n", mutant) == "NOT FOUND"
    assert MUTATION.snippet_problem("a = 1\na = 1\n", mutant) == "FOUND 2x"
    assert MUTATION.snippet_problem("a = 1\n", mutant) is None
