"""HDF5 export of a synthetic experiment: size and time for N trials x R results.

Builds the experiment like ``cli_speed.py`` (17 reported keys per result, the worker's
auto-filled ones included), then times reading it (``hpctune.results.report.data.load_experiment``:
every result log, state.json) and writing the HDF5 file (``hpctune.results.hdf5.write_hdf5``),
and prints the file's size next to the result logs'.
    python bench/hdf5_export.py [--trials 1000] [--results 100] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from _common import storage_dir
from cli_speed import build

from hpctune.results.hdf5 import write_hdf5
from hpctune.results.report.data import load_experiment


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--results", type=int, default=100)
    parser.add_argument("--keep", action="store_true", help="keep the experiment and the file")
    args = parser.parse_args()
    base = Path(storage_dir("hdf5"))
    root = base / "big"
    start = time.perf_counter()
    build(root, args.trials, args.results)
    logs = sum(p.stat().st_size for p in root.glob("trials/*/result.jsonl"))
    print(f"built {args.trials} trials x {args.results} results in {time.perf_counter() - start:.1f} s "
          f"(result logs {logs / 2**20:.1f} MiB)")
    start = time.perf_counter()
    record = load_experiment(root)
    read_s = time.perf_counter() - start
    start = time.perf_counter()
    path = write_hdf5(record, base / "big.h5")
    write_s = time.perf_counter() - start
    size = path.stat().st_size
    print(f"read {read_s:.1f} s, wrote HDF5 in {write_s:.1f} s: {size / 2**20:.1f} MiB "
          f"({size / (args.trials * args.results):.0f} bytes per result, "
          f"{len(record.metric_keys())} keys per result)")
    if args.keep:
        print(f"kept {base}")
    else:
        shutil.rmtree(base)


if __name__ == "__main__":
    main()
