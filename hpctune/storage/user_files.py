"""Ray-style per-trial files for people: result.json (JSON lines) and progress.csv."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

from hpctune.storage.experiment import PROGRESS_CSV_FILE, RESULT_JSON_FILE, RESULT_LOG_FILE
from hpctune.storage.replay import trial_results
from hpctune.storage.secure import open_private

_REWRITE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC


def write_user_files(trial_dir: Path, config: dict[str, Any]) -> None:
    """Write result.json and progress.csv once the trial has ended (one pass over the log)."""
    results = trial_results(trial_dir / RESULT_LOG_FILE)
    with open(open_private(trial_dir / RESULT_JSON_FILE, _REWRITE), "w") as f:
        for result in results:
            f.write(json.dumps({**result, "config": config}, default=str) + "\n")
    columns: dict[str, None] = {}
    for result in results:
        columns.update(dict.fromkeys(k for k, v in result.items() if not isinstance(v, (dict, list))))
    with open(open_private(trial_dir / PROGRESS_CSV_FILE, _REWRITE), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(results)
