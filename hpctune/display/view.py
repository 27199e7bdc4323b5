"""``StatusView``: the read-only view of a run that displays consume.

The driver builds one per report (``Controller.view()``); ``hpctune status`` builds one
from the experiment's files. Reporters, the live table and the CLI read only this.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hpctune.tune.experiment.trial import Trial


@dataclass
class StatusView:
    """Everything the status display shows about a run."""

    trials: list[Trial]
    experiment_dir: str = ""
    scheduler: str | None = None
    metric: str | None = None
    mode: str | None = None
    slurm_commands: dict[str, int] = field(default_factory=dict)
    elapsed_s: float | None = None
    state: str | None = None
    driver: str | None = None
    updated: float | None = None
    #: True once the run has ended (no live trial and nothing left to start)
    done: bool = False
    #: the allocation used, the budget, fair-share (``accounting/usage.usage_lines``): the footer
    allocation: list[str] = field(default_factory=list)
