"""Trial schedulers: pure decision logic (CONTINUE / PAUSE / STOP / Exploit) from results."""

from hpctune.tune.schedulers.async_hyperband import ASHAScheduler, AsyncHyperBandScheduler
from hpctune.tune.schedulers.hb_bohb import HyperBandForBOHB
from hpctune.tune.schedulers.hyperband import HyperBandScheduler
from hpctune.tune.schedulers.median_stopping import MedianStoppingRule
from hpctune.tune.schedulers.pb2 import PB2
from hpctune.tune.schedulers.pbt import PopulationBasedTraining
from hpctune.tune.schedulers.pbt_replay import PopulationBasedTrainingReplay
from hpctune.tune.schedulers.registry import create_scheduler
from hpctune.tune.schedulers.resource_changing_scheduler import (
    DistributeResources,
    DistributeResourcesToTopJob,
    PlacementGroupFactory,
    ResourceChangingScheduler,
)
from hpctune.tune.schedulers.trial_scheduler import (
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
    "HyperBandForBOHB",
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
