"""AxSearch: not available in this version. Ax (ax-platform) installs beside hpctune, with
BoTorch and PyTorch, but hpctune has no adapter for it yet. The class keeps Ray's import path
and says so when constructed, before anything runs.
"""

from __future__ import annotations

from typing import Any

from hpctune.errors import ConfigError

REASON = (
    "AxSearch is not available in this version of hpctune: there is no adapter for Ax yet. "
    "Use BayesOptSearch (a Gaussian process, like Ax's default), OptunaSearch or "
    "HyperOptSearch instead.")


class AxSearch:
    """Ray Tune's ``AxSearch``; raises a ConfigError that says why and what to use."""

    def __init__(self, *args: Any, **kwargs: Any):
        raise ConfigError(REASON)
