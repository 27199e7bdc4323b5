"""``hpctune trials EXP``: a table of trials, like Ray's ``tune list-trials``.

Columns: trial fields (``trial_id``, ``status``, ``job_id``, ``job_state``, ``node``, ...),
``lineage`` (PBT: the donors whose checkpoints the trial continued from, oldest first, as
``<donor>@<iteration>``), ``resources`` (the current request, e.g. ``2 CPU 1 GPU``: shown by
default when trials differ, as a ResourceChangingScheduler makes them), ``config/<key>`` for config values and every reported metric
(``loss``, ``training_iteration``, ...). ``--filter "<column> <op> <value>"`` (``== != < <= > >=``,
repeatable, all must hold), ``--sort col[,col]`` (``--desc``), ``--columns a,b,c``,
``--output trials.csv|trials.json``. Empty columns are dropped unless asked for.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpctune.accounting.usage import USAGE_COLUMNS, ExperimentUsage, usage_columns
from hpctune.accounting.usage_record import read_usage
from hpctune.cli.common import (
    experiment_info,
    load_trials,
    positive_int,
    printable,
    resolve_experiment,
)
from hpctune.cli.trials_table import (  # noqa: F401  (select: the whole read's, re-exported)
    TRIAL_FIELDS,
    _cell_matches,
    _default_columns,
    _sort_key,
    check_columns,
    default_columns,
    format_columns,
    format_table,
    parse_filter,
    select,
    trial_record,
    write_output,
)
from hpctune.display.table import resources_text
from hpctune.errors import ConfigError
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.trial_rows import MISSING
from hpctune.tune.experiment.trial import JobState, Trial

if TYPE_CHECKING:
    from hpctune.storage.trial_rows_read import TrialRows


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register ``trials``."""
    p = commands.add_parser("trials", help="a table of the trials (like `tune list-trials`)",
                            description=__doc__.split("\n\n", 1)[1],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiment", metavar="EXP")
    p.add_argument("--columns", help="comma-separated columns to show")
    p.add_argument("--sort", help="comma-separated columns to sort by")
    p.add_argument("--desc", action="store_true", help="sort in descending order")
    p.add_argument("--filter", action="append", default=[], metavar='"COL OP VALUE"',
                   help='e.g. --filter "loss < 0.1" --filter "status == TERMINATED"')
    p.add_argument("--limit", type=positive_int, help="print at most this many rows")
    p.add_argument("--output", help="also write the rows to a .csv or .json file")
    p.set_defaults(func=cmd_trials)


def cmd_trials(args: argparse.Namespace) -> int:
    exp = resolve_experiment(args.experiment)
    pbt = exp.pbt_global_path.exists()  # looked at once, not once per trial
    usage = read_usage(exp.root)
    if not pbt:  # lineage reads every trial's log: the whole read then
        table = RowRecords.of(exp, usage.usage if usage else None)
        if table is not None and table.count and table.answers(args):
            return _print_rows(args, exp, table)
    records = [trial_record(t, exp, pbt, usage.usage if usage else None) for t in load_trials(exp)]
    if not records:
        print(f"No trials in {printable(exp.root.name)} yet.")
        return 0
    if args.columns:
        columns = [c.strip() for c in args.columns.split(",") if c.strip()]
        if not columns:
            raise ConfigError(f"--columns {args.columns!r} names no column: give them comma-separated, "
                              "e.g. --columns trial_id,status,loss.")
        check_columns(columns, records, "--columns")
    else:
        columns = default_columns(records, experiment_info(exp)["metric"])
    rows = select(records, args.filter, args.sort, args.desc)
    if args.output:
        write_output(Path(args.output), rows, columns)
    shown = rows[: args.limit] if args.limit is not None else rows
    print(format_table(shown, columns))
    return _after_table(len(shown), len(rows), args.output)


class RowRecords:
    """The records of ``trial_record`` column by column, from the row view
    (``storage.trial_rows``): ``values`` resolves one column for every trial, ``record`` builds
    one trial's record; only the columns a command names are parsed."""

    def __init__(self, rows: TrialRows, usage: ExperimentUsage | None,
                 trial: Callable[[int], Trial]):
        self.rows, self.usage, self.count = rows, usage, rows.count
        self._values: dict[str, list[Any]] = {}
        #: the escaped rows' records, from their scrubbed Trials (as the whole read shows them)
        self.scrubbed = {i: trial_record(trial(i), None, False, usage) for i in rows.escaped}

    @classmethod
    def of(cls, exp: ExperimentDir, usage: ExperimentUsage | None) -> RowRecords | None:
        """The row view's records; None: none for the current state (read the whole state)."""
        from hpctune.cli.common import load_rows, row_trial_loader

        rows = load_rows(exp)
        if rows is None:
            return None
        from hpctune.cli.inspect import _known_statuses

        if not _known_statuses(rows.column("status")):
            return None  # the whole read says what is wrong
        return cls(rows, usage, row_trial_loader(rows))

    def knows(self, column: str) -> bool:
        """Whether some trial's record has ``column`` (what ``check_columns`` accepts)."""
        from hpctune.storage.trial_rows import CONFIG, RESULT

        if column in TRIAL_FIELDS or column == "resources" or any(column in r for r in self.scrubbed.values()):
            return True
        if self.usage is not None and column in USAGE_COLUMNS:
            return True
        names = self.rows.names
        for name in (RESULT + column, column if column.startswith(CONFIG) else None):
            if name in names:
                values = self.rows.column(name)
                if any(v is not MISSING for i, v in enumerate(values) if i not in self.scrubbed):
                    return True
        return False

    def answers(self, args: argparse.Namespace) -> bool:
        """Whether every column the arguments name is known here (else the whole read runs,
        which also gives the error for an unknown one)."""
        wanted = [parse_filter(f)[0] for f in args.filter]
        if args.sort:
            wanted += [k.strip() for k in args.sort.split(",") if k.strip()]
        if args.columns:
            named = [c.strip() for c in args.columns.split(",") if c.strip()]
            if not named:
                return False  # the whole read gives the error
            wanted += named
        return all(self.knows(c) for c in wanted)

    def values(self, column: str) -> list[Any]:
        """``record.get(column)`` of every trial (``MISSING`` where its record lacks it)."""
        if column in self._values:
            return self._values[column]
        from hpctune.storage.trial_rows import CONFIG, RESULT

        rows, count = self.rows, self.count
        layers: list[list[Any]] = []  # the later ones win, as trial_record's updates do
        if column in TRIAL_FIELDS:
            layers.append(self._field(column))
        if self.usage is not None and column in USAGE_COLUMNS:
            ids = rows.column("trial_id")
            layers.append([usage_columns(self.usage.trials.get(t))[column] for t in ids])
        if column == "resources":
            layers.append(self._resources())
        if column.startswith(CONFIG) and column in rows.names:
            layers.append(rows.column(column))
        if RESULT + column in rows.names:
            layers.append(rows.column(RESULT + column))
        if not layers:
            values = [MISSING] * count
        elif len(layers) == 1:
            values = list(layers[0])
        else:
            values = list(layers[0])
            for layer in layers[1:]:
                for i, v in enumerate(layer):
                    if v is not MISSING:
                        values[i] = v
        for i, record in self.scrubbed.items():
            values[i] = record.get(column, MISSING)
        self._values[column] = values
        return values

    def _field(self, name: str) -> list[Any]:
        values = self.rows.column(name)
        if name == "job_state":
            states = {raw: JobState.parse(raw) for raw in set(values)}
            return [states[v] for v in values]
        return values

    def _resources(self) -> list[str]:
        requests, pending = self.rows.column("resources"), self.rows.column("pending_resources")
        if pending.count(None) == len(pending):  # none waits for a new request: one cell a request
            texts = {id(r): resources_text(r, None, False) for r in {id(r): r for r in requests}.values()}
            return [texts[id(r)] for r in requests]
        cells: dict[tuple, str] = {}
        out = []
        for r, p, s in zip(self.rows.column("resources"), self.rows.column("pending_resources"),
                           self.rows.column("status"), strict=True):
            finished = s in ("TERMINATED", "ERROR")
            key = (id(r), id(p), finished)  # equal requests share one object (the view's codes)
            if key not in cells:
                cells[key] = resources_text(r, p, finished)
            out.append(cells[key])
        return out

    def keys(self, index: int) -> list[str]:
        """Trial ``index``'s record's columns, in its order."""
        from hpctune.storage.trial_rows import KEYS, RESULT

        if index in self.scrubbed:
            return list(self.scrubbed[index])
        keys: dict[str, None] = dict.fromkeys(TRIAL_FIELDS)
        if self.usage is not None:
            keys.update(dict.fromkeys(USAGE_COLUMNS))
        keys["resources"] = None
        own = self.rows.column(KEYS)[index]
        keys.update(dict.fromkeys(k[len(RESULT):] if k.startswith(RESULT) else k
                                  for k in (own if own is not MISSING else ())))
        return list(keys)

    def record(self, index: int, columns: list[str]) -> dict[str, Any]:
        """Trial ``index``'s record, for ``columns``."""
        out = {}
        for column in columns:
            value = self.values(column)[index]
            if value is not MISSING:
                out[column] = value
        return out


def _print_rows(args: argparse.Namespace, exp: ExperimentDir, table: RowRecords) -> int:
    """``cmd_trials`` from the row view: the filters and the sort on the columns they name,
    records built for the rows printed only."""
    if args.columns:
        columns = [c.strip() for c in args.columns.split(",") if c.strip()]
    else:
        keys: dict[str, None] = {}
        for index in range(min(table.count, 500)):
            keys.update(dict.fromkeys(table.keys(index)))
        columns = _default_columns(
            list(keys), experiment_info(exp)["metric"],
            lambda c: any(v is not MISSING and v not in (None, "") for v in table.values(c)),
            varied=len(set(table.values("resources"))) > 1,
            gpu_hours="gpu_hours" in keys and any(v is not MISSING and v for v in table.values("gpu_hours")))
    kept = list(range(table.count))
    for text in args.filter:
        column, op, value = parse_filter(text)
        cells = table.values(column)
        kept = [i for i in kept if _cell_matches(None if cells[i] is MISSING else cells[i], op, value)]
    if args.sort:
        for key in reversed([k.strip() for k in args.sort.split(",") if k.strip()]):
            cells = table.values(key)
            present = [i for i in kept if cells[i] is not MISSING and cells[i] is not None]
            missing = [i for i in kept if cells[i] is MISSING or cells[i] is None]
            present.sort(key=lambda i, c=cells: _sort_key(c[i]), reverse=args.desc)
            kept = [*present, *missing]
    if args.output:
        write_output(Path(args.output), [table.record(i, columns) for i in kept], columns)
    shown = kept[: args.limit] if args.limit is not None else kept
    cells = []
    for column in columns:
        values = table.values(column)
        cells.append([None if values[i] is MISSING else values[i] for i in shown])
    print(format_columns(columns, cells))
    return _after_table(len(shown), len(kept), args.output)


def _after_table(shown: int, rows: int, output: str | None) -> int:
    """The lines under the table (rows left out by --limit, where --output went); exit code 0."""
    if shown < rows:
        print(f"({rows - shown} more rows; drop --limit to see them)")
    if output:
        print(f"Output saved at: {output}")
    return 0
