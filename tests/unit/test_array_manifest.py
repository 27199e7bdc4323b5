"""The array manifest: which trial each array task runs, versioned, one reader and one writer."""

import pytest

from hpctune.errors import ExperimentStateError
from hpctune.storage.array_manifest import read_array_manifest, trial_of_task, write_array_manifest
from hpctune.storage.events import SchemaError


def test_each_task_reads_its_own_trial(tmp_path):
    path = tmp_path / "array_x.trials"
    write_array_manifest(path, ["e_00000", "e_00001", "e_00002"])
    assert path.read_text().splitlines()[0] == "#hpctune-array-manifest v2"
    assert read_array_manifest(path) == ["e_00000", "e_00001", "e_00002"]
    assert [trial_of_task(path, i) for i in ("0", "1", "2")] == ["e_00000", "e_00001", "e_00002"]


def test_a_manifest_of_0_1_without_a_header_is_still_read(tmp_path):
    """An array queued before the upgrade: trial ids alone, task 0 on the first line."""
    path = tmp_path / "array_x.trials"
    path.write_text("e_00000\ne_00001\n")
    assert trial_of_task(path, "1") == "e_00001"


def test_a_task_without_a_trial_is_a_clear_error(tmp_path):
    path = tmp_path / "array_x.trials"
    write_array_manifest(path, ["e_00000"])
    with pytest.raises(ExperimentStateError, match="array task 1 has none"):
        trial_of_task(path, "1")


def test_a_manifest_of_a_newer_hpctune_is_refused(tmp_path):
    path = tmp_path / "array_x.trials"
    path.write_text("#hpctune-array-manifest v3\ne_00000\n")
    with pytest.raises(SchemaError, match="newer hpctune"):
        read_array_manifest(path)
