"""Writes that a reader on the shared filesystem never sees half-done (tmp + fsync + rename).

The temporary file has an unpredictable name and is created with O_EXCL|O_NOFOLLOW, so a
link planted at a guessable name cannot redirect the write; it gets the directory's
policy mode (0600, or 0640 in an experiment shared with the group: see ``secure``).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from hpctune.storage.secure import file_mode_for


def write_bytes_atomic(path: str | Path, data: bytes, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never a mix."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with open(fd, "wb") as f:
            os.fchmod(fd, file_mode_for(path.parent))
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json_atomic(path: str | Path, obj: Any, fsync: bool = True, indent: int | None = 1) -> None:
    write_bytes_atomic(path, json.dumps(obj, indent=indent, default=str).encode(), fsync=fsync)


def read_json(path: str | Path, default: Any = None) -> Any:
    """Read a JSON file; ``default`` when it does not exist."""
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except FileNotFoundError:
        return default
