"""``hpctune trials --filter/--sort``: each operator at its boundary, and trials without the
sorted value last in either direction (rows written out, not derived from the operators table)."""

from __future__ import annotations

import pytest

from hpctune.cli.trials import select

ROWS = [{"trial_id": "a", "loss": 0.5}, {"trial_id": "b", "loss": 0.2}, {"trial_id": "c", "loss": None},
        {"trial_id": "d", "loss": 0.9}, {"trial_id": "e"}]


def ids(rows: list[dict]) -> list[str]:
    return [r["trial_id"] for r in rows]


@pytest.mark.parametrize(("text", "kept"), [
    ("loss <= 0.5", ["a", "b"]), ("loss < 0.5", ["b"]), ("loss >= 0.5", ["a", "d"]), ("loss > 0.5", ["d"]),
    ("loss == 0.5", ["a"]), ("loss != 0.5", ["b", "c", "d", "e"]), ("loss<=0.2", ["b"]),
    ("trial_id == c", ["c"]), ("trial_id <= b", ["a", "b"])])
def test_each_filter_operator_at_its_boundary(text, kept):
    assert ids(select(ROWS, [text], None, False)) == kept


def test_filters_all_hold():
    assert ids(select(ROWS, ["loss >= 0.2", "loss <= 0.5"], None, False)) == ["a", "b"]


@pytest.mark.parametrize(("desc", "order"), [(False, ["b", "a", "d", "c", "e"]), (True, ["d", "a", "b", "c", "e"])])
def test_trials_without_the_value_sort_last_either_way(desc, order):
    assert ids(select(ROWS, [], "loss", desc)) == order


def test_a_second_sort_key_breaks_ties_and_missing_values_still_go_last():
    rows = [{"trial_id": "x", "g": 1, "loss": 0.3}, {"trial_id": "y", "g": 0}, {"trial_id": "z", "g": 1, "loss": 0.1},
            {"trial_id": "w", "loss": 0.0}]
    assert ids(select(rows, [], "g,loss", False)) == ["y", "z", "x", "w"]
