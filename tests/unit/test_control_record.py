"""The control record (``control.json``, driver -> job): one writer, one reader, a version."""

import json

import pytest

from hpctune.errors import ExperimentStateError
from hpctune.storage.control import (
    CONTROL_VERSION,
    ControlAction,
    ControlRecord,
    clear_control,
    read_control,
    write_control,
)
from hpctune.storage.events import SchemaError


@pytest.mark.parametrize("record", [ControlRecord.stop("asha", final=True), ControlRecord.stop("interrupted"),
                                    ControlRecord.pause()], ids=["final stop", "cancel", "pause"])
def test_a_record_reads_back_as_written(tmp_path, record):
    path = tmp_path / "control.json"
    write_control(path, record)
    assert read_control(path) == record
    on_disk = json.loads(path.read_text())
    assert on_disk["v"] == CONTROL_VERSION and on_disk["action"] == record.action.value


def test_the_kinds_of_request():
    stop, pause = ControlRecord.stop("why", final=True), ControlRecord.pause()
    assert stop.is_stop and not stop.is_pause and stop.reason == "why" and stop.final
    assert pause.is_pause and not pause.is_stop and pause.action is ControlAction.PAUSE
    assert ControlRecord.stop("ctrl+c").final is False  # a cancel: the driver decides what follows
    assert stop.time is not None


def test_no_file_is_no_request_and_clearing_is_idempotent(tmp_path):
    path = tmp_path / "control.json"
    assert read_control(path) is None
    write_control(path, ControlRecord.pause())
    clear_control(path)
    assert read_control(path) is None and not path.exists()
    clear_control(path)


@pytest.mark.parametrize("old, expected", [
    ({"action": "stop", "reason": "interrupted"}, ControlRecord(ControlAction.STOP, "interrupted", False, None, 1)),
    ({"action": "stop", "reason": "asha", "final": True, "time": 12.5},
     ControlRecord(ControlAction.STOP, "asha", True, 12.5, 1)),
    ({"action": "pause"}, ControlRecord(ControlAction.PAUSE, "", False, None, 1)),
], ids=["cancel", "final stop", "pause"])
def test_a_record_of_the_previous_hpctune_is_version_1(tmp_path, old, expected):
    """What every release before versioned records wrote (no "v"): a running job or a restored
    driver of the new version reads it as it was meant."""
    path = tmp_path / "control.json"
    path.write_text(json.dumps(old))
    assert read_control(path) == expected


@pytest.mark.parametrize("version", [CONTROL_VERSION + 1, "2", None, True])
def test_a_newer_or_unnumbered_record_is_refused(tmp_path, version):
    path = tmp_path / "control.json"
    path.write_text(json.dumps({"v": version, "action": "stop"}))
    with pytest.raises(SchemaError, match="control record .*upgrade hpctune"):
        read_control(path)


@pytest.mark.parametrize("content, why", [
    ("{not json", "not a JSON object"), ("[1, 2]", "not a JSON object"), ("null", "not a JSON object"),
    ('{"action": "resume"}', "'resume', not 'stop', 'pause' or 'proceed'"), ("{}", "None, not 'stop'"),
])
def test_a_file_that_is_no_control_record_names_the_file_and_the_fix(tmp_path, content, why):
    path = tmp_path / "control.json"
    path.write_text(content)
    with pytest.raises(ExperimentStateError) as error:
        read_control(path)
    assert str(path) in str(error.value) and why in str(error.value) and "Delete it" in str(error.value)
