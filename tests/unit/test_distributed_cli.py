"""`hpctune submit --dry-run` shows a trial of several tasks as it will be submitted."""

from tests.unit.cli_env import cli_env, run  # noqa: F401 - cli_env is autouse

TRAINABLE = '''
from hpctune import tune

def objective(config):
    tune.report({"score": config["a"]})
'''


def test_dry_run_shows_nodes_tasks_and_gpus_per_task(capsys, tmp_path):
    (tmp_path / "train.py").write_text(TRAINABLE)
    (tmp_path / "exp.toml").write_text('trainable = "train.py:objective"\nmetric = "score"\nmode = "min"\n'
                                       "[param_space]\na = {grid_search = [1, 2]}\n")
    code, out, err = run(capsys, "submit", "--dry-run", "--nodes", "2", "--tasks-per-node", "4",
                         "--gpus-per-task", "1", "--cpus", "8", "exp.toml")
    assert code == 0, err
    lines = out.splitlines()
    for directive in ("--nodes=2", "--ntasks-per-node=4", "--gpus-per-task=1", "--cpus-per-task=8",
                      "--signal=USR1@90"):
        assert f"#SBATCH {directive}" in lines, (directive, out)
    assert any(line.startswith("srun ") and "--kill-on-bad-exit=1" in line for line in lines), out
    code, _, err = run(capsys, "submit", "--dry-run", "--gpus", "1", "--gpus-per-task", "1", "exp.toml")
    assert code == 1 and "keep one" in err, err
