"""``from hpctune import train``: the names of ``ray.train`` that Tune scripts use."""

from hpctune.checkpoint import Checkpoint
from hpctune.config import CheckpointConfig, FailureConfig, RunConfig
from hpctune.results import Result
from hpctune.session import get_checkpoint, get_context, report

__all__ = [
    "Checkpoint", "CheckpointConfig", "FailureConfig", "Result", "RunConfig",
    "get_checkpoint", "get_context", "report",
]
