"""Metadata operations per trial: what creating and queueing a trial costs the driver, and what
the rest of its life does (its start, results and end), on the simulated cluster.

The driver of ``driver_scale.py`` (the same ``build``) creates and queues ``--trials`` trials in
its first step, traced with ``strace -f -y`` (every call with the path it touches), then runs
them to the end, traced again (``--ends``). Each metadata operation on the experiment directory
(``driver_scale.METADATA``, and ``fstat`` apart) is counted per trial and by file, with the
trial's id, the pool's run numbers and temporary names folded::

    python bench/trial_metadata.py --trials 1000 --running 100 --backend pool --ends
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import driver_scale  # noqa: E402
from _common import storage_dir  # noqa: E402
from sim_cluster import SimHost  # noqa: E402

GROUP = {name: group for group, names in driver_scale.METADATA.items() for name in names}
CALL = re.compile(r"^(?:\d+\s+)?(\w+)\((.*)")
FOLD = [
    (r"/trials/[^/\"]+/", "/trials/T/"),
    (r"/trials/[^/\"]+$", "/trials/T"),
    (r"/pool/(queue|claimed|runs)/.+", r"/pool/\1/..."),
    (r"/jobs/.+", "/jobs/..."),
    (r"/\.changes/\d+", "/.changes/NN"),
    (r"/\.([^/]+)\.[a-z0-9_]{8}\.tmp$", r"/.\1.X.tmp"),
    (r"(events\.out\.tfevents)[^/]*", r"\1*"),
]


def trace(out: Path) -> subprocess.Popen:
    proc = subprocess.Popen(["strace", "-f", "-y", "-e", "trace=%file,%desc", "-o", str(out), "-p", str(os.getpid())],
                            stderr=subprocess.DEVNULL)
    time.sleep(0.7)  # attached
    return proc


def stop(proc: subprocess.Popen) -> None:
    time.sleep(0.3)
    proc.terminate()
    proc.wait(10)


def count(out: Path, root: Path) -> tuple[collections.Counter, collections.Counter]:
    """(operations per group, per (group, file)) on ``root`` in the trace ``out``."""
    groups: collections.Counter = collections.Counter()
    files: collections.Counter = collections.Counter()
    for line in out.read_text().splitlines():
        match = CALL.match(line)
        if match is None or "<..." in line:
            continue
        name, rest = match.groups()
        group = GROUP.get(name)
        if group is None:
            continue
        path = re.search(r'"([^"]+)"', rest) or re.search(r"<([^>]*)>", rest)
        if group == "stat" and '""' in rest and "AT_EMPTY_PATH" in rest:
            group = "fstat"  # on a descriptor: no lookup, but a request to Lustre's MDS still
        if path is None or not path.group(1).startswith(str(root)):
            continue
        where = path.group(1)[len(str(root)):] or "/"
        for pattern, folded in FOLD:
            where = re.sub(pattern, folded, where)
        groups[group] += 1
        files[(group, where)] += 1
    return groups, files


def report(label: str, out: Path, root: Path, trials: int) -> None:
    groups, files = count(out, root)
    total = sum(groups.values())
    print(f"== {label}: {total / trials:.2f} metadata operations per trial ({total} for {trials})")
    print("   " + ", ".join(f"{g} {n / trials:.2f}" for g, n in sorted(groups.items())))
    for (group, where), n in files.most_common():
        if n / trials >= 0.05:
            print(f"   {group:8s} {where:44s} {n / trials:5.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--running", type=int, default=100)
    parser.add_argument("--backend", choices=("slurm", "pool"), default="pool")
    parser.add_argument("--speed", type=float, default=10.0)
    parser.add_argument("--ends", action="store_true", help="also trace the rest of the run")
    args = parser.parse_args()
    if shutil.which("strace") is None:
        raise SystemExit("strace is needed")
    run = argparse.Namespace(trials=args.trials, running=args.running, duration=60.0, report_every=10.0,
                             speed=args.speed, scheduler="fifo", backend=args.backend, max_concurrent=None)
    root = Path(storage_dir("meta")) / "exp"
    traces = root.parent.parent / f"{root.parent.name}-traces"
    traces.mkdir()
    sim = SimHost(root, run.speed, run.running, run.duration, run.report_every)
    controller = driver_scale.build(run, root, sim)
    sim.clock.pause()
    proc = trace(traces / "create.txt")
    controller.step()  # creates and queues every trial (up to 10,000)
    stop(proc)
    sim.clock.resume()
    proc = trace(traces / "rest.txt") if args.ends else None
    while not controller.done:
        controller.step()
        sim.clock.sleep(controller.settings.tick_s)
    if proc is not None:
        stop(proc)
    sim.stop()
    report("create and queue", traces / "create.txt", root, args.trials)
    if args.ends:
        report("start, results and end", traces / "rest.txt", root, args.trials)
    shutil.rmtree(root.parent, ignore_errors=True)
    shutil.rmtree(traces, ignore_errors=True)


if __name__ == "__main__":
    main()
