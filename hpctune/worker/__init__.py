"""What runs inside a Slurm job (or a local process): ``python -m hpctune.worker``.

``run`` loads the trial and runs the trainable; ``session`` is what ``tune.report`` talks to;
``exit_guard`` and ``output`` keep a stuck or crashing trainable observable. Imports only
``core``, ``storage`` and ``errors`` of hpctune: a job starts without numpy, pandas or the
driver.
"""
