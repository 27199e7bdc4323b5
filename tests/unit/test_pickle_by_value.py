"""The trainable and each trial's config are pickled one way: the user's own modules by value.

A job does not have the driver's ``sys.path``: a module from the user's directory must travel
inside the pickle, while installed packages and hpctune travel by reference.
"""

from __future__ import annotations

import importlib
import json
import pickle
import subprocess
import sys

import cloudpickle
import pytest

from hpctune.storage.experiment import pickle_config
from hpctune.storage.pickling import dumps_by_value, pickle_trainable, user_modules

USER_MODULE = '''
class Model:
    size = 3

def train(config):
    return config["model"].size * 2
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A module of the user's own, importable here but not in a job's fresh interpreter."""
    (tmp_path / "my_model.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("my_model")
    yield module
    sys.modules.pop("my_model", None)


def _load_elsewhere(data: bytes) -> object:
    """Unpickle in a new interpreter that cannot import the user's module; the result as JSON."""
    code = ("import json, pickle, sys; trainable, config = pickle.loads(sys.stdin.buffer.read()); "
            "print(json.dumps(trainable(config)))")
    proc = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True, timeout=60,
                          cwd="/")
    assert proc.returncode == 0, proc.stderr.decode()
    return json.loads(proc.stdout)


def test_the_users_own_modules_are_found_in_values_keys_and_nested_containers(user_module):
    found = user_modules({"a": [1, (user_module.Model(),)], user_module.train: "key"})
    assert [m.__name__ for m in found] == ["my_model"]
    assert user_modules({"np": pytest, "f": json.dumps, "x": pickle_trainable}) == []  # installed, stdlib, hpctune


def test_a_trainable_and_its_config_from_the_users_module_load_where_it_cannot_be_imported(user_module):
    trainable = pickle.loads(pickle_trainable(user_module.train))
    config = pickle.loads(pickle_config({"model": user_module.Model}))
    assert _load_elsewhere(dumps_by_value((trainable, config))) == 6


def test_the_registry_is_left_as_it_was(user_module):
    dumps_by_value(user_module.train)
    assert "my_model" not in cloudpickle.list_registry_pickle_by_value()
    cloudpickle.register_pickle_by_value(user_module)  # the caller's own registration stays
    try:
        dumps_by_value({"model": user_module.Model})
        assert "my_model" in cloudpickle.list_registry_pickle_by_value()
    finally:
        cloudpickle.unregister_pickle_by_value(user_module)
