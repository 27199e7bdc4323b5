"""Checkpoints are persisted atomically into the trial directory."""

from hpctune.checkpoint import Checkpoint, latest_checkpoint, persist_checkpoint


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
