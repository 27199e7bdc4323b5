"""The row view's columns in compact form (``storage.trial_rows_columns``, issue 23: the
driver's memory at 100,000 trials): whatever a column is given, row by row or put over, it
gives back the same values and writes the same line as the list of those values did; and the
view a compaction streams is the one built from every record at once."""

from __future__ import annotations

import json
import math
import random

import pytest

from hpctune.storage.journal_writer import JournalWriter, merge_base
from hpctune.storage.trial_rows import FIELDS, KEYS, LENGTH, OFFSET, _extras, _last_line
from hpctune.storage.trial_rows_codec import MISSING, _decode, _encode
from hpctune.storage.trial_rows_columns import MAX_CODES, Column
from hpctune.storage.trial_rows_read import read_rows
from tests.unit.test_trial_rows import RUN, exp, make_trial, record  # noqa: F401 (fixture)


def same(a: list, b: list) -> bool:
    """Equal values of the same types (NaN equal to NaN, -0.0 apart from 0.0)."""
    return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))


def _same(x, y) -> bool:
    if type(x) is not type(y):
        return False
    if type(x) is float:
        return (math.isnan(x) and math.isnan(y)) or (
            x == y and math.copysign(1, x) == math.copysign(1, y)
        )
    return x is y or x == y


def check(values: list, column: Column) -> None:
    assert same(column.values(), values), column.mode
    assert column.encode() == _encode(list(values)), column.mode


def build(values: list) -> Column:
    column = Column()
    for value in values:
        column.append(value)
    return column


KINDS = {
    "floats": lambda r, i: r.choice([r.random(), -0.0, float("nan"), float("inf"), 1e300]),
    "ints": lambda r, i: r.choice([r.randrange(-5, 5), 2**62, -(2**63)]),
    "huge ints": lambda r, i: r.choice([r.randrange(5), 2**70]),
    "few texts": lambda r, i: r.choice(["a", "b", "é\x1b", "\ud800"]),
    "many texts": lambda r, i: f"trial_{i:05d}" if i % 7 else "\ud800x",
    "bools": lambda r, i: r.choice([True, False]),
    "dicts": lambda r, i: r.choice([{"cpu": 1}, {"cpu": True}, {"cpu": 1.0}, {}]),
    "many dicts": lambda r, i: {"cpu": i},
    "tuples": lambda r, i: r.choice([("a", "b"), ("b", "a"), ()]),
    "lists": lambda r, i: [i % 3, "x"],
    "mixed": lambda r, i: r.choice([1, 1.0, True, "1", None, [1], {"a": 1}]),
    "many mixed": lambda r, i: r.choice([i, float(i), str(i)]),
}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("gaps", ["none", "missing", "none and missing", "leading missing"])
def test_a_column_gives_back_what_it_was_given(kind, gaps):
    rng = random.Random(f"{kind} {gaps}")
    count = 3 * MAX_CODES
    values = [KINDS[kind](rng, i) for i in range(count)]
    for i in range(count):
        if gaps == "missing" and rng.random() < 0.2:
            values[i] = MISSING
        elif gaps == "none and missing" and rng.random() < 0.3:
            values[i] = rng.choice([MISSING, None])
        elif gaps == "leading missing" and i < count // 2:
            values[i] = MISSING
    check(values, build(values))
    check(values, Column.of(values))
    # put over: rows replaced by values of other kinds, and by gaps
    for made in (build, Column.of):
        column, now = made(values), list(values)
        for _ in range(40):
            row = rng.randrange(count + 3)
            value = rng.choice(
                [MISSING, None, KINDS[kind](rng, row), KINDS[rng.choice(list(KINDS))](rng, row)]
            )
            column.put(row, value)
            if row >= len(now):
                now += [MISSING] * (row - len(now)) + [value]
            else:
                now[row] = value
        check(now, column)


def test_a_column_is_compact_for_what_the_view_holds():
    count = 5000
    assert build([float(i) for i in range(count)]).mode == "d"
    assert build([i if i % 3 else MISSING for i in range(count)]).mode == "q"
    assert build([f"trial_{i}" if i % 5 else None for i in range(count)]).mode == "s"
    assert build(["TERMINATED", "RUNNING"] * count).mode == "c"
    assert build([("config/lr", "result:loss")] * count).mode == "c"
    assert build([MISSING] * 10 + [{"cpu": 1}] * count).mode == "c"
    assert build([float(i) for i in range(count)] + ["x"]).mode == "o"  # as a list, as before


def records(exp, count: int, seed: int) -> list[dict]:  # noqa: F811
    rng = random.Random(seed)
    return [record(make_trial(exp, i, rng)) for i in range(count)]


def test_the_streamed_view_is_the_view_of_every_record_at_once(exp):  # noqa: F811
    rows = records(exp, 700, 3)  # past MAX_CODES distinct ids, paths and tags
    rows[5]["last_result"]["late"] = 2**70  # an int past int64: that column is a list
    writer = JournalWriter(exp)
    writer.compact(1, iter(rows), RUN)
    head, *lines = (exp.root / "state.rows").read_bytes().split(b"\n")[:-1]
    head = json.loads(head)
    columns = dict(zip(head["columns"], lines, strict=True))
    assert head["count"] == len(rows) and head["columns"][-3:] == [KEYS, OFFSET, LENGTH]
    base = exp.state_path.read_bytes()
    offsets, lengths = _decode(columns[OFFSET]), _decode(columns[LENGTH])
    for i, row in enumerate(rows):  # each row's place: its own line of the base
        assert json.loads(base[offsets[i] : offsets[i] + lengths[i]])["trial_id"] == row["trial_id"]
    expected = {name: [r.get(name, default) for r in rows] for name, default in FIELDS.items()}
    expected["error"] = [_last_line(e) if e else e for e in expected["error"]]
    extras = [dict(_extras(r)) for r in rows]
    for name in {n for e in extras for n in e}:
        expected[name] = [e.get(name, MISSING) for e in extras]
    expected[KEYS] = [tuple(e) for e in extras]
    assert set(columns) == {*expected, OFFSET, LENGTH}
    for name, values in expected.items():
        assert columns[name] == _encode(values), name


@pytest.mark.parametrize("number", [2.5, 7])
def test_a_number_put_over_by_a_gap_is_written_as_the_list_writes_it(number):
    values = [number] * 10
    column = build(values)
    assert column.mode in ("d", "q")
    column.put(3, MISSING)
    values[3] = MISSING
    check(values, column)  # the gap's place in the binary line holds 0, as ``_encode`` writes it
    for row in range(10):  # no number left: written as the list of gaps is
        column.put(row, MISSING)
    check([MISSING] * 10, column)


def test_a_merged_row_keeps_none_of_the_columns_its_new_record_lacks(exp):  # noqa: F811
    rows = records(exp, 30, 4)
    writer = JournalWriter(exp)
    writer.compact(1, iter(rows), RUN)
    changed = {**rows[3], "last_result": {"loss": -5.0}, "config": {"lr": 0.1}}
    writer.append(2, [changed], RUN)
    merge_base(exp, writer.generation, 2, "g2")
    view = read_rows(exp)
    assert view is not None and view.count == 30 and not view.lines
    assert view.column("result:acc")[3] is MISSING and view.column("config/opt/name")[3] is MISSING
    assert view.column("result:loss")[3] == -5.0
    assert view.column(KEYS)[3] == ("config/lr", "result:loss")
    assert view.column("result:acc")[2] is not MISSING  # the others as they were


def test_texts_put_again_stay_in_the_buffer_and_many_new_ones_make_a_new_buffer():
    values = [f"/exp/trials/trial_{i:05d}" for i in range(1000)]
    column = build(values)
    assert column.mode == "s"
    for row, value in enumerate(values):
        column.put(row, str(value))  # a merge puts every changed trial's path again: no copy kept
    assert not column.holes
    for row in range(0, 1000, 3):
        values[row] = column_value = f"changed {row}"
        column.put(row, column_value)
    assert column.mode == "s" and len(column.holes) <= 1000 // 8  # a new buffer, not 334 holes
    check(values, column)
