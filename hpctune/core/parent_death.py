"""The signal a process asks the kernel for when its parent dies (Linux ``PR_SET_PDEATHSIG``).

A trial started by a driver or a pool task asks for one, so that it does not outlive the
process that would have ended it (``backends/local.py``, ``pool/child.py``); the worker's exit
guard reads and sharpens it (``exit_guard.py``). Standard library only, and safe between fork
and exec (a ``preexec_fn``): the C library is looked up when this module is imported, not in
the child. Elsewhere than Linux there is no such signal: setting does nothing, reading gives 0.
"""

from __future__ import annotations

import contextlib
import ctypes
import sys

_PR_SET_PDEATHSIG, _PR_GET_PDEATHSIG = 1, 2


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_LIBC = _libc()


def set_parent_death_signal(signum: int) -> None:
    """Get ``signum`` when this process's parent dies (it lasts across exec, not across fork)."""
    if _LIBC is not None:
        with contextlib.suppress(AttributeError):  # a C library without prctl
            _LIBC.prctl(_PR_SET_PDEATHSIG, ctypes.c_ulong(int(signum)), 0, 0, 0)


def parent_death_signal() -> int:
    """The signal this process gets when its parent dies; 0 when none was asked for."""
    if _LIBC is None:
        return 0
    value = ctypes.c_int(0)
    try:
        _LIBC.prctl(_PR_GET_PDEATHSIG, ctypes.byref(value), 0, 0, 0)
    except AttributeError:
        return 0
    return value.value
