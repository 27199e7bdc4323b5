"""The worker pool without Slurm: the shared-FS queue, slot plans, the reuse_actors setting,
and a pool task's loop run in this process on a real experiment directory."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from hpctune import tune
from hpctune.backends import pool_settings as settings
from hpctune.cli.common import slurm_job_ids
from hpctune.config import SlurmConfig
from hpctune.errors import ConfigError
from hpctune.pool.slots import SlotPlan, default_slots, plan_for, task_resources
from hpctune.pool.task import PoolTask
from hpctune.storage.control import ControlRecord
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.pickling import pickle_trainable
from hpctune.storage.pool_queue import (
    NEXT_RUN_FILE,
    PoolQueue,
    RunEnd,
    check_task_id,
    is_pool_job,
    run_job_id,
    run_seq,
    shape_key,
)
from hpctune.storage.result_log import read_events

SHAPE = shape_key({"cpu": 1, "gpu": 0})


def make_queue(tmp_path: Path, runs: int) -> PoolQueue:
    queue = PoolQueue(tmp_path)
    queue.ensure()
    queue.write_shape(SHAPE, {"cpu": 1, "gpu": 0})
    queue.reserve(runs)  # as the driver does before it queues them
    for seq in range(runs):
        queue.enqueue(seq, f"t_{seq:05d}", SHAPE)
    return queue


def claim(queue: PoolQueue, task: str, shape: str = SHAPE) -> int | None:
    """The run ``task`` claims next (its number), or None."""
    claimed = queue.claim_next(task, shape)
    return None if claimed is None else claimed.seq


def finish(queue: PoolQueue, task: str, seq: int, exit_code: int, **kwargs) -> None:
    """``queue.finish`` for run ``seq`` of ``task``'s claims."""
    queue.finish(task, next(c for c in queue.claims(task) if c.seq == seq), exit_code, **kwargs)


def claimed_seqs(queue: PoolQueue, task: str) -> list[int]:
    return [c.seq for c in queue.claims(task)]


# -- the queue ------------------------------------------------------------------------------------
def test_runs_are_claimed_oldest_first_and_finished_once(tmp_path):
    queue = make_queue(tmp_path, 3)
    first = queue.claim_next("7_0", SHAPE)
    assert (first.seq, first.trial_id) == (0, "t_00000")  # the trial is in the name it claimed
    assert claim(queue, "7_1") == 1
    view = queue.view()
    assert view.queued == {2: SHAPE} and view.claimed == {0: "7_0", 1: "7_1"}
    assert view.trials == {0: "t_00000", 1: "t_00001", 2: "t_00002"}
    queue.finish("7_0", first, 3)
    assert queue.ended(0) == RunEnd(exit_code=3, task="7_0", trial_id="t_00000")
    assert queue.claims("7_0") == [] and claimed_seqs(queue, "7_1") == [1]
    assert claim(queue, "7_0") == 2 and claim(queue, "7_0") is None
    assert queue.next_seq() == 3
    assert PoolQueue(tmp_path).next_seq() == 3  # a restored driver never repeats a run number


def _claim_all(root: str, task: str, out: multiprocessing.Queue) -> None:
    queue, got = PoolQueue(root), []
    while (seq := claim(queue, task)) is not None:
        got.append(seq)
    out.put(got)


def test_concurrent_claims_never_give_a_run_to_two_tasks(tmp_path):
    make_queue(tmp_path, 200)
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_claim_all, args=(str(tmp_path), f"5_{i}", out)) for i in range(4)]
    for proc in procs:
        proc.start()
    claimed = [seq for _ in procs for seq in out.get(timeout=60)]
    for proc in procs:
        proc.join(timeout=10)
    assert sorted(claimed) == list(range(200))


def test_cancel_takes_a_queued_run_out_or_asks_its_pool_task(tmp_path):
    queue = make_queue(tmp_path, 2)
    assert queue.cancel(0) is True and queue.dropped(0)
    assert claim(queue, "9_0") == 1  # run 0 is gone from the queue
    assert queue.cancel(1) is False and queue.cancel_requested(1)
    finish(queue, "9_0", 1, 0)
    assert not queue.cancel_requested(1)


def test_a_dead_tasks_claim_is_handed_back_once(tmp_path):
    queue = make_queue(tmp_path, 1)
    queue.claim_next("9_0", SHAPE)
    assert queue.hand_back(0, "9_0") is False  # its name carries its trial: the driver's view says which
    assert queue.hand_back(0, "9_0", "t_00000") is True
    assert queue.hand_back(0, "9_0", "t_00000") is False
    assert queue.dropped_runs() == {0: "t_00000"}
    assert queue.claims("9_0") == [] and queue.dropped(0)  # a requeued 9_0 will not resume it


def test_pool_job_ids_are_not_slurm_jobs():
    assert run_job_id(12) == "pool-12" and run_seq("pool-12") == 12 and run_seq("12_3") is None
    assert is_pool_job("pool-0") and not is_pool_job("123_4") and not is_pool_job("pool-x")
    assert slurm_job_ids(["pool-4", "123_4", None]) == ["123_4"]  # `hpctune cancel` never scancels a run
    for bad in ("../x", "1_2; rm", "12"):
        with pytest.raises(ConfigError, match="array task id"):
            check_task_id(bad)


# -- slots ----------------------------------------------------------------------------------------
class _Run:
    def __init__(self, gpus):
        self.gpus = gpus


def test_gpu_slots_never_share_a_gpu():
    plan = plan_for({"cpu": 1, "gpu": 1}, slots=3, visible="4,5,6")
    assert plan.slots == 3
    running = []
    for _ in range(3):
        running.append(_Run(plan.take(running)))
    assert sorted(r.gpus for r in running) == [("4",), ("5",), ("6",)]
    assert not plan.free(running)
    two = plan_for({"gpu": 2}, slots=2, visible="0,1,2,3")
    assert two.slots == 2 and two.take([_Run(("0", "1"))]) == ("2", "3")
    assert plan_for({"gpu": 1}, slots=4, visible="0,1").slots == 2  # never more than the GPUs allow
    assert plan_for({"cpu": 2}, slots=3) == SlotPlan(slots=3)


def test_fractional_gpus_share_each_gpu_up_to_its_share():
    plan = plan_for({"gpu": 0.25}, slots=8, visible="0,1")
    assert plan.slots == 8
    running = []
    for _ in range(8):
        running.append(_Run(plan.take(running)))
    assert sorted(g for r in running for g in r.gpus) == ["0"] * 4 + ["1"] * 4
    assert plan_for({"gpu": 0.3}, slots=9, visible="0").slots == 3  # floor(1 / 0.3) per GPU


def test_what_a_pool_task_asks_slurm_for():
    assert default_slots({"gpu": 0.25}, None) == 4 and default_slots({"gpu": 1}, None) == 1
    assert default_slots({"gpu": 1}, 3) == 3
    assert task_resources({"cpu": 2, "gpu": 1, "mem_gb": 4}, 3) == {"cpu": 6, "gpu": 3, "mem_gb": 12}
    assert task_resources({"cpu": 1, "gpu": 0.25}, 4)["gpu"] == 1
    assert task_resources({"cpu": 1, "gpu": 0.25}, 6)["gpu"] == 2
    assert task_resources({"cpu": 1, "gpu": 0}, 2) == {"cpu": 2, "gpu": 0}


def test_a_gpu_share_needs_the_pool(tmp_path, monkeypatch):
    from hpctune.core.resources import normalize_resources

    def fn(config):
        return None

    assert normalize_resources({"gpu": 0.25})["gpu"] == 0.25
    with pytest.raises(ConfigError, match="gpu=1.5"):
        normalize_resources({"gpu": 1.5})
    shared = tune.with_resources(fn, {"gpu": 0.5})
    with pytest.raises(ConfigError, match=r"reuse_actors=True"):
        tune.Tuner(shared, backend="local", run_config=tune.RunConfig(storage_path=str(tmp_path)))
    monkeypatch.setattr("hpctune.tune.tuner.choose_backend", lambda requested: "slurm")
    with pytest.raises(ConfigError, match=r"reuse_actors=True"):
        tune.Tuner(shared, tune_config=tune.TuneConfig(reuse_actors=False),
                   run_config=tune.RunConfig(storage_path=str(tmp_path)))
    assert tune.Tuner(shared, run_config=tune.RunConfig(storage_path=str(tmp_path)))._pooled()
    tune.Tuner(shared, tune_config=tune.TuneConfig(reuse_actors=True),
               run_config=tune.RunConfig(storage_path=str(tmp_path)))
    assert not any(tmp_path.iterdir())


# -- the setting ----------------------------------------------------------------------------------
class _Resets(tune.Trainable):
    def step(self):
        return {"done": True}

    def reset_config(self, new_config):
        return True


class _NoReset(tune.Trainable):
    def step(self):
        return {"done": True}


def test_reuse_actors_default_lives_in_one_place(monkeypatch):
    def fn(config):
        return None

    assert settings.reuse_actors(None, fn) is settings.DEFAULT_REUSE_ACTORS is True
    assert settings.reuse_actors(None, _Resets) is True
    assert settings.reuse_actors(None, _NoReset) is False  # Ray's rule: only with reset_config
    assert settings.reuse_actors(False, fn) is False
    monkeypatch.setattr(settings, "DEFAULT_REUSE_ACTORS", False)
    assert settings.reuse_actors(None, fn) is False
    assert settings.use_pool(None, fn, "slurm") is False


class _Sized(_Resets):
    @classmethod
    def default_resource_request(cls, config):
        return {"cpu": config.get("cpus", 1)}


@pytest.mark.parametrize("requested, trainable, backend, srun, changing, pooled", [
    (None, "fn", "slurm", False, False, True),  # Ray's default: on for function trainables
    (None, _Resets, "slurm", False, False, True),  # and classes that implement reset_config
    (None, _NoReset, "slurm", False, False, False),
    (None, "fn", "local", False, False, False),  # the local backend: one process per trial
    (True, "fn", "local", False, False, False),
    (False, "fn", "slurm", False, False, False),  # False keeps one job per trial
    (True, "fn", "slurm", False, False, True),
    (None, "fn", "slurm", True, False, False),  # use_srun: one job per trial by default
    (None, "fn", "slurm", False, True, False),  # ResourceChangingScheduler: the same
    (None, "two_nodes", "slurm", False, False, False),  # multi-node trials: the same
    (None, "two_tasks", "slurm", False, False, False),
    (None, "of_config", "slurm", False, False, False),  # a request that depends on the config
    (None, _Sized, "slurm", False, False, False),
    (None, "gpu_share", "slurm", False, False, True),
])
def test_the_pool_is_the_default_only_where_it_can_run_the_trials(
        requested, trainable, backend, srun, changing, pooled):
    def fn(config):
        return None

    trainable = {"fn": fn, "two_nodes": tune.with_resources(fn, {"nodes": 2}),
                 "two_tasks": tune.with_resources(fn, {"tasks_per_node": 2}),
                 "of_config": tune.with_resources(fn, lambda config: {"cpu": 1}),
                 "gpu_share": tune.with_resources(fn, {"gpu": 0.5})}.get(trainable, trainable)
    scheduler = tune.schedulers.ResourceChangingScheduler(
        base_scheduler=tune.schedulers.FIFOScheduler()) if changing else None
    assert settings.use_pool(requested, trainable, backend, srun, scheduler) is pooled


def test_a_restored_experiment_keeps_the_choice_it_started_with(tmp_path, monkeypatch):
    """The default may change between versions: a restore keeps job-per-trial or pool."""
    import cloudpickle

    monkeypatch.setattr("hpctune.tune.tuner.choose_backend", lambda requested: "slurm")
    tuner = tune.Tuner(_pool_fn, run_config=tune.RunConfig(storage_path=str(tmp_path), name="e"))
    assert tuner._pooled()
    exp = ExperimentDir(tmp_path / "e")
    exp.create()
    exp.write_trainable(pickle_trainable(_pool_fn))
    payload = cloudpickle.loads(tuner._tuner_payload())
    assert payload["pooled_on_slurm"] is True
    exp.tuner_path.write_bytes(cloudpickle.dumps(payload))
    assert tune.Tuner.restore(str(exp.root), _pool_fn)._pooled()
    monkeypatch.setattr(settings, "DEFAULT_REUSE_ACTORS", False)  # today's default: off
    assert tune.Tuner.restore(str(exp.root), _pool_fn)._pooled()  # the experiment's: on
    del payload["pooled_on_slurm"]  # saved before the default was on: one job per trial
    monkeypatch.setattr(settings, "DEFAULT_REUSE_ACTORS", True)
    exp.tuner_path.write_bytes(cloudpickle.dumps(payload))
    assert not tune.Tuner.restore(str(exp.root), _pool_fn)._pooled()


def test_reuse_actors_with_a_class_without_reset_config_fails_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError, match="reset_config"):
        tune.Tuner(_NoReset, tune_config=tune.TuneConfig(reuse_actors=True), backend="local",
                   run_config=tune.RunConfig(storage_path=str(tmp_path)))
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("field, value, match", [
    ("pool_start_method", "thread", "'fork'"), ("pool_idle_s", -1, "pool_idle_s")])
def test_bad_pool_settings(field, value, match):
    with pytest.raises(ConfigError, match=match):
        SlurmConfig(**{field: value})


# -- a pool task, in this process -----------------------------------------------------------------
def quick(config):
    import os as _os

    from hpctune.worker.session import report

    if config.get("crash"):
        _os._exit(3)  # the process dies without an event: the pool goes on
    for i in range(config.get("steps", 1)):
        time.sleep(config.get("sleep", 0.0))
        report({"i": i, "pid": _os.getpid()})


def make_experiment(tmp_path: Path, configs: list[dict]) -> tuple[ExperimentDir, PoolQueue]:
    exp = ExperimentDir(tmp_path / "exp")
    exp.create()
    exp.write_trainable(pickle_trainable(quick))
    exp.write_experiment({"stop_grace_s": 1.0, "heartbeat_s": 30.0})
    queue = PoolQueue(exp.root)
    queue.ensure()
    queue.write_shape(SHAPE, {"cpu": 1, "gpu": 0})
    queue.reserve(len(configs))
    for seq, config in enumerate(configs):
        trial_id = f"t_{seq:05d}"
        exp.write_params(trial_id, config)
        exp.write_trial_meta(trial_id, {"trial_id": trial_id, "resources": {"cpu": 1}})
        queue.enqueue(seq, trial_id, SHAPE)
    return exp, queue


def kinds(exp: ExperimentDir, trial_id: str) -> list[str]:
    return [e["event"] for e in read_events(exp.result_log_path(trial_id)) if e["event"] not in ("heartbeat", "meta")]


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_pool_task_runs_each_trial_in_a_fresh_process_and_survives_a_crash(tmp_path, method):
    exp, queue = make_experiment(tmp_path, [{"steps": 2}, {"crash": True}, {"steps": 2}, {"steps": 1}])
    task = PoolTask(exp.root, "42_0", SHAPE, idle_s=0.3, start_method=method, plan=SlotPlan(slots=2))
    started = time.monotonic()
    assert task.run() == 0
    assert time.monotonic() - started < 30
    # a run whose end is in its trial's log keeps no file in the queue (next-run.json keeps the
    # numbers used); the crash, with no end in the log, keeps its end record for the driver
    assert [queue.ended(s) for s in (0, 2, 3)] == [None] * 3 and queue.ended(1).exit_code == 3
    assert queue.ended(1).trial_id == "t_00001" and queue.next_seq() == 4
    assert sorted(p.name for p in queue.root.rglob("*") if p.is_file()) == [
        "00000001.json", "42_0.jsonl", NEXT_RUN_FILE, f"{SHAPE}.json"]
    assert kinds(exp, "t_00001") == ["start"]  # the crash: the driver retries it per max_failures
    pids = set()
    for trial in ("t_00000", "t_00002", "t_00003"):
        log = read_events(exp.result_log_path(trial))
        assert [e["event"] for e in log if e["event"] not in ("heartbeat", "meta")][-1] == "complete"
        assert {e["slurm_job_id"] for e in log if e["event"] != "meta"} == {run_job_id(int(trial[-1]))}
        pids |= {e["pid"] for e in log if e["event"] == "result"}
    assert len(pids) == 3 and os.getpid() not in pids
    assert queue.claims("42_0") == [] and not queue.view().queued


def test_a_cancelled_run_ends_alone_and_the_task_goes_on(tmp_path):
    exp, queue = make_experiment(tmp_path, [{"steps": 600, "sleep": 0.1}, {"steps": 1}])
    task = PoolTask(exp.root, "43_0", SHAPE, idle_s=0.3, start_method="fork", plan=SlotPlan(slots=1))

    def cancel_when_running():
        while not any(e["event"] == "result" for e in read_events(exp.result_log_path("t_00000"))):
            time.sleep(0.05)
        exp.write_control("t_00000", ControlRecord.stop("test", final=True))
        queue.cancel(0)

    thread = threading.Thread(target=cancel_when_running, daemon=True)
    thread.start()
    task.run()
    thread.join(timeout=5)
    assert kinds(exp, "t_00000")[-1] == "stopped"
    assert kinds(exp, "t_00001")[-1] == "complete"
    assert queue.ended(0) is None and queue.ended(1) is None
    assert not queue.cancel(0)  # an ended run (no claim left): nothing to cancel, no marker left
    assert not any((queue.root / "cancel").iterdir())


def test_sigterm_to_the_pool_task_keeps_unfinished_claims_for_its_restart(tmp_path):
    exp, queue = make_experiment(tmp_path, [{"steps": 600, "sleep": 0.1}, {"steps": 1}])
    task = PoolTask(exp.root, "44_0", SHAPE, idle_s=5, start_method="fork", plan=SlotPlan(slots=1))

    def preempt_when_running():
        while not any(e["event"] == "result" for e in read_events(exp.result_log_path("t_00000"))):
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=preempt_when_running, daemon=True)
    thread.start()
    task.run()
    thread.join(timeout=5)
    assert signal.getsignal(signal.SIGTERM) is not task._on_signal  # the handlers are restored
    assert kinds(exp, "t_00000")[-1] == "terminated"
    assert claimed_seqs(queue, "44_0") == [0]  # resumed first when the requeued task starts again
    assert queue.view().queued == {1: SHAPE}  # nothing new was claimed after the signal


def test_no_run_starts_too_close_to_the_time_limit(tmp_path):
    """Past ``claim_until`` a pool task that has run a trial claims nothing more and leaves: the
    driver sends a fresh one. Its first fill is exempt (a fresh task whose time limit is within
    the warning lead, time_min=1 with signal_lead_s=55, must still run trials, not leave at once
    and be replaced for ever)."""
    exp, queue = make_experiment(tmp_path, [{"steps": 1}, {"steps": 1}])
    task = PoolTask(exp.root, "45_0", SHAPE, idle_s=30, start_method="fork", plan=SlotPlan(slots=1),
                    claim_until=time.monotonic())
    started = time.monotonic()
    task.run()
    assert time.monotonic() - started < 15  # not the 30 s idle wait
    assert kinds(exp, "t_00000")[-1] == "complete"  # its end is in its log: no ended record
    assert queue.view().queued == {1: SHAPE} and "start" not in kinds(exp, "t_00001")  # never ran


def test_a_restored_driver_adopts_only_runs_that_reached_the_queue(tmp_path):
    from hpctune.backends.pool import PoolBackend

    queue = make_queue(tmp_path, 3)
    finish(queue, "8_0", claim(queue, "8_0"), 0)
    claim(queue, "8_0")
    (tmp_path / "pool" / "queue" / SHAPE / "b00000000" / "00000002.t_00002").unlink()  # died before it
    backend = PoolBackend(tmp_path, SlurmConfig(requeue=False))
    assert backend.recorded_launches() == {"t_00000": "pool-0", "t_00001": "pool-1"}
    assert backend._next_seq == 3


# -- the pool backend, with Slurm's answers scripted ------------------------------------------------
class ScriptedSlurm:
    """Stands in for SlurmCommands: sbatch gives array ids 77, 78, ...; squeue shows ``tasks``."""

    def __init__(self):
        import collections
        import subprocess

        self._proc = subprocess.CompletedProcess
        self.counts = collections.Counter()
        self.next_array = 77
        self.tasks: dict = {}
        self.scripts: list[str] = []

    def run(self, args, check=True):
        self.counts[args[0]] += 1
        if args[0] == "sbatch":
            self.scripts.append(Path(args[-1]).read_text())
            self.next_array += 1
            return self._proc(args, 0, f"{self.next_array - 1}\n", "")
        return self._proc(args, 0, "", "")

    def job_states(self, check=True, **selector):
        from hpctune.backends.base import JobReport

        self.counts["squeue"] += 1
        return {task: JobReport(state, "", "n1") for task, state in self.tasks.items()}


def test_pool_backend_submits_one_task_per_slot_and_hands_back_a_dead_tasks_run(tmp_path):
    from hpctune.backends.pool import PoolBackend

    slurm = ScriptedSlurm()
    backend = PoolBackend(tmp_path, SlurmConfig(requeue=False), commands=slurm)
    jobs = backend.launch([f"t_{i:05d}" for i in range(10)], {"cpu": 1, "gpu": 0}, throttle=4)
    assert jobs == [f"pool-{i}" for i in range(10)] and slurm.counts["sbatch"] == 1
    assert "#SBATCH --array=0-3%4" in slurm.scripts[0] and "-m hpctune.pool" in slurm.scripts[0]
    slurm.tasks = {f"77_{i}": "RUNNING" for i in range(4)}
    queue = backend.queue
    shape = queue.view().queued[0]
    for i in range(4):
        assert claim(queue, f"77_{i}", shape) == i
    states = backend.poll()
    backend.reconcile()
    assert states["pool-0"].state == "RUNNING" and states["pool-0"].node == "n1 (pool task 77_0)"
    assert states["pool-9"].state == "PENDING" and slurm.counts["sbatch"] == 1  # 4 tasks suffice
    del slurm.tasks["77_1"]  # killed: its run is reported gone, and its claim handed back
    states = backend.poll()
    assert "pool-1" not in states and not queue.dropped(1) and slurm.counts["sbatch"] == 1
    backend.reconcile()
    assert queue.dropped(1)
    assert "pool task 77_1 ended while running it" in backend.final_states(["pool-1"])["pool-1"]
    assert slurm.counts["sbatch"] == 2 and "#SBATCH --array=0-0%1" in slurm.scripts[1]  # a replacement
    backend.cancel(["pool-9", "pool-2"])  # queued: out of the queue; claimed: its task ends it
    assert queue.dropped(9) and queue.cancel_requested(2)
    assert backend.final_states(["pool-9"]) == {"pool-9": "cancelled before a pool task started it"}


def test_pool_arrays_fit_the_max_array_size(tmp_path):
    """10 trials without a throttle want 10 pool tasks: with max_array_size=4 they go out as
    arrays of 4, 4 and 2 (one array of 10 is refused by sbatch: "Invalid job array")."""
    from hpctune.backends.pool import PoolBackend

    slurm = ScriptedSlurm()
    backend = PoolBackend(tmp_path, SlurmConfig(requeue=False, max_array_size=4), commands=slurm)
    backend.launch([f"t_{i:05d}" for i in range(10)], {"cpu": 1, "gpu": 0}, throttle=None)
    arrays = [line for script in slurm.scripts for line in script.splitlines() if "--array=" in line]
    assert arrays == ["#SBATCH --array=0-3%4", "#SBATCH --array=0-3%4", "#SBATCH --array=0-1%2"]
    assert slurm.counts["sbatch"] == 3


def test_pool_tasks_that_never_start_a_run_fail_the_queued_runs(tmp_path):
    """Pool tasks that end at once (a failing setup line): after BARREN_TASKS of them with no
    run taken, the queued runs fail as their jobs would, instead of fresh pool tasks for ever;
    tasks that take runs and end are replaced without limit."""
    from hpctune.backends.pool import BARREN_TASKS, PoolBackend

    slurm = ScriptedSlurm()
    backend = PoolBackend(tmp_path, SlurmConfig(requeue=False), commands=slurm)
    jobs = backend.launch([f"t_{i:05d}" for i in range(30)], {"cpu": 1, "gpu": 0}, throttle=2)
    shape = backend.queue.view().queued[0]
    for round_ in range(2 * BARREN_TASKS):  # each round: both tasks take a run and end
        for task in (f"{1000 + round_}_0", f"{1000 + round_}_1"):
            backend.queue.finish(task, backend.queue.claim_next(task, shape), 0)
        backend.poll()  # the tasks are gone
        backend.reconcile()
    assert not backend._failed_unstarted and slurm.counts["sbatch"] == 1 + 2 * BARREN_TASKS
    submitted = slurm.counts["sbatch"]
    for _ in range(BARREN_TASKS):  # now no task takes anything
        backend.poll()
        backend.reconcile()
    assert slurm.counts["sbatch"] - submitted < BARREN_TASKS
    assert not backend.queue.view().queued and backend.queue.dropped(29)
    why = backend.final_states(["pool-29"])["pool-29"]
    assert "without starting any trial" in why and "SlurmConfig(setup)" in why
    assert 0 not in backend._failed_unstarted and jobs[29] == "pool-29"


def test_a_restored_pool_backend_keeps_the_slot_cap(tmp_path):
    """A restored driver polls before it launches anything: the cap (max_concurrent_trials) its
    predecessor launched with still holds, so it submits no pool task beyond it."""
    from hpctune.backends.pool import PoolBackend

    slurm = ScriptedSlurm()
    PoolBackend(tmp_path, SlurmConfig(requeue=False), commands=slurm).launch(
        [f"t_{i:05d}" for i in range(10)], {"cpu": 1, "gpu": 0}, throttle=4)
    slurm.tasks = {f"77_{i}": "RUNNING" for i in range(4)}
    restored = PoolBackend(tmp_path, SlurmConfig(requeue=False), commands=slurm)
    restored.poll()
    restored.reconcile()
    assert slurm.counts["sbatch"] == 1
    slurm.tasks = {f"77_{i}": "RUNNING" for i in range(3)}  # one idled out: one replacement
    restored.poll()
    restored.reconcile()
    restored.reconcile()  # the replacement counts as live: no second one
    assert slurm.counts["sbatch"] == 2 and "#SBATCH --array=0-0%1" in slurm.scripts[1]


def test_multi_node_trials_and_srun_are_refused_with_a_pool(tmp_path, monkeypatch):
    def fn(config):
        return None

    monkeypatch.setattr("hpctune.tune.tuner.choose_backend", lambda requested: "slurm")
    pooled = tune.TuneConfig(reuse_actors=True)
    with pytest.raises(ConfigError, match="multi-node"):
        tune.Tuner(tune.with_resources(fn, {"nodes": 2}), tune_config=pooled,
                   run_config=tune.RunConfig(storage_path=str(tmp_path)))
    with pytest.raises(ConfigError, match="use_srun"):
        tune.Tuner(fn, tune_config=pooled, run_config=tune.RunConfig(
            storage_path=str(tmp_path), slurm=SlurmConfig(use_srun=True)))
    assert not any(tmp_path.iterdir())


def test_a_pool_task_that_does_not_end_a_cancelled_run_is_scancelled(tmp_path):
    from hpctune.backends.pool import PoolBackend

    slurm = ScriptedSlurm()
    slurm.run = _recording(slurm.run, calls := [])
    backend = PoolBackend(tmp_path, SlurmConfig(requeue=False), commands=slurm)
    backend.launch(["t_00000", "t_00001"], {"cpu": 1, "gpu": 0}, throttle=2)
    slurm.tasks = {"77_0": "RUNNING", "77_1": "RUNNING"}
    shape = backend.queue.view().queued[0]
    backend.queue.claim_next("77_0", shape)
    backend.cancel(["pool-0"])
    backend.poll()
    backend.reconcile()
    assert not [c for c in calls if c[0] == "scancel"]  # it has stop_grace_s + 30 s to answer
    backend.escalate_after_s = 0.0
    backend.poll()
    assert not [c for c in calls if c[0] == "scancel"]  # polling alone acts on nothing
    backend.reconcile()
    assert ["scancel", "77_0"] in calls  # hung: the whole pool task goes


def _recording(run, calls):
    def wrapped(args, check=True):
        calls.append(list(args))
        return run(args, check)
    return wrapped


def test_a_pool_with_resource_changing_scheduler_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr("hpctune.tune.tuner.choose_backend", lambda requested: "slurm")
    changing = tune.schedulers.ResourceChangingScheduler(
        base_scheduler=tune.schedulers.FIFOScheduler())
    with pytest.raises(ConfigError, match=r"ResourceChangingScheduler with TuneConfig\(reuse_actors=True\).*Fix"):
        tune.Tuner(_pool_fn, tune_config=tune.TuneConfig(reuse_actors=True, scheduler=changing),
                   run_config=tune.RunConfig(storage_path=str(tmp_path)))
    assert not any(tmp_path.iterdir())
    tune.Tuner(_pool_fn, tune_config=tune.TuneConfig(reuse_actors=False, scheduler=changing),
               run_config=tune.RunConfig(storage_path=str(tmp_path)))


def _pool_fn(config):
    return None


def test_a_pool_tops_its_queue_up_at_a_tenth_of_a_batch_throttled_or_not(tmp_path, monkeypatch):
    """Queueing runs costs no Slurm call and the pool's throttle is its pool tasks' cap, so the
    launcher queues the next trials once a tenth of a batch ended (PoolBackend.top_up_fraction),
    with max_concurrent_trials too; one job per trial keeps half a batch, and a throttled
    array drains first."""
    from hpctune.backends.pool import PoolBackend
    from tests.unit.fake_backend import FakeBackend
    from tests.unit.test_controller import make_rig

    class QueueingBackend(FakeBackend):
        top_up_fraction = PoolBackend.top_up_fraction

    monkeypatch.setattr("hpctune.controller.launching.EAGER_BATCH", 20)
    for throttle, backend, after_two in ((None, QueueingBackend, [20, 2]), (4, QueueingBackend, [20, 2]),
                                         (None, FakeBackend, [20]), (4, FakeBackend, [20])):
        rig = make_rig(tmp_path / f"{throttle}{backend.__name__}", {"x": tune.uniform(0, 1)},
                       num_samples=60, max_concurrent=throttle,
                       backend=backend(ExperimentDir(tmp_path / f"{throttle}{backend.__name__}" / "exp")))
        rig.step()
        for i in range(2):
            rig.job(i).start().complete()
        rig.step(2)
        assert [len(launch.trial_ids) for launch in rig.backend.launches] == after_two, (throttle, backend)
