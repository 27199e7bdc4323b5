"""Ray's ``ray.tune.experiment``: the trial as the driver records it."""

from hpctune.tune.experiment.trial import Trial

__all__ = ["Trial"]
