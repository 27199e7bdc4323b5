"""Ray-style per-trial files for people: params.json, result.json (JSON lines), progress.csv."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from hpctune.storage.result_log import read_events


def trial_results(trial_dir: Path) -> list[dict[str, Any]]:
    """Every reported result of a trial, in order, from its result log."""
    return [e["result"] for e in read_events(trial_dir / "result.jsonl") if e.get("event") == "result"]


def write_user_files(trial_dir: Path, config: dict[str, Any]) -> None:
    """Write result.json and progress.csv once the trial has ended (one pass over the log)."""
    results = trial_results(trial_dir)
    with open(trial_dir / "result.json", "w") as f:
        for result in results:
            f.write(json.dumps({**result, "config": config}, default=str) + "\n")
    columns: dict[str, None] = {}
    for result in results:
        columns.update(dict.fromkeys(k for k, v in result.items() if not isinstance(v, (dict, list))))
    with open(trial_dir / "progress.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(results)
