"""Declarative experiment files: search space as data, sections, errors with key paths."""

from pathlib import Path

import pytest

from hpctune.config.experiment_file import load_experiment_file, parse_experiment, parse_space
from hpctune.errors import ConfigError
from hpctune.space import Categorical, Float, Integer

REPO = Path(__file__).resolve().parents[2]

TRAINABLE = '''
from hpctune import tune

def objective(config):
    tune.report({"score": config["a"]})
'''


@pytest.fixture(autouse=True)
def _local(monkeypatch):
    monkeypatch.setenv("HPCTUNE_BACKEND", "local")


def write_experiment(tmp_path, body, trainable='trainable = "train.py:objective"\n'):
    (tmp_path / "train.py").write_text(TRAINABLE)
    path = tmp_path / "exp.toml"
    path.write_text(trainable + body)
    return path


def test_every_primitive_as_data():
    space = parse_space({
        "u": {"uniform": [0, 1]}, "q": {"quniform": [0, 1, 0.25]},
        "lu": {"loguniform": [1e-4, 1e-1]}, "ql": {"qloguniform": [1e-4, 1e-1, 5e-5]},
        "n": {"randn": [0, 2]}, "qn": {"qrandn": [0, 1, 0.5]},
        "i": {"randint": [1, 10]}, "qi": {"qrandint": [0, 100, 10]},
        "li": {"lograndint": [1, 1024]}, "qli": {"qlograndint": [1, 1024, 2]},
        "c": {"choice": ["relu", "tanh"]}, "g": {"grid_search": [16, 64]},
        "kw": {"uniform": {"lower": 0.5, "upper": 2}},
        "nested": {"opt": {"name": "adam", "lr": {"loguniform": [1e-3, 1e-1]}}},
        "constant": "fast", "number": 3, "list": [1, 2],
    }, "param_space")
    assert isinstance(space["u"], Float) and space["u"].upper == 1
    assert space["lu"].log and space["q"].q == 0.25
    assert isinstance(space["i"], Integer) and isinstance(space["c"], Categorical)
    assert space["g"] == {"grid_search": [16, 64]}
    assert space["kw"].lower == 0.5
    assert isinstance(space["nested"]["opt"]["lr"], Float)
    assert space["nested"]["opt"]["name"] == "adam"
    assert (space["constant"], space["number"], space["list"]) == ("fast", 3, [1, 2])


def test_choice_of_tables_and_grid_of_distributions_parse_recursively():
    space = parse_space({"c": {"choice": [{"a": {"uniform": [0, 1]}}, {"b": 2}]}}, "param_space")
    assert isinstance(space["c"].categories[0]["a"], Float)


@pytest.mark.parametrize("entry, message", [
    ({"lr": {"loguniform": "fast"}},
     'param_space.lr: expected a table like {loguniform = [1e-4, 1e-1]}, got {loguniform = "fast"}'),
    ({"lr": {"loguniform": [1e-4]}}, "param_space.lr: expected a table like {loguniform"),
    ({"m": {"x": {"choice": []}}}, 'param_space.m.x: expected a table like {choice = ["relu", "tanh"]}'),
    ({"lr": {"logunifrom": [1e-4, 1e-1]}}, "did you mean `loguniform`"),
    ({"lr": {"uniform": {"low": 0, "upper": 1}}}, "param_space.lr.uniform: unknown argument `low`"),
    ({"lr": {"loguniform": [0, 1]}}, "param_space.lr:"),
    ({"n": {"randint": [5, 1]}}, "param_space.n:"),
])
def test_bad_search_space_entries_name_the_key_path(entry, message):
    with pytest.raises(ConfigError) as info:
        parse_space(entry, "param_space")
    assert message in str(info.value)


def test_example_file_parses_and_builds_a_tuner():
    file = load_experiment_file(REPO / "examples" / "experiment.toml")
    assert file.trainable_ref == "quickstart.py:objective"
    assert file.tune == {"metric": "score", "mode": "min", "num_samples": 1, "max_concurrent_trials": 4}
    assert file.param_space["a"] == {"grid_search": [0.001, 0.01, 0.1, 1.0]}
    tuner = file.tuner()
    assert tuner.trainable.__name__ == "objective"
    assert tuner.tune_config.metric == "score"
    assert tuner.run_config.name == "quickstart-toml"


def test_sections_reach_the_configs(tmp_path):
    path = write_experiment(tmp_path, '''
name = "sections"
metric = "score"
mode = "max"
num_samples = 3
seed = 7
gpu_hours_budget = 12.5
stop = {training_iteration = 4}
[param_space]
a = {uniform = [0, 1]}
[scheduler]
name = "asha"
max_t = 9
grace_period = 1
[search]
name = "optuna"
seed = 3
[resources]
cpu = 2
gpu = 1
[failure]
max_failures = 2
[checkpoint]
num_to_keep = 1
[slurm]
partition = "debug"
''')
    file = load_experiment_file(path)
    assert file.slurm == {"partition": "debug"}
    tuner = file.tuner(resources={"mem_gb": 2}, max_concurrent_trials=5, num_samples=None)
    tc = tuner.tune_config
    assert (tc.num_samples, tc.seed, tc.max_concurrent_trials, tc.mode) == (3, 7, 5, "max")
    assert (tc.gpu_hours_budget, tc.cpu_hours_budget) == (12.5, None)
    assert type(tc.scheduler).__name__ == "AsyncHyperBandScheduler"
    assert type(tc.search_alg).__name__ == "OptunaSearch"
    assert tuner.run_config.failure_config.max_failures == 2
    assert tuner.run_config.checkpoint_config.num_to_keep == 1
    assert tuner.run_config.stop == {"training_iteration": 4}
    from hpctune.core.resources import resources_for

    assert resources_for(tuner.trainable, {}) == {"cpu": 2, "gpu": 1, "mem_gb": 2}


def test_yaml_files(tmp_path):
    (tmp_path / "train.py").write_text(TRAINABLE)
    path = tmp_path / "exp.yaml"
    path.write_text("trainable: train.py:objective\nparam_space:\n  a: {choice: [1, 2]}\n")
    assert isinstance(load_experiment_file(path).param_space["a"], Categorical)
    path.write_text("trainable: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_experiment_file(path)


@pytest.mark.parametrize("body, trainable, message", [
    ("", 'trainable = "train"\n', 'trainable: expected "module:function"'),
    ("", "", 'trainable: expected "module:function"'),
    ("metrc = 'x'\n", None, "metrc: unknown key (did you mean `metric`?)"),
    ("param_space = 3\n", None, "param_space: expected a table"),
    ("[scheduler]\nmax_t = 3\n", None, "scheduler.name: expected the scheduler name"),
    ("[failure]\nretries = 3\n", None, "failure.retries: unknown key"),
    ("mode = 'up'\n", None, "mode"),
])
def test_bad_files_name_the_key(tmp_path, body, trainable, message):
    path = write_experiment(tmp_path, body, trainable if trainable is not None
                            else 'trainable = "train.py:objective"\n')
    with pytest.raises(ConfigError) as info:
        load_experiment_file(path).tuner()
    assert message in str(info.value)


def test_bad_scheduler_parameters_and_names(tmp_path):
    path = write_experiment(tmp_path, 'metric = "s"\nmode = "min"\n[scheduler]\nname = "asha"\nbogus = 1\n')
    with pytest.raises(ConfigError, match="scheduler: invalid parameters for 'asha'"):
        load_experiment_file(path).tuner()
    path = write_experiment(tmp_path, 'scheduler = "nosuch"\n')
    with pytest.raises(ConfigError, match="scheduler:"):
        load_experiment_file(path).tuner()


def test_trainable_references(tmp_path):
    path = write_experiment(tmp_path, "", 'trainable = "train.py:nothing"\n')
    with pytest.raises(ConfigError, match="has no `nothing`; it defines: objective"):
        load_experiment_file(path).load_trainable()
    path = write_experiment(tmp_path, "", 'trainable = "missing.py:f"\n')
    with pytest.raises(ConfigError, match='file "missing.py" not found'):
        load_experiment_file(path).load_trainable()
    path = write_experiment(tmp_path, "", 'trainable = "no_such_module_xyz:f"\n')
    with pytest.raises(ConfigError, match="cannot import"):
        load_experiment_file(path).load_trainable()
    path = write_experiment(tmp_path, "", 'trainable = "tests.e2e.trainables:quadratic"\n')
    assert load_experiment_file(path).load_trainable().__name__ == "quadratic"


def test_missing_file_and_wrong_suffix(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_experiment_file(tmp_path / "nope.toml")
    (tmp_path / "exp.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"\.toml, \.yaml or \.yml"):
        load_experiment_file(tmp_path / "exp.json")
    with pytest.raises(ConfigError, match="invalid TOML"):
        (tmp_path / "bad.toml").write_text("a = \n")
        load_experiment_file(tmp_path / "bad.toml")


def test_parse_experiment_directly():
    file = parse_experiment({"trainable": "m:f", "scheduler": "fifo"}, Path("/x/exp.toml"))
    assert file.scheduler == {"name": "fifo"} and file.param_space == {}
