"""Reading an experiment after (or while) it runs: ResultGrid, ExperimentAnalysis, exports, report."""

from hpctune.results.grid import Result, ResultGrid

__all__ = ["Result", "ResultGrid"]
