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


class UnsafeFileError(HpctuneError):
    """An experiment file or directory that someone other than you could have written: not
    owned by you, group- or world-writable, or a symbolic link where a file must be."""


class ExperimentStateError(HpctuneError):
    """An experiment's saved state is missing or damaged, so it cannot be continued safely."""


class StorageError(ConfigError):
    """The storage path cannot hold an experiment (no working locks, not writable, ...)."""
