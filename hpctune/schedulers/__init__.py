"""Trial schedulers: pure decision logic (CONTINUE / PAUSE / STOP / Exploit) from results."""

from hpctune.schedulers.async_hyperband import ASHAScheduler, AsyncHyperBandScheduler
from hpctune.schedulers.hyperband import HyperBandScheduler
from hpctune.schedulers.median_stopping import MedianStoppingRule
from hpctune.schedulers.pb2 import PB2
from hpctune.schedulers.pbt import PopulationBasedTraining
from hpctune.schedulers.pbt_replay import PopulationBasedTrainingReplay
from hpctune.schedulers.registry import create_scheduler
from hpctune.schedulers.resource_changing_scheduler import (
    DistributeResources,
    DistributeResourcesToTopJob,
    PlacementGroupFactory,
    ResourceChangingScheduler,
)
from hpctune.schedulers.trial_scheduler import (
    ChangeResources,
    Decision,
    Exploit,
    FIFOScheduler,
    TrialScheduler,
)

__all__ = [
    "ASHAScheduler",
    "AsyncHyperBandScheduler",
    "ChangeResources",
    "Decision",
    "DistributeResources",
    "DistributeResourcesToTopJob",
    "Exploit",
    "FIFOScheduler",
    "HyperBandScheduler",
    "MedianStoppingRule",
    "PB2",
    "PlacementGroupFactory",
    "PopulationBasedTraining",
    "PopulationBasedTrainingReplay",
    "ResourceChangingScheduler",
    "TrialScheduler",
    "create_scheduler",
]
