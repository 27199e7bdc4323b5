"""Trial schedulers: pure decision logic (CONTINUE / PAUSE / STOP / Exploit) from results."""

from hpctune.schedulers.async_hyperband import ASHAScheduler, AsyncHyperBandScheduler
from hpctune.schedulers.hyperband import HyperBandScheduler
from hpctune.schedulers.median_stopping import MedianStoppingRule
from hpctune.schedulers.pb2 import PB2
from hpctune.schedulers.pbt import PopulationBasedTraining
from hpctune.schedulers.pbt_replay import PopulationBasedTrainingReplay
from hpctune.schedulers.registry import create_scheduler
from hpctune.schedulers.trial_scheduler import Decision, Exploit, FIFOScheduler, TrialScheduler

__all__ = [
    "ASHAScheduler",
    "AsyncHyperBandScheduler",
    "Decision",
    "Exploit",
    "FIFOScheduler",
    "HyperBandScheduler",
    "MedianStoppingRule",
    "PB2",
    "PopulationBasedTraining",
    "PopulationBasedTrainingReplay",
    "TrialScheduler",
    "create_scheduler",
]
