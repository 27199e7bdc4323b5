"""Trial schedulers: pure decision logic (CONTINUE / PAUSE / STOP) from results."""

from hpctune.schedulers.async_hyperband import ASHAScheduler, AsyncHyperBandScheduler
from hpctune.schedulers.median_stopping import MedianStoppingRule
from hpctune.schedulers.registry import create_scheduler
from hpctune.schedulers.trial_scheduler import Decision, FIFOScheduler, TrialScheduler

__all__ = [
    "ASHAScheduler",
    "AsyncHyperBandScheduler",
    "Decision",
    "FIFOScheduler",
    "MedianStoppingRule",
    "TrialScheduler",
    "create_scheduler",
]
