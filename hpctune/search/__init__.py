"""Search algorithms: random/grid (default), Optuna, ConcurrencyLimiter, Repeater.

``OptunaSearch`` lives in ``hpctune.search.optuna`` so that this package imports
without optuna installed.
"""

from hpctune.search.basic_variant import BasicVariantGenerator
from hpctune.search.concurrency_limiter import ConcurrencyLimiter
from hpctune.search.registry import create_searcher
from hpctune.search.repeater import Repeater
from hpctune.search.searcher import Searcher

__all__ = ["BasicVariantGenerator", "ConcurrencyLimiter", "Repeater", "Searcher", "create_searcher"]
