"""``hpctune ls``, ``status`` and ``best``: what experiments are doing, from any shell.

They read the shared filesystem only (plus one squeue for live job states): ``ls`` reads
one small summary per experiment; ``status`` and ``best`` read the driver's snapshot once
(at most a few seconds old) and replay the result logs only when there is none yet.
"""

from __future__ import annotations

import argparse
import getpass
import json
import shutil
import time
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpctune.accounting.usage import SSHARE_FIELDS, fairshare_line, short_usage, usage_lines
from hpctune.accounting.usage_record import read_usage
from hpctune.cli.common import (
    ago,
    console,
    describe_state,
    driver_text,
    experiment_dirs,
    experiment_info,
    load_trials,
    positive_float,
    positive_int,
    printable,
    resolve_experiment,
    scrub_trial,
    storage_root,
)
from hpctune.core.ids import array_of, is_pool_job, is_slurm_job
from hpctune.core.metrics import best_trial, is_finite_number, metric_value
from hpctune.errors import ConfigError, HpctuneError
from hpctune.storage.experiment import ExperimentDir

if TYPE_CHECKING:  # `ls` imports none of these: the other commands import them where they run
    from hpctune.backends.base import JobReport
    from hpctune.display.view import StatusView, TrialColumns
    from hpctune.tune.experiment.trial import Trial

#: states in which ``status --watch`` keeps refreshing
LIVE_STATES = ("running", "queued", "starting")


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register ``ls``, ``status`` and ``best``."""
    p = commands.add_parser("ls", help="list experiments: status, trials, best metric, last update")
    p.add_argument("storage_path", nargs="?", help="default: $HPCTUNE_STORAGE_PATH or ~/hpctune_results")
    p.set_defaults(func=cmd_ls)

    p = commands.add_parser("status", help="the progress table of an experiment")
    p.add_argument("experiment", metavar="EXP", help="experiment directory or name")
    p.add_argument("--watch", action="store_true", help="refresh until the experiment ends (Ctrl-C to leave)")
    p.add_argument("--interval", type=positive_float, default=2.0,
                   help="seconds between refreshes (--watch)")
    p.add_argument("--max-rows", type=positive_int, default=20, help="trial rows shown (top and bottom)")
    p.add_argument("--no-squeue", action="store_true", help="do not ask Slurm for live job states")
    p.set_defaults(func=cmd_status)

    p = commands.add_parser("best", help="the best trial: config, metrics, checkpoint")
    p.add_argument("experiment", metavar="EXP")
    p.add_argument("--metric", help="default: the experiment's metric")
    p.add_argument("--mode", choices=["min", "max"], help="default: the experiment's mode")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_best)


# -- hpctune ls ---------------------------------------------------------------------------------------
def cmd_ls(args: argparse.Namespace) -> int:
    from rich import box  # rich costs ~40 ms: imported by the commands that print tables
    from rich.table import Table

    root = storage_root(args.storage_path)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{printable(root)} is not a directory: give the storage path, the "
                          "directory that holds the experiments.")
    if not root.is_dir():
        raise ConfigError(f"{printable(root)} does not exist: no experiments yet, or give another storage path.")
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for header in ("experiment", "status", "trials", "by status", "best", "used", "updated", "driver"):
        table.add_column(header, no_wrap=True)
    for exp in experiment_dirs(root):
        table.add_row(*ls_row(exp))
    if not table.row_count:
        print(f"No experiments in {root}.")
        return 0
    console().print(table)
    return 0


def ls_row(exp: ExperimentDir) -> list[str]:
    """One line of ``hpctune ls``, from the summary (and the tiny spec and submit plan)."""
    info = experiment_info(exp)
    summary = info["summary"]
    by_status = summary.get("by_status", {})
    short = " ".join(f"{n}{s[0]}" for s, n in sorted(by_status.items()))
    best = summary.get("best") or {}
    value = best.get("value")
    best_text = f"{summary.get('metric')}={value:.6g}" if is_finite_number(value) else ""
    updated = f"{ago(time.time() - summary['updated'])} ago" if summary.get("updated") else ""
    return [printable(exp.root.name), describe_state(info), str(summary.get("num_trials", 0)), short,
            best_text, used_text(exp), updated, driver_text(summary) or ""]


def used_text(exp: ExperimentDir) -> str:
    """The ``used`` cell of ``hpctune ls``: the allocation the driver last measured (blank: none
    yet, or a record this hpctune cannot read: the listing goes on)."""
    try:
        record = read_usage(exp.root)
    except HpctuneError:
        return "?"
    return short_usage(record.usage) if record else ""


# -- hpctune status --------------------------------------------------------------------------------------
def status_view(exp: ExperimentDir, squeue: bool = True) -> StatusView:
    """The StatusView of an experiment, from its files (and one squeue when it is running)."""
    from hpctune.display.view import StatusView

    info = experiment_info(exp)
    state = describe_state(info)
    columns = row_columns(exp, info["metric"], info["mode"])
    if columns is not None:  # the row view: Trials only for the rows shown
        trials = [columns.trial(i) for i in range(min(columns.count, SAMPLE_ROWS))]
        if squeue and state == "running":
            refresh_row_states(exp, columns)
    else:
        trials = load_trials(exp)
        if squeue and state == "running":
            refresh_live_states(exp, trials)
    summary = info["summary"]
    return StatusView(trials=trials, experiment_dir=printable(exp.root), scheduler=info["spec"].get("scheduler"),
                      metric=info["metric"], mode=info["mode"],
                      slurm_commands=summary.get("slurm_commands", {}), state=state,
                      driver=driver_text(summary), updated=summary.get("updated"),
                      allocation=allocation_lines(exp, squeue and info["spec"].get("backend") == "slurm"),
                      columns=columns)


#: the first trials a status builds whole: what the table's column inference samples
SAMPLE_ROWS = 200


def row_columns(exp: ExperimentDir, metric: str | None, mode: str | None) -> TrialColumns | None:
    """Every trial's status fields from the row view (``storage.trial_rows``); None when there
    is none for the current state, or the view cannot answer as the whole read would (a nested
    metric, a status this version does not know): ``status`` reads the whole state then."""
    from hpctune.cli.common import load_rows, row_trial_loader
    from hpctune.display.view import TrialColumns
    from hpctune.storage.trial_rows import MISSING, RESULT
    from hpctune.tune.experiment.trial import JobState

    if metric and "/" in metric:
        return None  # a nested metric: its value may be in a dict the view leaves out
    rows = load_rows(exp)
    if rows is None:
        return None
    status = rows.column("status")
    if not _known_statuses(status):
        return None  # the whole read says what is wrong
    try:
        states = {raw: str(JobState.parse(raw)) for raw in set(rows.column("job_state"))}
    except TypeError:  # an unhashable job state: an odd record, read whole
        return None
    results = rows.column(RESULT + metric) if metric else [MISSING] * rows.count
    last = [None if v is MISSING else v for v in results]
    best = [v if type(v) is float else v if is_finite_number(v) else None for v in last]
    for index in rows.lines if metric else ():  # the journal's records hold their analysis
        analysed = rows.analysis(index).get(metric, {}).get("last")
        if analysed is not None:
            best[index] = analysed
    resources = rows.column("resources")
    columns = TrialColumns(
        status=status, job_id=rows.column("job_id"),
        job_state=[states[raw] for raw in rows.column("job_state")],
        job_reason=rows.column("job_reason"), node=rows.column("node"), resources=resources,
        best_value=best, last_value=last, trial=row_trial_loader(rows))
    for index in rows.escaped:  # scrubbed as the whole read scrubs them
        _set_row(columns, index, columns.trial(index), metric, mode)
    return columns


def _known_statuses(status: list[Any]) -> bool:
    """Every value of the status column is a status of this version."""
    from hpctune.tune.experiment.trial import TrialStatus

    try:
        distinct = set(status)
    except TypeError:  # an unhashable value: not a status
        return False
    return all(type(s) is str for s in distinct) and distinct <= {s.value for s in TrialStatus}


def _set_row(columns: TrialColumns, index: int, trial: Trial, metric: str | None, mode: str | None) -> None:
    """Row ``index`` of ``columns`` from ``trial``."""
    from hpctune.display.view import TrialColumns

    one = TrialColumns.of([trial], metric, mode)
    for name in ("status", "job_id", "job_state", "job_reason", "node", "resources", "best_value", "last_value"):
        getattr(columns, name)[index] = getattr(one, name)[0]


def refresh_row_states(exp: ExperimentDir, columns: TrialColumns) -> None:
    """``refresh_live_states`` for the rows of live trials with a Slurm job or a pool run, on
    the columns alone (no Trial built: 2,000 running is 2,000 reads)."""
    from hpctune.tune.experiment.trial import JobState

    live = [i for i, (status, job) in enumerate(zip(columns.status, columns.job_id, strict=True))
            if status not in ("TERMINATED", "ERROR") and (is_slurm_job(job) or is_pool_job(job))]
    states = live_job_states(exp, [str(columns.job_id[i]) for i in live])
    for index in live:
        job = states.get(str(columns.job_id[index]))
        if job is not None:
            columns.job_state[index] = str(JobState.parse(job.state))
            columns.job_reason[index], columns.node[index] = job.reason, job.node


def allocation_lines(exp: ExperimentDir, ask_slurm: bool) -> list[str]:
    """The allocation the driver last measured (``usage.json``), its budget, and the user's
    fair-share (one ``sshare``, when Slurm has it and ``ask_slurm``)."""
    record = read_usage(exp.root)
    lines = usage_lines(record.usage if record else None, record.budget if record else None)
    if ask_slurm and shutil.which("sshare"):
        from hpctune.backends.slurm_commands import sshare_args

        proc = shared_commands().run(sshare_args(getpass.getuser(), SSHARE_FIELDS), check=False)
        line = fairshare_line(proc.stdout) if proc.returncode == 0 else None
        if line:
            lines.append(line)
    return lines


def shared_commands() -> Any:
    """``backends.slurm_limits.shared_commands()``, imported when a status asks Slurm."""
    from hpctune.backends.slurm_limits import shared_commands as commands

    return commands()


def refresh_live_states(exp: ExperimentDir, trials: list[Trial]) -> None:
    """Slurm's answer replaces the snapshot's job state, reason and node of the live trials with
    a Slurm job or a pool run (``live_job_states``)."""
    live = [t for t in trials if not t.is_finished and (is_slurm_job(t.job_id) or is_pool_job(t.job_id))]
    _apply_states(live, live_job_states(exp, [str(t.job_id) for t in live]))


def live_job_states(exp: ExperimentDir, job_ids: list[str]) -> dict[str, JobReport]:
    """Slurm's answer for ``job_ids`` of live trials: one squeue for their arrays (a damaged id
    never reaches it), and for pool runs one listing of the queue and one squeue for the pool
    tasks that claimed them, mapped as the driver's poll maps them (queued: PENDING)."""
    states: dict[str, JobReport] = {}
    arrays = sorted({array_of(job) for job in job_ids if is_slurm_job(job)})
    if arrays and shutil.which("squeue"):
        states.update(shared_commands().job_states(jobs=arrays, check=False))
    if any(is_pool_job(job) for job in job_ids):
        from hpctune.backends.pool_runs import run_states
        from hpctune.storage.pool_queue import PoolQueue

        view = PoolQueue(exp.root).view()
        tasks = sorted({array_of(task) for task in view.claimed.values() if is_slurm_job(task)})
        found = shared_commands().job_states(jobs=tasks, check=False) if tasks and shutil.which("squeue") else {}
        states.update(run_states(view, found))
    return states


def _apply_states(trials: list[Trial], states: dict[str, JobReport]) -> None:
    """A trial whose job ``states`` (Slurm's answer) lists takes its state, reason and node."""
    for trial in trials:
        job = states.get(str(trial.job_id))
        if job is not None:
            trial.observe_job(job.state, job.reason, job.node)


def cmd_status(args: argparse.Namespace) -> int:
    from hpctune.display.reporter import CLIReporter

    exp = resolve_experiment(args.experiment)
    reporter = CLIReporter(max_progress_rows=args.max_rows, live=False)
    out = console()
    if not args.watch:
        out.print(reporter.renderable(status_view(exp, not args.no_squeue)))
        return 0
    from rich.live import Live

    with Live(console=out, auto_refresh=False) if out.is_terminal else nullcontext() as live:
        while True:
            view = status_view(exp, not args.no_squeue)
            if live is None:  # not a terminal: one table per refresh
                out.print(reporter.renderable(view))
            else:
                live.update(reporter.renderable(view), refresh=True)
            if not view.state or not view.state.startswith(LIVE_STATES):
                return 0
            time.sleep(args.interval)


# -- hpctune best --------------------------------------------------------------------------------------------
def _summary_best(exp: ExperimentDir, info: dict) -> Trial | None:
    """The experiment's best trial as the driver's last snapshot named it in the summary (for
    its own metric and mode), read alone from the snapshot; None: not known that way."""
    from hpctune.storage.journal import read_one_trial
    from hpctune.tune.experiment.trial import Trial

    named = (info["summary"].get("best") or {}).get("trial_id")
    if not isinstance(named, str) or info["summary"].get("metric") != info["metric"]:
        return None
    try:
        record = read_one_trial(exp, named)
        trial = Trial.from_dict(record) if record is not None else None
    except (ValueError, TypeError, KeyError, AttributeError, HpctuneError):
        return None  # damaged: the full read says what and how to fix it
    return scrub_trial(trial) if trial is not None else None


def cmd_best(args: argparse.Namespace) -> int:
    exp = resolve_experiment(args.experiment)
    info = experiment_info(exp)
    if args.metric is not None and not args.metric.strip():
        raise ConfigError("--metric is empty: name a reported metric, e.g. --metric loss.")
    metric, mode = args.metric or info["metric"], args.mode or info["mode"]
    if not metric or mode not in ("min", "max"):
        raise ConfigError(f"{exp.root.name} has no metric/mode: pass --metric NAME --mode min|max.")
    best = _summary_best(exp, info) if args.metric is None and args.mode is None else None
    trials = [] if best is not None else load_trials(exp)
    best = best or best_trial(trials, metric, mode)
    if best is None:
        reported = sorted({k for t in trials for k in t.last_result})
        raise ConfigError(f"No trial reported a finite `{metric}`; reported metrics: "
                          f"{', '.join(reported) or 'none yet'}.")
    checkpoint = str(Path(best.path) / best.checkpoint) if best.checkpoint else None
    record = {"trial_id": best.trial_id, "metric": metric, "mode": mode,
              "value": metric_value(best, metric, mode), "status": best.status.value,
              "config": best.config, "metrics": best.last_result, "checkpoint": checkpoint,
              "path": best.path}
    if args.json:
        print(json.dumps(record, indent=1, default=str))
        return 0
    print(f"Best trial: {best.trial_id} ({best.status.value}), {metric}={record['value']:.6g} ({mode})")
    print(f"Config: {json.dumps(best.config, default=str)}")
    print("Metrics:")
    for key, value in best.last_result.items():
        print(f"  {key}: {value}")
    print(f"Checkpoint: {checkpoint or 'none'}")
    print(f"Trial directory: {printable(best.path)}")
    return 0
