"""Checkpoints are persisted atomically into the trial directory; retention keeps the best."""

from hpctune.core.checkpoint import Checkpoint
from hpctune.storage.checkpoints import (
    checkpoint_iteration,
    checkpoints_to_delete,
    latest_checkpoint,
    persist_checkpoint,
)


def test_persist_and_find_latest(tmp_path):
    trial_dir = tmp_path / "trial"
    trial_dir.mkdir()
    for step in (1, 2):
        src = tmp_path / f"src{step}"
        src.mkdir()
        (src / "state.txt").write_text(str(step))
        persist_checkpoint(src, trial_dir, step)
    latest = latest_checkpoint(trial_dir)
    assert latest.name == "checkpoint_000002"
    assert (latest / "state.txt").read_text() == "2"
    assert not [p for p in trial_dir.iterdir() if p.name.startswith(".")]


def test_the_latest_checkpoint_is_the_highest_iteration_of_a_checkpoint_name(tmp_path):
    for name in ("checkpoint_999999", "checkpoint_1000000", "checkpoint_old", "checkpoint_000007"):
        (tmp_path / name).mkdir()
    assert latest_checkpoint(tmp_path).name == "checkpoint_1000000"  # not the last by name
    assert [checkpoint_iteration(n) for n in ("checkpoint_000007", "checkpoint_old", "x")] == [7, -1, -1]
    (tmp_path / "checkpoint_1000000").rmdir()
    (tmp_path / "checkpoint_999999").rmdir()
    assert latest_checkpoint(tmp_path).name == "checkpoint_000007"  # "checkpoint_old" is none


def test_replacing_a_checkpoint_keeps_one_complete_copy(tmp_path):
    trial_dir = tmp_path / "trial"
    trial_dir.mkdir()
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("old")
    persist_checkpoint(src, trial_dir, 3)
    (src / "f").write_text("new")
    persist_checkpoint(src, trial_dir, 3)
    assert (trial_dir / "checkpoint_000003" / "f").read_text() == "new"


def test_to_directory_copies(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "weights").write_text("w")
    ckpt = Checkpoint.from_directory(src)
    out = ckpt.to_directory(tmp_path / "copy")
    assert (tmp_path / "copy" / "weights").read_text() == "w"
    assert out == str(tmp_path / "copy")
    with ckpt.as_directory() as d:
        assert d == str(src.resolve())


# -- retention: checkpoints_to_delete ----------------------------------------------------------
WRITTEN = [("c1", 0.5), ("c2", 0.9), ("c3", 0.1), ("c4", 0.3)]  # in the order written; c4 latest


def test_retention_by_score_max_deletes_the_lowest_scores_first():
    """order="max": the best K (highest) are kept, and the latest whatever its score (Ray)."""
    assert checkpoints_to_delete(WRITTEN, 2, "max", by_score=True) == ["c3"]
    assert checkpoints_to_delete(WRITTEN, 3, "max", by_score=True) == ["c3"]
    assert checkpoints_to_delete(WRITTEN, 1, "max", by_score=True) == ["c1", "c3"]


def test_retention_by_score_min_deletes_the_highest_scores_first():
    assert checkpoints_to_delete(WRITTEN, 2, "min", by_score=True) == ["c1", "c2"]
    assert checkpoints_to_delete(WRITTEN, 3, "min", by_score=True) == ["c2"]


def test_retention_without_a_score_deletes_the_oldest_first():
    assert checkpoints_to_delete(WRITTEN, 2) == ["c1", "c2"]
    assert checkpoints_to_delete(WRITTEN, 2, "min") == ["c1", "c2"]


def test_a_checkpoint_without_a_score_counts_as_worst():
    written = [("c1", 0.5), ("c2", None), ("c3", 0.1), ("c4", 0.7)]
    assert checkpoints_to_delete(written, 3, "max", by_score=True) == ["c2"]
    assert checkpoints_to_delete(written, 3, "min", by_score=True) == ["c2"]


def test_nothing_is_deleted_within_num_to_keep():
    assert checkpoints_to_delete(WRITTEN, None, by_score=True) == []
    assert checkpoints_to_delete(WRITTEN, 4, by_score=True) == []
    assert checkpoints_to_delete(WRITTEN, 5) == []


def test_the_latest_checkpoint_is_kept_even_when_it_is_the_worst():
    written = [("c1", 0.9), ("c2", 0.8), ("c3", 0.1)]
    assert checkpoints_to_delete(written, 1, "max", by_score=True) == ["c2"]
    assert checkpoints_to_delete(written, 2, "max", by_score=True) == []  # the best 2 and the latest


def test_the_best_checkpoint_is_never_deleted_to_keep_the_latest():
    """Ray keeps the best ``num_to_keep`` plus the latest: (0.9, 0.3) with num_to_keep=1 keeps both."""
    assert checkpoints_to_delete([("c1", 0.9), ("c2", 0.3)], 1, "max", by_score=True) == []
    assert checkpoints_to_delete([("c1", 0.9), ("c2", 0.3), ("c3", 0.5)], 1, "max", by_score=True) == ["c2"]
    assert checkpoints_to_delete([("c1", 0.9), ("c2", 0.3), ("c3", 0.95)], 1, "max", by_score=True) == ["c1", "c2"]
