"""Search-space primitives (Ray Tune's ``uniform`` ... ``grid_search``) and how they resolve.

A param_space is a nested dict/list whose leaves are constants, ``Domain`` objects
(sampled once per trial) or ``grid_search`` markers (one trial per value). Everything
here is pure: sampling takes an injected ``numpy.random.Generator``; no Slurm, no files.
``domains`` defines the primitives, ``sample_from`` the computed values, ``resolve`` turns a space into configs, ``validate``
checks a space before anything is submitted.
"""

from hpctune.space.domains import (
    FLOAT_SAMPLERS,
    GRID_SEARCH,
    INTEGER_SAMPLERS,
    Categorical,
    Domain,
    Float,
    Integer,
    choice,
    format_path,
    grid_search,
    is_grid_search,
    lograndint,
    loguniform,
    qlograndint,
    qloguniform,
    qrandint,
    qrandn,
    quniform,
    randint,
    randn,
    uniform,
)
from hpctune.space.resolve import (
    count_grid_variants,
    grid_variables,
    grid_variant,
    resolve_config,
    sampled_paths,
)
from hpctune.space.sample_from import Function, Spec, UnresolvedValueError, sample_from
from hpctune.space.validate import format_experiment_tag, validate_space

__all__ = [
    "FLOAT_SAMPLERS", "GRID_SEARCH", "INTEGER_SAMPLERS", "Categorical", "Domain", "Float",
    "Function", "Integer", "Spec", "UnresolvedValueError", "choice", "count_grid_variants",
    "format_experiment_tag", "format_path", "grid_search", "grid_variables", "grid_variant",
    "is_grid_search", "lograndint", "loguniform", "qlograndint", "qloguniform", "qrandint",
    "qrandn", "quniform", "randint", "randn", "resolve_config", "sample_from", "sampled_paths",
    "uniform", "validate_space",
]
