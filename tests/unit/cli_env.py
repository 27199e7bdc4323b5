"""The environment every CLI test runs in, and ``run``: import both into a test module.

``cli_env`` is autouse: imported, it applies to every test of the importing module."""

import pytest

from hpctune.cli.main import main


@pytest.fixture(autouse=True)
def cli_env(tmp_path, monkeypatch):
    """Local backend, storage and config under tmp_path, no site profiles, private modes."""
    monkeypatch.setenv("HPCTUNE_BACKEND", "local")
    monkeypatch.setenv("HPCTUNE_STORAGE_PATH", str(tmp_path / "results"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("HPCTUNE_PROFILE_PATH", raising=False)
    monkeypatch.delenv("HPCTUNE_SHARE_WITH_GROUP", raising=False)
    monkeypatch.chdir(tmp_path)


def run(capsys, *argv):
    """``hpctune ARGV`` in this process: (exit code, stdout, stderr); argparse exits included."""
    try:
        code = main(list(argv))
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err
