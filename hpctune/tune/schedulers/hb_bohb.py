"""HyperBandForBOHB: HyperBand for BOHB's searcher (Ray Tune's ``HyperBandForBOHB``).

BOHB (Falkner et al. 2018) runs HyperBand's brackets with configurations from ``TuneBOHB``.
As Ray's version, each band fills its most aggressive bracket first (the most trials on the
smallest budget), so that the searcher soon has many results on a small budget to model;
trials pause at their bracket's milestones and the bracket is halved as in
``HyperBandScheduler``. Since the searcher suggests whenever a slot frees, a paused trial's
slot goes to a new configuration at once.
"""

from __future__ import annotations

from hpctune.tune.schedulers.hyperband import HyperBandScheduler


class HyperBandForBOHB(HyperBandScheduler):
    """HyperBand that fills the largest bracket first; use with ``TuneBOHB``.

    Args (as Ray's): ``time_attr``, ``metric``, ``mode``, ``max_t``, ``reduction_factor``,
    ``stop_last_trials``: see ``HyperBandScheduler``.
    """

    def _bracket_s(self, position: int) -> int:
        return self._s_max_1 - 1 - position
