"""Inspecting experiments from any shell: ``ls``, ``status``, ``best``, ``logs``, ``cancel``.

They read the shared filesystem only (plus one squeue for live job states, one scancel to
cancel): ``ls`` reads one small ``summary.json`` per experiment; ``status``, ``best`` and
``trials`` read ``state.json`` once (the driver's snapshot, at most a few seconds old) and
replay the result logs only when there is no snapshot yet.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from hpctune.config import DEFAULT_STORAGE
from hpctune.errors import ConfigError
from hpctune.storage.atomic import read_json
from hpctune.storage.experiment import ExperimentDir
from hpctune.trial import Trial

STALE_AFTER_S = 60.0
MARKERS = ("summary.json", "experiment.json", "submit.json", "state.json")


def add_commands(commands: argparse._SubParsersAction) -> None:
    from hpctune import cli_trials

    p = commands.add_parser("ls", help="list experiments: status, trials, best metric, last update")
    p.add_argument("storage_path", nargs="?", help="default: $HPCTUNE_STORAGE_PATH or ~/hpctune_results")
    p.set_defaults(func=cmd_ls)

    p = commands.add_parser("status", help="the progress table of an experiment")
    p.add_argument("experiment", metavar="EXP", help="experiment directory or name")
    p.add_argument("--watch", action="store_true", help="refresh until the experiment ends (Ctrl-C to leave)")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes (--watch)")
    p.add_argument("--max-rows", type=int, default=20, help="trial rows shown (top and bottom)")
    p.add_argument("--no-squeue", action="store_true", help="do not ask Slurm for live job states")
    p.set_defaults(func=cmd_status)

    cli_trials.add_command(commands)

    p = commands.add_parser("best", help="the best trial: config, metrics, checkpoint")
    p.add_argument("experiment", metavar="EXP")
    p.add_argument("--metric", help="default: the experiment's metric")
    p.add_argument("--mode", choices=["min", "max"], help="default: the experiment's mode")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_best)

    p = commands.add_parser("logs", help="a trial's stdout/stderr across requeues and retries")
    p.add_argument("experiment", metavar="EXP")
    p.add_argument("trial", metavar="TRIAL", help="trial id (or a unique end of it, e.g. 00003), "
                   "or 'driver' for the detached driver's log")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new output")
    p.add_argument("--stream", choices=["both", "out", "err"], default="both")
    p.set_defaults(func=cmd_logs)

    p = commands.add_parser("cancel", help="cancel an experiment's jobs (one scancel for all)")
    p.add_argument("experiment", metavar="EXP")
    p.add_argument("trials", nargs="*", metavar="TRIAL", help="only these trials (default: all, "
                   "and the detached driver)")
    p.set_defaults(func=cmd_cancel)


# -- finding and loading experiments ----------------------------------------------------------------
def storage_root(path: str | None = None) -> Path:
    return Path(path or os.environ.get("HPCTUNE_STORAGE_PATH") or DEFAULT_STORAGE).expanduser().resolve()


def is_experiment(path: Path) -> bool:
    return any((path / marker).exists() for marker in MARKERS)


def resolve_experiment(text: str) -> ExperimentDir:
    """EXP: a directory, else a name under the default storage path."""
    candidates = [Path(text).expanduser(), storage_root() / text]
    for path in candidates:
        if path.is_dir() and is_experiment(path):
            return ExperimentDir(path)
    known = sorted(p.name for p in _experiment_dirs(storage_root()))
    import difflib

    close = difflib.get_close_matches(text, known, n=3)
    hint = f" Did you mean: {', '.join(close)}?" if close else (
        f" Experiments there: {', '.join(known[:10])}." if known else "")
    raise ConfigError(f"No experiment {text!r}: not an experiment directory, and not a name under "
                      f"{storage_root()} (set $HPCTUNE_STORAGE_PATH or give the path).{hint}")


def _experiment_dirs(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and is_experiment(p))


def load_trials_fast(exp: ExperimentDir) -> list[Trial]:
    """Trials from the driver's snapshot (one file); replay the logs if there is none."""
    import dataclasses

    state = read_json(exp.state_path)
    if not state:
        from hpctune.results import load_trials

        return load_trials(exp) if exp.trials_dir.is_dir() else []
    names = {f.name for f in dataclasses.fields(Trial)}
    return [Trial.from_dict({k: v for k, v in t.items() if k in names}) for t in state.get("trials", [])]


def experiment_info(exp: ExperimentDir) -> dict[str, Any]:
    """summary.json, experiment.json and submit.json merged into one small dict."""
    summary = read_json(exp.summary_path, {}) or {}
    spec = exp.read_experiment() or {}
    submit = read_json(exp.root / "submit.json", {}) or {}
    return {"summary": summary, "spec": spec, "submit": submit,
            "metric": summary.get("metric") or spec.get("metric"),
            "mode": summary.get("mode") or spec.get("mode")}


def describe_state(info: dict[str, Any]) -> str:
    """running / finished / interrupted / error; queued or stale when the files say so."""
    summary, submit = info["summary"], info["submit"]
    if not summary:
        if submit.get("driver_job_id"):
            return f"queued (driver job {submit['driver_job_id']})"
        return "starting" if info["spec"] else "unknown"
    status = summary.get("status", "unknown")
    age = time.time() - float(summary.get("updated", 0))
    if status == "running" and age > STALE_AFTER_S:
        return f"running? (no update for {_ago(age)})"
    return status


def driver_text(summary: dict[str, Any]) -> str | None:
    driver = summary.get("driver") or {}
    if driver.get("slurm_job_id"):
        return f"Slurm job {driver['slurm_job_id']} on {driver.get('host')}"
    if driver.get("pid"):
        return f"pid {driver['pid']} on {driver.get('host')}"
    return None


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def console() -> Any:
    from rich.console import Console

    out = Console()
    return out if out.is_terminal else Console(width=200)


# -- hpctune ls ---------------------------------------------------------------------------------------
def cmd_ls(args: argparse.Namespace) -> int:
    from rich import box
    from rich.table import Table

    root = storage_root(args.storage_path)
    if not root.is_dir():
        raise ConfigError(f"{root} does not exist: no experiments yet, or give another storage path.")
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for header in ("experiment", "status", "trials", "by status", "best", "updated", "driver"):
        table.add_column(header, no_wrap=True)
    for path in _experiment_dirs(root):
        table.add_row(*ls_row(ExperimentDir(path)))
    if not table.row_count:
        print(f"No experiments in {root}.")
        return 0
    console().print(table)
    return 0


def ls_row(exp: ExperimentDir) -> list[str]:
    """One line of ``hpctune ls``, from summary.json (and the tiny experiment/submit files)."""
    info = experiment_info(exp)
    summary = info["summary"]
    by_status = summary.get("by_status", {})
    short = " ".join(f"{n}{s[0]}" for s, n in sorted(by_status.items()))
    best = summary.get("best") or {}
    best_text = f"{summary.get('metric')}={best['value']:.6g}" if "value" in best else ""
    updated = f"{_ago(time.time() - summary['updated'])} ago" if summary.get("updated") else ""
    return [exp.root.name, describe_state(info), str(summary.get("num_trials", 0)), short,
            best_text, updated, driver_text(summary) or ""]


# -- hpctune status --------------------------------------------------------------------------------------
def status_view(exp: ExperimentDir, squeue: bool = True) -> Any:
    """The StatusView of an experiment, from its files (and one squeue when it is running)."""
    from hpctune.status_table import StatusView

    info = experiment_info(exp)
    trials = load_trials_fast(exp)
    state = describe_state(info)
    if squeue and state == "running":
        refresh_job_states(trials)
    summary = info["summary"]
    return StatusView(trials=trials, experiment_dir=str(exp.root), scheduler=info["spec"].get("scheduler"),
                      metric=info["metric"], mode=info["mode"],
                      slurm_commands=summary.get("slurm_commands", {}), state=state,
                      driver=driver_text(summary), updated=summary.get("updated"))


def refresh_job_states(trials: list[Trial]) -> None:
    """One squeue for the arrays of the live trials; Slurm's answer replaces the snapshot's."""
    from shutil import which

    live = [t for t in trials if not t.is_finished and t.job_id and not t.job_id.startswith("local")]
    if not live or not which("squeue"):
        return
    from hpctune.backends.slurm_commands import SlurmCommands

    arrays = sorted({t.job_id.split("_")[0] for t in live})
    proc = SlurmCommands().run(["squeue", "-h", "-r", "-j", ",".join(arrays), "-o", "%i|%T|%r|%N"],
                               check=False)
    if proc.returncode != 0:
        return
    states = {}
    for line in proc.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 4:
            states[parts[0]] = parts[1:]
    for trial in live:
        if trial.job_id in states:
            state, reason, node = states[trial.job_id]
            trial.job_state, trial.node = state, node
            trial.job_reason = "" if reason in ("None", "(null)") else reason


def cmd_status(args: argparse.Namespace) -> int:
    from hpctune.progress import CLIReporter

    exp = resolve_experiment(args.experiment)
    reporter = CLIReporter(max_progress_rows=args.max_rows, live=False)
    out = console()
    if not args.watch:
        out.print(reporter.renderable(status_view(exp, not args.no_squeue)))
        return 0
    from contextlib import nullcontext

    from rich.live import Live

    with Live(console=out, auto_refresh=False) if out.is_terminal else nullcontext() as live:
        while True:
            view = status_view(exp, not args.no_squeue)
            if live is None:  # not a terminal: one table per refresh
                out.print(reporter.renderable(view))
            else:
                live.update(reporter.renderable(view), refresh=True)
            if not view.state or not view.state.startswith(("running", "queued", "starting")):
                return 0
            time.sleep(args.interval)


# -- hpctune best --------------------------------------------------------------------------------------------
def cmd_best(args: argparse.Namespace) -> int:
    import json

    from hpctune.status_table import best_trial

    exp = resolve_experiment(args.experiment)
    info = experiment_info(exp)
    metric, mode = args.metric or info["metric"], args.mode or info["mode"]
    if not metric or mode not in ("min", "max"):
        raise ConfigError(f"{exp.root.name} has no metric/mode: pass --metric NAME --mode min|max.")
    trials = load_trials_fast(exp)
    best = best_trial(trials, metric, mode)
    if best is None:
        reported = sorted({k for t in trials for k in t.last_result})
        raise ConfigError(f"No trial reported a finite `{metric}`; reported metrics: "
                          f"{', '.join(reported) or 'none yet'}.")
    checkpoint = str(Path(best.path) / best.checkpoint) if best.checkpoint else None
    record = {"trial_id": best.trial_id, "metric": metric, "mode": mode,
              "value": best.last_result[metric], "status": best.status.value,
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
    print(f"Trial directory: {best.path}")
    return 0


# -- hpctune logs --------------------------------------------------------------------------------------------
def find_trial(trials: list[Trial], text: str) -> Trial:
    """A trial by id, or by a unique end of its id ("00003", "3")."""
    exact = [t for t in trials if t.trial_id == text]
    if exact:
        return exact[0]
    matches = [t for t in trials if t.trial_id.endswith(text)
               or (text.isdigit() and t.trial_id.rsplit("_", 1)[-1].lstrip("0") == text.lstrip("0"))]
    if len(matches) == 1:
        return matches[0]
    sample = ", ".join(t.trial_id for t in (matches or trials)[:5])
    what = "matches several trials" if matches else "matches no trial"
    raise ConfigError(f"Trial {text!r} {what}; trial ids look like: {sample or 'none yet'}.")


def job_log_files(exp: ExperimentDir, job_id: str) -> list[Path]:
    """The stdout and stderr files of one job (Slurm array task or local process)."""
    if job_id.startswith("local"):
        return [exp.jobs_dir / f"{job_id}.out", exp.jobs_dir / f"{job_id}.err"]
    return [exp.jobs_dir / f"{job_id}_0_log.out", exp.jobs_dir / f"{job_id}_0_log.err"]


def trial_job_ids(exp: ExperimentDir, trial: Trial) -> list[str]:
    """Every job the trial ran in, oldest first: from its result log's events, plus its current job."""
    from hpctune.storage.result_log import read_events

    seen: dict[str, None] = {}
    for event in read_events(exp.result_log_path(trial.trial_id)):
        if event.get("slurm_job_id"):
            seen[str(event["slurm_job_id"])] = None
    if trial.job_id:
        seen[trial.job_id] = None
    return list(seen)


def cmd_logs(args: argparse.Namespace) -> int:
    from hpctune.cli_jobs import follow, print_files

    exp = resolve_experiment(args.experiment)
    if args.trial == "driver":
        files = [exp.root / "driver.log"]
    else:
        trial = find_trial(load_trials_fast(exp), args.trial)
        suffix = {"both": (".out", ".err"), "out": (".out",), "err": (".err",)}[args.stream]
        files = [f for job in trial_job_ids(exp, trial) for f in job_log_files(exp, job)
                 if f.suffix in suffix]
    if not files:
        raise ConfigError(f"Trial {args.trial} has not been submitted yet: no log files.")
    offsets = print_files(files)
    if args.follow:
        follow(exp, args.trial, files, offsets)
    return 0


# -- hpctune cancel ------------------------------------------------------------------------------------------
def cmd_cancel(args: argparse.Namespace) -> int:
    from hpctune.cli_jobs import cancel_experiment

    exp = resolve_experiment(args.experiment)
    message = cancel_experiment(exp, args.trials)
    print(message)
    sys.stdout.flush()
    return 0
