"""Site profiles: lookup order, validation, merging, and script-mode overrides."""

from pathlib import Path

import pytest

from hpctune import tune
from hpctune.config import SlurmConfig
from hpctune.config.profiles import (
    SubmitOverrides,
    available_profiles,
    load_profile,
    merge_slurm,
    package_profile_dir,
    profile_dirs,
    read_toml,
)
from hpctune.core.resources import resources_for
from hpctune.errors import ConfigError
from hpctune.tune.tuner import tuner_hooks


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """No user profiles from this machine's home; HPCTUNE_PROFILE_PATH unset."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("HPCTUNE_PROFILE_PATH", raising=False)
    monkeypatch.setenv("HPCTUNE_BACKEND", "local")


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_shipped_profiles_exist_and_build_slurm_configs():
    assert {"default", "gpu", "preemptible", "multinode"} <= set(available_profiles())
    for name in ("default", "gpu", "preemptible", "multinode"):
        profile = load_profile(name)
        assert isinstance(profile.slurm_config(), SlurmConfig)
        assert profile.description
    pre = load_profile("preemptible").slurm_config()
    assert pre.partition == "preempt" and pre.requeue is True
    assert (pre.signal, pre.signal_lead_s, pre.time_min) == ("USR1", 120, 120)
    assert load_profile("gpu").resources["gpu"] == 1
    assert load_profile("multinode").resources["nodes"] == 2
    assert load_profile("multinode").slurm_config().use_srun is True


def test_shipped_profiles_come_from_the_top_level_folder_in_a_checkout():
    repo = Path(__file__).resolve().parents[2]
    assert package_profile_dir() == repo / "slurm_templates"  # editable install or source tree
    assert profile_dirs()[0] == package_profile_dir()
    assert {p.stem for p in package_profile_dir().glob("*.toml")} == {
        "default", "gpu", "preemptible", "multinode"}


def test_pyproject_lists_every_package_and_ships_the_profiles():
    """pyproject.toml lists packages (slurm_templates is mapped from the top level, which
    packages.find cannot do): a package missing from the list would be left out of the wheel."""
    repo = Path(__file__).resolve().parents[2]
    setuptools = read_toml(repo / "pyproject.toml")["tool"]["setuptools"]
    on_disk = {".".join(p.parent.relative_to(repo).parts) for p in (repo / "hpctune").rglob("__init__.py")}
    assert on_disk | {"hpctune.slurm_templates"} == set(setuptools["packages"])
    assert setuptools["package-dir"] == {"hpctune.slurm_templates": "slurm_templates"}
    assert setuptools["package-data"]["hpctune.slurm_templates"] == ["*.toml"]


def test_unknown_profile_lists_the_available_ones():
    with pytest.raises(ConfigError) as info:
        load_profile("nosuch")
    message = str(info.value)
    assert "nosuch" in message and "preemptible" in message and "gpu" in message


def test_user_dirs_override_the_package_later_wins(tmp_path, monkeypatch):
    write(tmp_path / "xdg" / "hpctune" / "gpu.toml", 'description = "home"\npartition = "homegpu"\n')
    assert load_profile("gpu").slurm_config().partition == "homegpu"
    site = tmp_path / "site"
    write(site / "gpu.toml", 'description = "site"\npartition = "sitegpu"\n')
    write(site / "mine.toml", 'extends = "preemptible"\ntime_min = 30\nsetup = ["module load x"]\n')
    monkeypatch.setenv("HPCTUNE_PROFILE_PATH", str(site))
    assert load_profile("gpu").slurm_config().partition == "sitegpu"
    mine = load_profile("mine").slurm_config()
    assert (mine.partition, mine.time_min, mine.requeue) == ("preempt", 30, True)
    assert mine.setup == ["module load x"]


def test_invalid_profiles_name_the_file_and_key(tmp_path, monkeypatch):
    monkeypatch.setenv("HPCTUNE_PROFILE_PATH", str(tmp_path))
    write(tmp_path / "bad.toml", 'partiton = "x"\n')
    with pytest.raises(ConfigError, match=r"bad.toml.*partiton.*SlurmConfig field"):
        load_profile("bad")
    write(tmp_path / "badres.toml", "[resources]\ngpus = 1\n")
    with pytest.raises(ConfigError, match=r"resources.gpus"):
        load_profile("badres")
    write(tmp_path / "a.toml", 'extends = "b"\n')
    write(tmp_path / "b.toml", 'extends = "a"\n')
    with pytest.raises(ConfigError, match="cycle"):
        load_profile("a")
    write(tmp_path / "broken.toml", "partition = \n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_profile("broken")
    write(tmp_path / "zero.toml", "time_min = 0\n")
    with pytest.raises(ConfigError, match="time_min"):
        load_profile("zero")


def test_merge_concatenates_setup_and_merges_sbatch_options():
    config = merge_slurm({"setup": ["a"], "sbatch_options": {"x": 1}, "partition": "p"},
                         {"setup": ["b", "a"], "sbatch_options": {"y": 2}, "partition": "q"})
    assert config.setup == ["a", "b"]
    assert config.sbatch_options == {"x": 1, "y": 2}
    assert config.partition == "q"


def objective(config):
    return {"score": config["a"]}


def make_tuner(slurm=None, trainable=objective):
    return tune.Tuner(trainable, param_space={"a": tune.choice([1, 2])},
                      run_config=tune.RunConfig(name="script-name", slurm=slurm))


def test_overrides_profile_fills_defaults_script_wins_cli_wins_over_script():
    tuner = make_tuner(SlurmConfig(partition="script", time_min=30))
    overrides = SubmitOverrides(
        slurm_defaults={"partition": "profile", "qos": "low", "setup": ["module load a"]},
        slurm_forced={"time_min": 5}, resource_defaults={"gpu": 1}, resources={"cpu": 3},
        max_concurrent_trials=2, name="cli-name", storage_path="/tmp/cli-storage",
        keep_jobs_on_interrupt=True)
    overrides.apply(tuner)
    cfg = tuner.slurm_config
    assert (cfg.partition, cfg.qos, cfg.time_min, cfg.setup) == ("script", "low", 5, ["module load a"])
    assert tuner.tune_config.max_concurrent_trials == 2
    assert tuner.run_config.name == "cli-name" and tuner.run_config.storage_path == "/tmp/cli-storage"
    assert tuner.run_config.keep_jobs_on_interrupt is True
    assert resources_for(tuner.trainable, {}) == {"cpu": 3, "gpu": 1}
    overrides.apply(tuner)  # idempotent
    assert resources_for(tuner.trainable, {}) == {"cpu": 3, "gpu": 1}
    assert tuner.slurm_config == cfg


def test_profile_resources_do_not_replace_the_trainables_own():
    own = tune.with_resources(objective, {"cpu": 2, "gpu": 0})
    tuner = make_tuner(trainable=own)
    SubmitOverrides(resource_defaults={"gpu": 1}).apply(tuner)
    assert resources_for(tuner.trainable, {}) == {"cpu": 2, "gpu": 0}


def test_overrides_reach_the_tuners_created_inside_tuner_hooks_only():
    overrides = SubmitOverrides(slurm_forced={"partition": "urgent"}, name="n")
    with tuner_hooks(on_create=overrides.apply):
        inside = make_tuner()
    outside = make_tuner()
    assert inside.slurm_config.partition == "urgent" and inside.run_config.name == "n"
    assert outside.slurm_config.partition is None and outside.run_config.name == "script-name"
