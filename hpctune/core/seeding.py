"""Seeds for decision logic that the user did not seed: drawn once, when a scheduler is made,
from Python's module-level ``random`` (what ``random.seed`` sets), as Ray's schedulers draw.

Kept out of the schedulers' modules: their decisions use only the generator made from this
seed, never a global random state (``tests/unit/test_decision_purity.py``).
"""

from __future__ import annotations

import random


def root_seed(seed: int | None) -> int:
    """``seed``, else a draw from Python's module-level ``random``."""
    return random.getrandbits(64) if seed is None else seed
