"""The driver's snapshot: a missing or damaged one never silently starts an experiment over."""

import pickle

import pytest

from hpctune.errors import ExperimentStateError
from hpctune.storage.driver_state import load_driver_state, save_driver_state
from hpctune.storage.experiment import ExperimentDir


@pytest.fixture
def exp(tmp_path):
    exp = ExperimentDir(tmp_path / "e")
    exp.create()
    return exp


def test_round_trip(exp):
    save_driver_state(exp, {"trials": [], "searcher": {"a": 1}})
    assert load_driver_state(exp) == {"trials": [], "searcher": {"a": 1}}


def test_missing_before_anything_ran_is_a_fresh_start(exp):
    exp.write_params("t_00000", {"x": 1})  # created, never launched
    assert load_driver_state(exp) is None


def test_missing_after_trials_ran_is_a_clear_error(exp):
    exp.write_params("t_00000", {"x": 1})
    exp.result_log_path("t_00000").write_text('{"event": "start"}\n')
    with pytest.raises(ExperimentStateError, match="missing, but 1 trials .* have run"):
        load_driver_state(exp)


@pytest.mark.parametrize("content", [b"", b"\x80\x04garbage", pickle.dumps(["not", "a", "snapshot"])],
                         ids=["empty", "torn", "foreign"])
def test_damaged_is_a_clear_error(exp, content):
    exp.driver_state_path.write_bytes(content)
    exp.driver_state_path.chmod(0o600)
    with pytest.raises(ExperimentStateError, match="damaged|not a driver snapshot"):
        load_driver_state(exp)
