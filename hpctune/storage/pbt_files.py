"""Ray's PBT files: ``pbt_global.txt`` (every exploit) and ``pbt_policy_<trial>.txt`` (a trial's).

One JSON list per line, as Ray writes it: ``[recipient tag, donor tag, recipient iteration,
donor iteration, donor config, new config]``. A recipient's policy file starts as a copy of
its donor's, so it holds the whole lineage of its config schedule;
``PopulationBasedTrainingReplay`` replays it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hpctune.errors import ConfigError
from hpctune.storage.atomic import write_bytes_atomic
from hpctune.storage.experiment import ExperimentDir, config_view
from hpctune.storage.secure import open_private


def policy_row(recipient_tag: str, donor_tag: str, step: int, donor_iteration: int,
               donor_config: dict[str, Any], new_config: dict[str, Any]) -> list[Any]:
    """One exploit in Ray's format (configs as their JSON views)."""
    return [recipient_tag, donor_tag, step, donor_iteration, config_view(donor_config),
            config_view(new_config)]


def record_exploit(exp: ExperimentDir, recipient: str, donor: str, row: list[Any]) -> None:
    """Append ``row`` to the global file and give the recipient the donor's policy plus ``row``.

    Safe to repeat after a driver crash: the policy file is rewritten whole (atomically),
    and a row already at the end of the global file is not appended again.
    """
    line = json.dumps(row, default=str) + "\n"
    donor_path = exp.pbt_policy_path(donor)
    inherited = donor_path.read_bytes() if donor_path.is_file() else b""
    write_bytes_atomic(exp.pbt_policy_path(recipient), inherited + line.encode(), fsync=False)
    if _last_line(exp.pbt_global_path) == line:
        return
    fd = open_private(exp.pbt_global_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    with open(fd, "ab") as f:
        f.write(line.encode())


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text().splitlines(keepends=True)
    except FileNotFoundError:
        return ""
    return lines[-1] if lines else ""


def read_policy_rows(path: str | os.PathLike) -> list[list[Any]]:
    """The rows of a policy file; ConfigError naming the file when it is missing or damaged."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"Policy file not found: {path}. Give the path of a pbt_policy_<trial>.txt "
                          "written by a PBT run with log_config=True.")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        if not isinstance(row, list) or len(row) != 6:
            raise ConfigError(f"Could not read PBT policy file {path}: line {number} is not a "
                              "JSON list of 6 fields [tag, donor tag, step, donor step, donor "
                              "config, new config].")
        rows.append(row)
    return rows
