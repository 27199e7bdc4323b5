"""``hpctune doctor [STORAGE_PATH]``: does this storage path (and Slurm) work for hpctune?

One line per check: ok, warning, or FAILED with the fix; exit code 1 if any check failed.
The filesystem checks live in ``hpctune.storage.fs_check`` (writable, flock between two
processes, fsync and atomic rename, O_NOFOLLOW, free space, the filesystem type); this
module adds Slurm (``scontrol ping``, when ``sbatch`` exists) and prints.
"""

from __future__ import annotations

import argparse
import shutil

from hpctune.backends.slurm_commands import ping_args
from hpctune.backends.slurm_limits import shared_commands
from hpctune.cli.common import storage_root
from hpctune.errors import HpctuneError
from hpctune.storage.fs_check import FAILED, OK, CheckResult, run_checks


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register ``doctor``."""
    p = commands.add_parser(
        "doctor", help="check that a storage path (and Slurm) work for hpctune",
        description="Check the storage path: writable, file locks between processes, fsync and "
        "atomic rename, O_NOFOLLOW, free space, the filesystem type; and that Slurm answers. "
        "Exits 1 if a check failed.")
    p.add_argument("storage_path", nargs="?", help="default: $HPCTUNE_STORAGE_PATH or ~/hpctune_results")
    p.set_defaults(func=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    root = storage_root(args.storage_path)
    print(f"hpctune doctor: {root}", flush=True)
    results = run_checks(root)
    slurm = check_slurm()
    if slurm is not None:
        results.append(slurm)
    for result in results:
        print(result.line(), flush=True)
    failed = [r.name for r in results if r.failed]
    if failed:
        print(f"{len(failed)} check(s) FAILED: {', '.join(failed)}")
        return 1
    print("hpctune can run experiments here.")
    return 0


def check_slurm() -> CheckResult | None:
    """``scontrol ping`` through the shared, counted commands; None where there is no sbatch."""
    if not shutil.which("sbatch"):
        return None
    fix = ("check `scontrol ping` and SLURM_CONF; ask your admins if slurmctld is down, or run "
           "trials locally with --backend local")
    try:
        proc = shared_commands().run(ping_args(), check=False)
    except (OSError, HpctuneError) as exc:
        return CheckResult("slurm", FAILED, f"scontrol ping could not run: {exc}", fix)
    said = " ".join((proc.stdout or proc.stderr).split())
    if proc.returncode != 0 or "UP" not in proc.stdout:
        return CheckResult("slurm", FAILED, f"scontrol ping: {said or f'exit {proc.returncode}'}", fix)
    return CheckResult("slurm", OK, f"scontrol ping: {said}")
