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
import csv
import difflib
import json
import operator
import re
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
from hpctune.core.metrics import AUTO_METRICS, flatten
from hpctune.display.table import format_value, resources_cell, resources_text
from hpctune.errors import ConfigError
from hpctune.storage.events import DONOR, DONOR_ITERATION, KIND, EventKind
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.result_log import read_events
from hpctune.storage.trial_rows import MISSING
from hpctune.tune.experiment.trial import JobState, Trial

if TYPE_CHECKING:
    from hpctune.storage.trial_rows import TrialRows

TRIAL_FIELDS = ["trial_id", "status", "experiment_tag", "job_id", "job_state", "job_reason", "node",
                "num_failures", "restart_count", "checkpoint", "error", "path"]
OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<=": operator.le, ">=": operator.ge,
    "<": operator.lt, ">": operator.gt,
}
_FILTER = re.compile(r"^\s*(\S+)\s*(==|!=|<=|>=|<|>)\s*(.*?)\s*$")


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


def lineage(exp: ExperimentDir, trial_id: str) -> str:
    """The trial's exploits from its result log: ``donor@iteration`` each, oldest first."""
    donors = [f"{e.get(DONOR)}@{e.get(DONOR_ITERATION)}" for e in read_events(exp.result_log_path(trial_id))
              if e.get(KIND) == EventKind.EXPLOITED.value]
    return ",".join(donors)


def trial_record(trial: Trial, exp: ExperimentDir | None = None, pbt: bool | None = None,
                 usage: ExperimentUsage | None = None) -> dict[str, Any]:
    """Every column of one trial (``lineage`` when ``exp`` had PBT exploits; ``pbt``: whether
    it had, when the caller looked once for all trials; the allocation it used, ``cpu_hours``
    ``gpu_hours`` ``node_hours``, from ``usage``)."""
    record: dict[str, Any] = {f: getattr(trial, f) for f in TRIAL_FIELDS}
    if usage is not None:
        record.update(usage_columns(usage.trials.get(trial.trial_id)))
    if pbt is None:
        pbt = exp is not None and exp.pbt_global_path.exists()
    if exp is not None and pbt:
        record["lineage"] = lineage(exp, trial.trial_id)
    record["status"] = trial.status.value
    record["resources"] = resources_cell(trial)
    if trial.error:
        record["error"] = next((ln for ln in reversed(trial.error.splitlines()) if ln.strip()), "")
    record.update({f"config/{k}": v for k, v in flatten(trial.config).items()})
    record.update({k: v for k, v in trial.last_result.items() if not isinstance(v, (dict, list))})
    return record


def default_columns(records: list[dict[str, Any]], metric: str | None) -> list[str]:
    """trial_id, status, job_id, config values, the metric, a few metrics, iterations, time."""
    keys: dict[str, None] = {}
    for record in records[:500]:
        keys.update(dict.fromkeys(record))
    return _default_columns(
        list(keys), metric, lambda c: any(r.get(c) not in (None, "") for r in records),
        varied=len({r.get("resources") for r in records}) > 1,
        gpu_hours=any(r.get("gpu_hours") for r in records))


def _default_columns(keys: list[str], metric: str | None, filled: Callable[[str], bool],
                     varied: bool, gpu_hours: bool) -> list[str]:
    """``default_columns`` from the first records' columns (``keys``, in order), whether a
    column has a value in some record (``filled``), whether the ``resources`` differ and
    whether some record has ``gpu_hours``."""
    config = [k for k in keys if k.startswith("config/")]
    metrics = [k for k in keys if k not in TRIAL_FIELDS and not k.startswith("config/")
               and k not in AUTO_METRICS and k not in (metric, "lineage", "resources", *USAGE_COLUMNS)][:3]
    wanted = ["trial_id", "status", "job_id", *(["resources"] if varied else []), "lineage", *config,
              *([metric] if metric else []), *metrics, "training_iteration", "time_total_s", "cpu_hours",
              *(["gpu_hours"] if gpu_hours else []), "error"]
    return [c for c in wanted if c in keys and filled(c)]


def check_columns(columns: list[str], records: list[dict[str, Any]], flag: str) -> None:
    """ConfigError naming an unknown column and the close (or all) known ones."""
    known: dict[str, None] = dict.fromkeys(TRIAL_FIELDS)
    for record in records:
        known.update(dict.fromkeys(record))
    for column in columns:
        if column not in known:
            close = difflib.get_close_matches(column, list(known), n=3)
            hint = f"did you mean {', '.join(close)}?" if close else f"known columns: {', '.join(known)}"
            raise ConfigError(f"{flag}: unknown column {column!r}; {hint}")


def parse_filter(text: str) -> tuple[str, Callable[[Any, Any], bool], Any]:
    match = _FILTER.match(text)
    if not match or not match.group(3):
        raise ConfigError(f'--filter {text!r}: expected "<column> <op> <value>" with op one of '
                          f'{" ".join(OPERATORS)}, e.g. --filter "loss < 0.1".')
    column, op, raw = match.groups()
    return column, OPERATORS[op], _parse_value(raw.strip("'\""))


def _parse_value(raw: str) -> Any:
    try:
        return float(raw)
    except ValueError:
        return raw


def _matches(record: dict[str, Any], column: str, op: Callable, value: Any) -> bool:
    return _cell_matches(record.get(column), op, value)


def _cell_matches(cell: Any, op: Callable, value: Any) -> bool:
    if isinstance(value, float):
        if isinstance(cell, bool) or not isinstance(cell, (int, float)):
            try:
                cell = float(cell)
            except (TypeError, ValueError):
                return op is operator.ne
        return op(cell, value)
    return op("" if cell is None else str(cell), value)


def select(records: list[dict[str, Any]], filters: list[str], sort: str | None,
           desc: bool) -> list[dict[str, Any]]:
    """Records that pass every filter, sorted (missing values last)."""
    parsed = [parse_filter(f) for f in filters]
    check_columns([c for c, _, _ in parsed], records, "--filter")
    kept = [r for r in records if all(_matches(r, c, op, v) for c, op, v in parsed)]
    if sort:
        keys = [s.strip() for s in sort.split(",") if s.strip()]
        check_columns(keys, records, "--sort")
        for key in reversed(keys):
            present = [r for r in kept if r.get(key) is not None]
            missing = [r for r in kept if r.get(key) is None]
            present.sort(key=lambda r, k=key: _sort_key(r[k]), reverse=desc)
            kept = present + missing
    return kept


def _sort_key(value: Any) -> tuple:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value, "")
    return (1, 0, str(value))


def format_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A plain aligned text table (fast for thousands of rows)."""
    return format_columns(columns, [[r.get(c) for r in rows] for c in columns])


def format_columns(columns: list[str], values: list[list[Any]]) -> str:
    """``format_table`` with the cells given column by column (``values[i]``: column i's)."""
    texts = [[_cell_text(v) for v in column] for column in values]
    widths = [max([len(c), *map(len, t)]) for c, t in zip(columns, texts, strict=True)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    numeric: dict[str, bool] = {}
    padded = []
    for column, raw, width in zip(texts, values, widths, strict=True):
        kinds = {type(v) for v in raw}
        if kinds <= {float, int} and (int not in kinds or max(map(len, column), default=0) < 40):
            padded.append([text.rjust(width) for text in column])
            continue
        cells = []
        for text in column:
            right = numeric.get(text)
            if right is None:
                right = numeric[text] = _numeric(text)
            cells.append(text.rjust(width) if right else text.ljust(width))
        padded.append(cells)
    out += ["  ".join(cells) for cells in zip(*padded, strict=True)]
    return "\n".join(out)


def _cell_text(value: Any) -> str:
    """``format_value(value, 40)``, the common cases first."""
    kind = type(value)
    if kind is float:
        return f"{value:.6g}"
    if kind is str and len(value) <= 40:
        return value
    return format_value(value, 40)


def _numeric(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def write_output(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Write the rows (these columns) to a .csv or .json file."""
    if path.suffix not in (".csv", ".json"):
        raise ConfigError(f"--output {path}: use a .csv or .json file name.")
    try:
        _write_rows(path, rows, columns)
    except OSError as exc:
        raise ConfigError(f"--output {path}: cannot write it ({exc.strerror or exc}). Fix: give a "
                          "file in a directory that exists and that you may write to.") from exc


def _write_rows(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    if path.suffix == ".json":
        path.write_text(json.dumps([{c: r.get(c) for c in columns} for r in rows], indent=1, default=str))
    else:
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)


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
    if len(shown) < len(rows):
        print(f"({len(rows) - len(shown)} more rows; drop --limit to see them)")
    if args.output:
        print(f"Output saved at: {args.output}")
    return 0


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
    if len(shown) < len(kept):
        print(f"({len(kept) - len(shown)} more rows; drop --limit to see them)")
    if args.output:
        print(f"Output saved at: {args.output}")
    return 0
