"""hpctune's exceptions: one root, a few kinds, messages that name the problem and the fix."""

from __future__ import annotations


class HpctuneError(Exception):
    """Root of every error hpctune raises on purpose."""


class ConfigError(HpctuneError, ValueError):
    """A user-supplied setting is invalid (TuneConfig, RunConfig, SlurmConfig, resources...)."""


class SearchSpaceError(ConfigError):
    """The search space is invalid: bad bounds, empty choice, a cycle between sample_from's."""


class SlurmCommandError(HpctuneError):
    """A Slurm command (sbatch, squeue, sacct, scancel, scontrol) failed."""

    def __init__(self, command: list[str], returncode: int, stdout: str, stderr: str, hint: str = ""):
        self.command = command
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.hint = hint
        lines = [
            f"Slurm command failed (exit {returncode}): {' '.join(command)}",
            f"stderr: {stderr.strip() or '<empty>'}",
        ]
        if stdout.strip():
            lines.append(f"stdout: {stdout.strip()}")
        if hint:
            lines.append(f"fix: {hint}")
        super().__init__("\n".join(lines))


class ExperimentLockedError(HpctuneError):
    """Another driver is already running the experiment in this directory."""


class TrainableError(ConfigError):
    """The trainable cannot be used: not callable, not picklable, wrong signature."""


class TuneError(HpctuneError):
    """The experiment failed as a whole (for example FailureConfig(fail_fast='raise'))."""


class DistributedError(HpctuneError):
    """The ranks of a multi-task trial cannot be joined (an MPI without Slurm's plugin, a first
    node without an address)."""


class UnsafeFileError(HpctuneError):
    """An experiment file or directory that someone other than you could have written: not
    owned by you, group- or world-writable, or a symbolic link where a file must be."""


class ExperimentStateError(HpctuneError):
    """An experiment's saved state is missing or damaged, so it cannot be continued safely."""


class StorageError(ConfigError):
    """The storage path cannot hold an experiment (no working locks, not writable, ...)."""


class ReportError(HpctuneError, TypeError):
    """``report()`` got a metric value the result log cannot hold exactly (a Decimal, a datetime,
    an object): refused, never turned into a string."""


class StorageFullError(HpctuneError, OSError):
    """The filesystem holding the experiment is full or read-only (ENOSPC, EDQUOT, EROFS):
    nothing written so far is lost; free space, then resume the experiment.

    Also an ``OSError`` (with the original ``errno``), so that code which already handles
    failed writes keeps doing so."""

    def __init__(self, path: str, experiment: str, reason: str = "", errno: int | None = None):
        self.path, self.experiment, self.reason = str(path), str(experiment), reason
        why = f" ({reason})" if reason else ""
        super().__init__(f"the filesystem holding {path} is full (or read-only); nothing written "
                         f"so far is lost; free space, then `hpctune resume {experiment}`{why}")
        self.errno = errno

    def __reduce__(self) -> tuple:
        return type(self), (self.path, self.experiment, self.reason, self.errno)
