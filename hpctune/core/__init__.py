"""Vocabulary shared by the driver and the jobs: metrics, objectives, checks, resources, checkpoints.

Imports nothing of hpctune but ``errors`` and itself: the worker inside every Slurm job loads
it, so it stays free of numpy, pandas and driver modules.
"""
