"""The worker pool (``TuneConfig(reuse_actors=True)`` on Slurm): pool tasks that run trial after
trial from a queue on the shared filesystem, each trial in a clean process of its own."""
