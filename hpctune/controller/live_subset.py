"""The few live trials that may meet a condition, kept between the driver's steps.

Each step asks for the live trials without a job (``launching``) and for those whose stop
was decided (``enactor.cancel_stopped``): nearly always none of them. A pass over every live
trial reads each trial's record from memory, a millisecond or more a step at 10,000 live
trials, twenty steps a second. ``LiveSubset`` passes over them only when something may have
changed: a trial that was assigned to since the last look (``Trial`` joins the set of
``watch_assignments`` then: a trial changes only by assignments) and meets the condition now,
or met it then; or a change of the live count (a trial added or retired).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from hpctune.tune.experiment.trial import Trial, stop_watching, watch_assignments

if TYPE_CHECKING:
    from hpctune.controller.state import TrialTable


class LiveSubset:
    """The live trials that ``may`` meet a condition, in the table's order: a superset the
    caller checks again (it may hold a trial that no longer meets it, never miss one that
    does)."""

    def __init__(self, table: TrialTable, may: Callable[[Trial], bool]):
        self.table, self.may = table, may
        self._listed: list[Trial] | None = None
        self._set: set[Trial] = set()
        self._live = 0
        #: the trials assigned to since the last look
        self.assigned = watch_assignments()

    def trials(self) -> list[Trial]:
        """The live trials that may meet the condition, in the table's order."""
        live, listed, assigned, may = self.table.live, self._listed, self.assigned, self.may
        if (listed is None or not assigned.watching or len(live) != self._live
                or any(t in self._set or may(t) for t in assigned)):
            listed = [t for t in live.values() if may(t)]
            self._listed, self._set, self._live = listed, set(listed), len(live)
        assigned.clear()
        return [t for t in listed if live.get(t.trial_id) is t]

    def stop_watching(self) -> None:
        """The run ended: no more keeping track of assignments (a driver kept by its caller
        would hold every trial of later experiments); every look passes over the live trials."""
        stop_watching(self.assigned)
