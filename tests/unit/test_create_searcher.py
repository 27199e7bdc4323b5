"""create_searcher: names map to searchers; unknown names list the valid ones."""

from __future__ import annotations

import pytest

from hpctune.errors import ConfigError
from hpctune.tune.search import create_searcher
from hpctune.tune.search.optuna import OptunaSearch


def test_optuna_by_name_with_kwargs():
    searcher = create_searcher("optuna", metric="loss", mode="max", seed=3)
    assert isinstance(searcher, OptunaSearch)
    assert (searcher.metric, searcher.mode) == ("loss", "max")
    assert isinstance(create_searcher(" Optuna "), OptunaSearch)


@pytest.mark.parametrize("name", ["random", "variant_generator", "basic_variant"])
def test_random_search_names(name):
    from hpctune.tune.search.basic_variant import BasicVariantGenerator

    assert isinstance(create_searcher(name), BasicVariantGenerator)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="'smac'.*ax, basic_variant, bayesopt, bohb, hebo, "
                                          "hyperopt, nevergrad, optuna, random"):
        create_searcher("smac")
