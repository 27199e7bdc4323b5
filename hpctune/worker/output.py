"""``RunConfig(log_to_file=...)``: each trial's stdout and stderr in files of its directory.

The driver writes the option into ``experiment.json`` (``output_files``: the field
``log_to_file``, a pair of names or null); the worker calls ``redirect_output`` once the
trial has started, which points file descriptors 1 and 2 at those files with ``dup2``, so
``print``, ``warnings``, ``logging`` and child processes all land there. As in Ray:

* ``True``: ``stdout`` and ``stderr`` in the trial directory;
* ``"name"``: both streams into that one file;
* ``("out", "err")``: the two files.

Relative names are relative to the trial directory; absolute ones are used as they are.
Without the option the trial's output goes to its job's log (``hpctune logs``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from hpctune.storage.secure import make_private_dir, open_private

#: the field of experiment.json the worker reads
SPEC_FIELD = "log_to_file"
RAY_DEFAULT_NAMES = ("stdout", "stderr")


def output_files(option: Any) -> list[str] | None:
    """The option as ``[stdout name, stderr name]``; None when the output is not redirected."""
    if option is None or option is False:
        return None
    if option is True:
        return list(RAY_DEFAULT_NAMES)
    if isinstance(option, (str, os.PathLike)):
        return [os.fspath(option)] * 2
    out, err = option
    return [os.fspath(out), os.fspath(err)]


def redirect_output(trial_dir: str | os.PathLike, spec: dict[str, Any]) -> list[str] | None:
    """In the worker: send this process's stdout and stderr (file descriptors 1 and 2) to the
    files that ``spec["log_to_file"]`` names; returns their paths, or None when not asked.

    Files are appended to (a restarted trial adds to them) and created private like the
    rest of the trial directory; the same name for both streams opens one file.
    """
    names = spec.get(SPEC_FIELD)
    if not names:
        return None
    paths = [str(Path(trial_dir) / name) if not os.path.isabs(name) else name for name in names]
    sys.stdout.flush()
    sys.stderr.flush()
    opened: dict[str, int] = {}
    try:
        for target, path in zip((1, 2), paths, strict=True):
            if path not in opened:
                make_private_dir(Path(path).parent)
                opened[path] = open_private(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            os.dup2(opened[path], target)
    finally:
        for fd in opened.values():
            os.close(fd)
    return paths
