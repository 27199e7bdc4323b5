"""Trials of several tasks without Slurm: resources, the sbatch script, ScalingConfig, the task
environment, and what a session of a rank other than 0 writes (nothing)."""

import json
from pathlib import Path

import pytest

from hpctune.backends.slurm import SlurmBackend
from hpctune.config import SlurmConfig
from hpctune.core.checkpoint import Checkpoint
from hpctune.core.resources import normalize_resources, resources_for, task_count
from hpctune.errors import ConfigError, DistributedError
from hpctune.storage.result_log import ResultLog, read_events
from hpctune.tune.trainable import with_resources
from hpctune.worker import distributed
from hpctune.worker.context import TrialContext, task_ranks
from hpctune.worker.distributed import ScalingConfig, first_host
from hpctune.worker.session import PeerFailed, Preempted, Session, StopTrial

STEP_VARS = ("SLURM_STEP_NUM_TASKS", "SLURM_PROCID", "SLURM_LOCALID", "SLURM_NODEID",
             "SLURM_STEP_TASKS_PER_NODE", "SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST",
             "SLURM_LAUNCH_NODE_IPADDR", "SLURM_RESTART_COUNT")


TORCH_VARS = ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE",
              "NODE_RANK")


@pytest.fixture(autouse=True)
def no_slurm_task(monkeypatch):
    for name in STEP_VARS:
        monkeypatch.delenv(name, raising=False)
    for name in TORCH_VARS:  # torch_env sets them: restored after each test
        monkeypatch.setenv(name, "unset")
        monkeypatch.delenv(name)


def as_task(monkeypatch, rank, size=4, per_node="2(x2)", job="4242"):
    """This process as task ``rank`` of a ``size``-task srun step (2 tasks per node)."""
    for name, value in {"SLURM_STEP_NUM_TASKS": size, "SLURM_PROCID": rank, "SLURM_LOCALID": rank % 2,
                        "SLURM_NODEID": rank // 2, "SLURM_STEP_TASKS_PER_NODE": per_node,
                        "SLURM_JOB_ID": job, "SLURM_STEP_NODELIST": "n[1-2]"}.items():
        monkeypatch.setenv(name, str(value))


# -- resources ------------------------------------------------------------------------------------
def test_resources_in_slurm_vocabulary():
    res = normalize_resources({"nodes": 2, "tasks_per_node": 4, "gpus_per_task": 1, "cpus_per_task": 8})
    assert res == {"cpu": 8, "gpu": 0, "nodes": 2, "tasks_per_node": 4, "gpus_per_task": 1}
    assert task_count(res) == 8
    assert task_count(normalize_resources({"tasks": 3})) == 3
    assert task_count(normalize_resources({"cpu": 2})) == 1


@pytest.mark.parametrize("resources, message", [
    ({"cpu": 2, "cpus_per_task": 4}, "both `cpus_per_task` and `cpu`"),
    ({"gpu": 1, "gpus_per_task": 1, "nodes": 2}, "both gpu=1"),
    ({"tasks": 4, "tasks_per_node": 2}, "both tasks=4"),
    ({"gpus_per_task": 0.5}, "gpus_per_task"),
    ({"tasks": 0}, "must be a whole number >= 1"),
])
def test_bad_task_layouts_are_refused_with_the_fix(resources, message):
    with pytest.raises(ConfigError, match=message):
        normalize_resources(resources)


def render(tmp_path, resources, **config):
    backend = SlurmBackend(tmp_path / "exp", SlurmConfig(requeue=False, **config))
    return backend.render_script(normalize_resources(resources), 2, 2, Path("/x/array_1.trials"))


def test_a_multi_node_trial_is_rendered_with_srun_and_kill_on_bad_exit(tmp_path):
    script = render(tmp_path, {"nodes": 2, "tasks_per_node": 4, "gpus_per_task": 1, "cpus_per_task": 8})
    lines = script.splitlines()
    for directive in ("--nodes=2", "--ntasks-per-node=4", "--gpus-per-task=1", "--cpus-per-task=8",
                      "--signal=USR1@90"):  # every rank gets the warning, not the batch shell (B:)
        assert f"#SBATCH {directive}" in lines, directive
    assert not any("--gres" in line for line in lines)
    (command,) = [line for line in lines if "hpctune.worker" in line]
    assert command.startswith("srun ") and " --kill-on-bad-exit=1 " in command
    assert "%t_log.out" in command and "--error" not in command  # one log per rank, stderr in it


def test_tasks_without_nodes_let_slurm_pack_them(tmp_path):
    lines = render(tmp_path, {"tasks": 3}).splitlines()
    assert "#SBATCH --ntasks=3" in lines and "#SBATCH --nodes=1-3" in lines


def test_a_one_task_trial_keeps_exec_and_the_batch_signal(tmp_path):
    script = render(tmp_path, {"cpu": 2})
    assert "#SBATCH --signal=B:USR1@90" in script.splitlines() and "\nexec " in script
    assert "kill-on-bad-exit" not in script


def test_gres_per_node_still_works_for_several_tasks(tmp_path):
    lines = render(tmp_path, {"nodes": 2, "tasks_per_node": 2, "gpu": 2}).splitlines()
    assert "#SBATCH --gres=gpu:2" in lines and not any("gpus-per-task" in line for line in lines)


# -- ScalingConfig ----------------------------------------------------------------------------------
def test_scaling_config_maps_onto_the_resources():
    config = ScalingConfig(num_workers=8, use_gpu=True, resources_per_worker={"CPU": 8}, num_nodes=2)
    assert normalize_resources(config) == {"cpu": 8, "gpu": 0, "gpus_per_task": 1, "nodes": 2,
                                           "tasks_per_node": 4}
    assert config.total_resources == {"CPU": 64, "GPU": 8}
    assert dict(ScalingConfig(num_workers=4)) == {"cpu": 1, "gpu": 0, "tasks": 4}
    assert dict(ScalingConfig(num_workers=3, placement_strategy="SPREAD")) == {
        "cpu": 1, "gpu": 0, "nodes": 3, "tasks_per_node": 1}
    assert dict(ScalingConfig(resources_per_worker={"CPU": 2, "GPU": 2})) == {
        "cpu": 2, "gpu": 0, "gpus_per_task": 2}
    trainable = with_resources(lambda config: None, config)
    assert resources_for(trainable, {})["tasks_per_node"] == 4


@pytest.mark.parametrize("kwargs, message", [
    ({"num_workers": 3, "num_nodes": 2}, "split evenly"),
    ({"num_workers": 0}, "num_workers=0"),
    ({"trainer_resources": {"CPU": 1}}, "no separate trainer"),
    ({"resources_per_worker": {"memory": 10**9}}, "mem_gb"),
    ({"placement_strategy": "STRICT_SPREAD"}, "not supported"),
])
def test_scaling_config_refuses_what_cannot_be_asked_of_slurm(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ScalingConfig(**kwargs)


def test_scaling_config_is_ray_trains_name():
    from hpctune import train

    assert train.ScalingConfig is ScalingConfig


# -- the task environment ---------------------------------------------------------------------------
@pytest.mark.parametrize("nodelist, host", [
    ("n[1-2]", "n1"), ("gpu[007-009,012],cpu1", "gpu007"), ("login3", "login3"),
    ("a[2,4]-ib[1-2]", "a2-ib1"), ("n1,n2", "n1"),
])
def test_first_host_of_a_slurm_hostlist(nodelist, host):
    assert first_host(nodelist) == host


def test_first_host_refuses_what_it_cannot_read():
    with pytest.raises(DistributedError, match="master_addr"):
        first_host("[")


def test_torch_env_from_the_step(monkeypatch):
    as_task(monkeypatch, 3)
    monkeypatch.setenv("SLURM_LAUNCH_NODE_IPADDR", "10.0.0.7")  # n1 resolves nowhere: srun's node
    env = distributed.torch_env()
    assert env == {"MASTER_ADDR": "10.0.0.7", "MASTER_PORT": str(20000 + 4242), "RANK": "3",
                   "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2", "NODE_RANK": "1"}
    monkeypatch.setenv("SLURM_STEP_NODELIST", "localhost")
    assert distributed.master_address() == "localhost"
    monkeypatch.setenv("SLURM_JOB_ID", "45000")
    assert distributed.master_port() == 20000 + 5000
    monkeypatch.delenv("SLURM_JOB_ID")  # one process outside Slurm: any free port
    assert 0 < distributed.master_port() < 65536


def test_outside_srun_one_task_of_rank_zero(monkeypatch):
    monkeypatch.setenv("SLURM_NTASKS", "8")  # a batch shell: it started no task yet
    assert task_ranks() == (0, 0, 0, 1, 1) and distributed.is_rank_zero()
    assert distributed.master_address() == "127.0.0.1"


def test_torch_setup_joins_a_one_process_group(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("SLURM_JOB_ID", "1")
    info = distributed.torch_setup(master_addr="127.0.0.1", master_port=29517)
    try:
        assert (info.rank, info.world_size, info.backend, info.device) == (0, 1, "gloo", "cpu")
        tensor = torch.ones(2)
        torch.distributed.all_reduce(tensor)
        assert tensor.tolist() == [1.0, 1.0]
        assert distributed.torch_setup(master_port=29517) == info  # again: the same group
    finally:
        distributed.torch_cleanup()


# -- a session of rank 1 writes nothing ------------------------------------------------------------
def make_session(tmp_path):
    trial_dir = tmp_path / "exp" / "trials" / "t_00000"
    trial_dir.mkdir(parents=True)
    context = TrialContext("t_00000", "t_00000", str(trial_dir), "exp", "0", slurm_job_id="4242",
                           experiment_id="t")
    # no stop watchdog within the test's lifetime: it would end the test process
    return Session(context, ResultLog(trial_dir / "result.jsonl"), trial_dir / "control.json",
                   stop_grace_s=1e6)


def test_rank_zero_records_and_other_ranks_keep_the_call_sites(tmp_path, monkeypatch):
    source = tmp_path / "ckpt"
    source.mkdir()
    (source / "w").write_text("1")
    as_task(monkeypatch, 1)
    other = make_session(tmp_path)
    assert not other.writes
    other.report({"loss": 1.0})
    other.report({"loss": 0.5}, checkpoint=Checkpoint(source))
    log = Path(other.context.trial_dir) / "result.jsonl"
    assert not log.exists() and not list(Path(other.context.trial_dir).glob("checkpoint_*"))
    assert Path(other.checkpoint.path).name == "checkpoint_000002"  # the one rank 0 writes

    as_task(monkeypatch, 0)
    zero = make_session_again(other)
    assert zero.writes
    zero.report({"loss": 1.0})
    zero.report({"loss": 0.5}, checkpoint=Checkpoint(source))
    events = read_events(log)
    assert [e["result"]["training_iteration"] for e in events] == [1, 2]
    assert events[1]["checkpoint"] == "checkpoint_000002" and "rank" not in events[0]
    assert Path(zero.checkpoint.path) == Path(zero.context.trial_dir) / "checkpoint_000002"


def test_every_rank_stops_and_leaves_on_preemption(tmp_path, monkeypatch):
    as_task(monkeypatch, 2)
    session = make_session(tmp_path)
    session.on_signal("SIGUSR1")
    with pytest.raises(Preempted):
        session.report({"loss": 1.0})
    (Path(session.context.trial_dir) / "control.json").write_text(json.dumps({"action": "stop"}))
    with pytest.raises(StopTrial):
        make_session_again(session).report({"loss": 1.0})
    assert not session.log.path.exists()


def make_session_again(session):
    return Session(session.context, session.log, session.control_path, stop_grace_s=1e6)


def test_one_error_event_per_run_however_many_ranks_fail(tmp_path, monkeypatch):
    as_task(monkeypatch, 1)
    session = make_session(tmp_path)
    error = {"event": "error", "v": 1, **session.base_fields(), "error": "rank 1 failed", "rank": 1}
    assert not session.peer_failed()
    session.append_error(error)
    session.append_error({**error, "rank": 0})  # rank 0 fails too (its peer is gone)
    assert [e["rank"] for e in read_events(session.log.path)] == [1]
    assert session.peer_failed()
    session.context.restart_count = 1  # the next run of the job may fail again
    assert not session.peer_failed()
    session.append_error({**error, "restart_count": 1})
    assert len(read_events(session.log.path)) == 2


def test_rank_zero_records_nothing_once_a_peer_failed(tmp_path, monkeypatch):
    as_task(monkeypatch, 0)
    zero = make_session(tmp_path)
    zero.report({"loss": 1.0})
    as_task(monkeypatch, 1)
    one = make_session_again(zero)
    one.append_error({"event": "error", "v": 1, **one.base_fields(), "error": "boom", "rank": 1})
    as_task(monkeypatch, 0)
    with pytest.raises(PeerFailed):
        zero.report({"loss": 0.5})  # the step after the peer's failure: not recorded
    kinds = [e["event"] for e in read_events(zero.log.path)]
    assert kinds == ["result", "error"]


def test_no_error_event_after_rank_zero_ended_the_run(tmp_path, monkeypatch):
    as_task(monkeypatch, 0)
    zero = make_session(tmp_path)
    as_task(monkeypatch, 1)
    one = make_session_again(zero)  # both ranks start the run
    as_task(monkeypatch, 0)
    zero.append({"event": "complete", "v": 1, **zero.base_fields()})
    as_task(monkeypatch, 1)
    one.append_error({"event": "error", "v": 1, **one.base_fields(), "error": "late", "rank": 1})
    assert [e["event"] for e in read_events(zero.log.path)] == ["complete"]


def test_append_first_looks_from_an_offset(tmp_path):
    log = ResultLog(tmp_path / "result.jsonl")
    log.append({"event": "error", "n": 1})
    offset = log.size()
    end = log.append_first({"event": "error", "n": 2}, lambda e: e["event"] == "error", since=offset)
    assert end == log.size() > offset  # where the next check may start
    assert log.append_first({"event": "error", "n": 3}, lambda e: e["event"] == "error", since=offset) is None
    assert log.append_first({"event": "error", "n": 4}, lambda e: e["event"] == "error", since=end) == log.size()
    assert [e["n"] for e in read_events(log.path)] == [1, 2, 4]


def test_other_ranks_restore_the_checkpoint_rank_zero_restored(tmp_path, monkeypatch):
    """Rank 0 may write checkpoint 3 before rank 1 starts: rank 1 still restores 2, as rank 0 did."""
    as_task(monkeypatch, 1)
    session = make_session(tmp_path)
    trial_dir = Path(session.context.trial_dir)
    for iteration in (2, 3):
        (trial_dir / f"checkpoint_00000{iteration}").mkdir()
    session = make_session_again(session)
    assert Path(session.checkpoint.path).name == "checkpoint_000003"
    assert not session.follow_rank_zero(timeout_s=0.05, poll_s=0.01)  # no start event yet
    earlier = {"event": "start", "v": 1, "slurm_job_id": "4242", "restart_count": 0, "restored_iteration": 1}
    session.log.append({**earlier, "slurm_job_id": "4000"})  # another job's run
    session.log.append({**earlier, "restored_iteration": 2})
    assert session.follow_rank_zero(timeout_s=1.0, poll_s=0.01)
    assert Path(session.checkpoint.path).name == "checkpoint_000002" and session.iteration == 2
    session.log.append({**earlier, "restart_count": 1, "restored_iteration": 0})
    session.context.restart_count = 1
    assert session.follow_rank_zero(timeout_s=1.0) and session.checkpoint is None


def test_the_local_backend_gives_rank_zero_its_gpus_per_task(tmp_path, monkeypatch):
    from hpctune.backends.local import LocalBackend

    backend = LocalBackend(tmp_path, max_cpus=8, gpus=["0", "1"])
    spawned = {}
    monkeypatch.setattr(backend, "_spawn", lambda job, trial, gpus=(): spawned.setdefault(trial, gpus))
    backend.launch(["a"], normalize_resources({"nodes": 2, "tasks_per_node": 4, "gpus_per_task": 1}), None)
    assert spawned == {"a": ("0",)}
