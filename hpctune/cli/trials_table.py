"""The rows of ``hpctune trials``: each trial's record (``trial_record``), the default
columns, ``--filter`` and ``--sort`` on records, and the plain text table; pure functions
shared by the command's whole read and its row view (``cli.trials``)."""

from __future__ import annotations

import csv
import difflib
import json
import operator
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hpctune.accounting.usage import USAGE_COLUMNS, ExperimentUsage, usage_columns
from hpctune.core.metrics import AUTO_METRICS, flatten
from hpctune.display.table import format_value, resources_cell
from hpctune.errors import ConfigError
from hpctune.storage.events import DONOR, DONOR_ITERATION, KIND, EventKind
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.result_log import read_events
from hpctune.tune.experiment.trial import Trial

TRIAL_FIELDS = [
    "trial_id",
    "status",
    "experiment_tag",
    "job_id",
    "job_state",
    "job_reason",
    "node",
    "num_failures",
    "restart_count",
    "checkpoint",
    "error",
    "path",
]
OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
_FILTER = re.compile(r"^\s*(\S+)\s*(==|!=|<=|>=|<|>)\s*(.*?)\s*$")


def lineage(exp: ExperimentDir, trial_id: str) -> str:
    """The trial's exploits from its result log: ``donor@iteration`` each, oldest first."""
    donors = [
        f"{e.get(DONOR)}@{e.get(DONOR_ITERATION)}"
        for e in read_events(exp.result_log_path(trial_id))
        if e.get(KIND) == EventKind.EXPLOITED.value
    ]
    return ",".join(donors)


def trial_record(
    trial: Trial,
    exp: ExperimentDir | None = None,
    pbt: bool | None = None,
    usage: ExperimentUsage | None = None,
) -> dict[str, Any]:
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
        list(keys),
        metric,
        lambda c: any(r.get(c) not in (None, "") for r in records),
        varied=len({r.get("resources") for r in records}) > 1,
        gpu_hours=any(r.get("gpu_hours") for r in records),
    )


def _default_columns(
    keys: list[str],
    metric: str | None,
    filled: Callable[[str], bool],
    varied: bool,
    gpu_hours: bool,
) -> list[str]:
    """``default_columns`` from the first records' columns (``keys``, in order), whether a
    column has a value in some record (``filled``), whether the ``resources`` differ and
    whether some record has ``gpu_hours``."""
    config = [k for k in keys if k.startswith("config/")]
    metrics = [
        k
        for k in keys
        if k not in TRIAL_FIELDS
        and not k.startswith("config/")
        and k not in AUTO_METRICS
        and k not in (metric, "lineage", "resources", *USAGE_COLUMNS)
    ][:3]
    wanted = [
        "trial_id",
        "status",
        "job_id",
        *(["resources"] if varied else []),
        "lineage",
        *config,
        *([metric] if metric else []),
        *metrics,
        "training_iteration",
        "time_total_s",
        "cpu_hours",
        *(["gpu_hours"] if gpu_hours else []),
        "error",
    ]
    return [c for c in wanted if c in keys and filled(c)]


def check_columns(columns: list[str], records: list[dict[str, Any]], flag: str) -> None:
    """ConfigError naming an unknown column and the close (or all) known ones."""
    known: dict[str, None] = dict.fromkeys(TRIAL_FIELDS)
    for record in records:
        known.update(dict.fromkeys(record))
    for column in columns:
        if column not in known:
            close = difflib.get_close_matches(column, list(known), n=3)
            hint = (
                f"did you mean {', '.join(close)}?"
                if close
                else f"known columns: {', '.join(known)}"
            )
            raise ConfigError(f"{flag}: unknown column {column!r}; {hint}")


def parse_filter(text: str) -> tuple[str, Callable[[Any, Any], bool], Any]:
    match = _FILTER.match(text)
    if not match or not match.group(3):
        raise ConfigError(
            f'--filter {text!r}: expected "<column> <op> <value>" with op one of '
            f'{" ".join(OPERATORS)}, e.g. --filter "loss < 0.1".'
        )
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


def select(
    records: list[dict[str, Any]], filters: list[str], sort: str | None, desc: bool
) -> list[dict[str, Any]]:
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
        raise ConfigError(
            f"--output {path}: cannot write it ({exc.strerror or exc}). Fix: give a "
            "file in a directory that exists and that you may write to."
        ) from exc


def _write_rows(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    if path.suffix == ".json":
        path.write_text(
            json.dumps([{c: r.get(c) for c in columns} for r in rows], indent=1, default=str)
        )
    else:
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
