"""Search algorithms: random/grid (default), Optuna, ConcurrencyLimiter, Repeater."""

from hpctune.search.searcher import Searcher

__all__ = ["Searcher"]
