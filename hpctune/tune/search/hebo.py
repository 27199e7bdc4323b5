"""HEBOSearch: not available. HEBO 0.3.6, its latest release, requires numpy<1.25, and
hpctune runs on numpy 2, so the two cannot be installed together. The class keeps Ray's
import path and says so when constructed, before anything runs.
"""

from __future__ import annotations

from typing import Any

from hpctune.errors import ConfigError

REASON = (
    "HEBOSearch is not available: HEBO 0.3.6, its latest release, requires numpy<1.25, "
    "which cannot be installed beside hpctune's numpy 2. Use HyperOptSearch or OptunaSearch "
    "(TPE), BayesOptSearch (Gaussian process) or NevergradSearch instead, or run HEBO in an "
    "environment of its own and pass its suggestions as points_to_evaluate.")


class HEBOSearch:
    """Ray Tune's ``HEBOSearch``; raises a ConfigError that says why and what to use."""

    def __init__(self, *args: Any, **kwargs: Any):
        raise ConfigError(REASON)
