"""Every SlurmConfig string reaches the sbatch script or a Slurm command line, so every one of
them refuses a control character. The fields are written out here, not taken from the list the
check itself loops over (a field dropped from that list would drop out of its test as well)."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from hpctune.backends.slurm import SlurmBackend
from hpctune.config import SlurmConfig
from hpctune.errors import ConfigError

#: SlurmConfig's string fields, by hand; pool_start_method is checked on its own ('fork'/'spawn')
STRING_FIELDS = ["partition", "account", "qos", "constraint", "exclude", "nodelist", "job_name", "python",
                 "signal"]
ENUM_FIELDS = ["pool_start_method"]


@pytest.mark.parametrize("char", ["\n", "\r", "\x00", "\x1b"], ids=repr)
@pytest.mark.parametrize("name", STRING_FIELDS + ENUM_FIELDS)
def test_a_control_character_in_any_string_field_is_refused(name, char):
    with pytest.raises(ConfigError, match=rf"{name}"):
        SlurmConfig(**{name: f"ok{char}#SBATCH --uid=0"})


@pytest.mark.parametrize("name", STRING_FIELDS)
def test_a_field_set_after_construction_is_checked_before_a_script_is_written(tmp_path, name):
    config = SlurmConfig(requeue=False)
    setattr(config, name, "ok\n#SBATCH --uid=0")
    with pytest.raises(ConfigError, match=rf"SlurmConfig\({name}=.*control character"):
        SlurmBackend(tmp_path / "exp", config)


def test_the_list_above_names_every_string_field():
    """A new string field of SlurmConfig must be added to STRING_FIELDS (and so to the check)."""
    hints = typing.get_type_hints(SlurmConfig)
    strings = [f.name for f in dataclasses.fields(SlurmConfig) if hints[f.name] in (str, str | None)]
    assert sorted(strings) == sorted(STRING_FIELDS + ENUM_FIELDS)
