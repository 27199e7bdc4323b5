"""The driver's snapshot for resuming (pickled searcher/scheduler state) and Ctrl+C handling."""

from __future__ import annotations

import contextlib
import pickle
import signal
import threading
from collections.abc import Iterator
from typing import Any

from hpctune.storage.atomic import write_bytes_atomic
from hpctune.storage.experiment import ExperimentDir


def save_driver_state(exp: ExperimentDir, state: dict[str, Any]) -> None:
    """Atomically replace the snapshot a restored driver starts from."""
    write_bytes_atomic(exp.driver_state_path, pickle.dumps(state), fsync=False)


def load_driver_state(exp: ExperimentDir) -> dict[str, Any] | None:
    path = exp.driver_state_path
    if not path.exists():
        return None
    with open(path, "rb") as f:
        return pickle.load(f)


@contextlib.contextmanager
def interrupt_flag() -> Iterator[threading.Event]:
    """The first Ctrl+C sets the flag (the loop ends at a clean point); the second raises."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: Any) -> None:
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)
