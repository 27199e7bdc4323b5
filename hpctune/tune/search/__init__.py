"""Search algorithms: random/grid (default), Optuna, ConcurrencyLimiter, Repeater.

``OptunaSearch`` lives in ``hpctune.tune.search.optuna`` so that this package imports
without optuna installed.
"""

from hpctune.tune.search.basic_variant import BasicVariantGenerator
from hpctune.tune.search.concurrency_limiter import ConcurrencyLimiter
from hpctune.tune.search.registry import create_searcher
from hpctune.tune.search.repeater import Repeater
from hpctune.tune.search.searcher import Searcher

__all__ = ["BasicVariantGenerator", "ConcurrencyLimiter", "Repeater", "Searcher", "create_searcher"]
