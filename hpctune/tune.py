"""``from hpctune import tune``: the names of ``ray.tune``, so a script moves by one import line."""

from hpctune import schedulers, search, stopper
from hpctune.callbacks import Callback
from hpctune.checkpoint import Checkpoint
from hpctune.config import CheckpointConfig, FailureConfig, RunConfig, SlurmConfig, TuneConfig
from hpctune.errors import TuneError
from hpctune.results import Result, ResultGrid
from hpctune.session import get_checkpoint, get_context, report
from hpctune.space import (
    choice,
    grid_search,
    lograndint,
    loguniform,
    qlograndint,
    qloguniform,
    qrandint,
    qrandn,
    quniform,
    randint,
    randn,
    sample_from,
    uniform,
)
from hpctune.stoppers import Stopper
from hpctune.trainable import Trainable, with_parameters, with_resources
from hpctune.tuner import Tuner

__all__ = [
    "Callback", "Checkpoint", "CheckpointConfig", "FailureConfig", "Result", "ResultGrid",
    "RunConfig", "SlurmConfig", "Stopper", "Trainable", "TuneConfig", "TuneError", "Tuner",
    "choice", "get_checkpoint", "get_context", "grid_search", "lograndint", "loguniform",
    "qlograndint", "qloguniform", "qrandint", "qrandn", "quniform", "randint", "randn", "report",
    "sample_from", "schedulers", "search", "stopper", "uniform", "with_parameters", "with_resources",
]
