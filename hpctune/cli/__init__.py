"""The ``hpctune`` command line (entry point: ``hpctune.cli.main:main``).

Layers, each importing only those below it (no command module imports another):

* ``main``: the argument parser; registers every command and dispatches;
* command modules, one per group: ``submit`` (submit, resume), ``inspect`` (ls, status,
  best), ``trials``, ``logs``, ``cancel``, ``profiles``;
* ``driver``: what runs the driver (foreground, or the detached job
  ``python -m hpctune.cli.driver``), used by ``submit``;
* ``plan`` (a submission resolved, and its file) and ``common`` (finding experiments and
  trials, describing their state): shared by the commands.

Paths inside an experiment directory come from ``hpctune.storage.experiment.ExperimentDir``;
every Slurm command goes through ``hpctune.backends.slurm_limits.shared_commands()``.
"""
