"""Allocation accounting: what an experiment may cost before it runs (``estimate``) and the
inputs gathered from a Tuner (``from_tuner``). Runs in the driver and the CLI, never in a job."""
