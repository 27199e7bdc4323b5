"""One driver per experiment directory (``.driver.lock``): a dead driver's lock is released by the OS."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hpctune.errors import ExperimentLockedError

if TYPE_CHECKING:
    from hpctune.storage.experiment import ExperimentDir


class experiment_lock:  # noqa: N801 - used as a context manager, reads like one
    """One driver per experiment directory; a dead driver's lock is released by the OS."""

    def __init__(self, exp: ExperimentDir):
        from filelock import FileLock, Timeout

        self._timeout = Timeout
        self.path = exp.lock_path
        self.lock = FileLock(str(self.path), mode=0o600)

    def __enter__(self) -> experiment_lock:
        try:
            self.lock.acquire(timeout=0)
        except self._timeout as exc:
            raise ExperimentLockedError(
                f"Another driver is running the experiment in {self.path.parent} (lock {self.path}). "
                "Wait for it to finish, or stop it first; two drivers would corrupt the experiment."
            ) from exc
        return self

    def __exit__(self, *exc: Any) -> None:
        self.lock.release()
