"""ResourceChangingScheduler and its allocation functions, with synthetic trials and results; the
controller enacting ``ChangeResources`` over the scripted in-process backend.

Expected numbers follow Ray's decisions (``resource_changing_scheduler.py``) worked by hand:
with 8 CPUs and two 1-CPU trials, 6 CPUs are spare, each trial's even share is 3 more.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hpctune import tune
from hpctune.backends.capacity import cluster_resources, gres_gpus, parse_sinfo_nodes
from hpctune.controller import Controller, ControllerSettings
from hpctune.errors import ConfigError
from hpctune.storage.driver_state import load_driver_state
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.replay import load_trials
from hpctune.storage.result_log import read_events
from hpctune.tune.callback import CallbackList
from hpctune.tune.experiment.trial import TrialInfo, TrialStatus
from hpctune.tune.schedulers import create_scheduler
from hpctune.tune.schedulers.resource_changing_scheduler import (
    DistributeResources,
    DistributeResourcesToTopJob,
    PlacementGroupFactory,
    ResourceChangingScheduler,
    TrialRecord,
)
from hpctune.tune.schedulers.trial_scheduler import ChangeResources, Decision, FIFOScheduler
from hpctune.tune.search.basic_variant import BasicVariantGenerator
from hpctune.tune.stopper import as_stopper
from tests.unit.fake_backend import FakeBackend, FakeClock

CPU1 = {"cpu": 1, "gpu": 0}


class View:
    """A synthetic ``tune_controller``: the live trials."""

    def __init__(self, *records: TrialRecord):
        self.records = list(records)

    def get_live_trials(self):
        return self.records


class Sched:
    """What an allocation function reads from its scheduler."""

    def __init__(self, base=CPU1, cluster=None, metric=None, mode=None):
        self.base_trial_resources = PlacementGroupFactory([{"CPU": base["cpu"], "GPU": base["gpu"]}])
        self.cluster_resources = cluster
        self.metric, self.mode = metric, mode


def rec(trial_id: str, cpu: float = 1, gpu: float = 0, **result) -> TrialRecord:
    return TrialRecord(trial_id, resources={"cpu": cpu, "gpu": gpu}, last_result=result)


def it(n: int = 1, **metrics) -> dict:
    return {"training_iteration": n, **metrics}


# -- DistributeResources ---------------------------------------------------------------------------
def test_nothing_changes_before_the_first_iteration():
    a = rec("a")
    assert DistributeResources()(View(a), a, it(0), Sched(cluster={"cpu": 8})) is None


def test_two_trials_on_eight_cpus_grow_to_their_even_share():
    a, b = rec("a"), rec("b")
    fn = DistributeResources()
    assert fn(View(a, b), a, it(), Sched(cluster={"cpu": 8})) == {"cpu": 4, "gpu": 0}


def test_the_even_share_is_rounded_up_for_the_first_trials():
    a, b, c = rec("a"), rec("b"), rec("c")  # 5 spare: shares 2, 2, 1; every trial may take 2
    assert DistributeResources()(View(a, b, c), c, it(), Sched(cluster={"cpu": 8}))["cpu"] == 3


def test_a_trial_takes_only_what_is_free():
    a, b = rec("a", cpu=4), rec("b", cpu=3)  # 1 CPU free
    assert DistributeResources()(View(a, b), b, it(), Sched(cluster={"cpu": 8}))["cpu"] == 4


def test_a_trial_gives_back_what_is_over_requested_but_never_goes_below_its_base():
    a, b = rec("a", cpu=4), rec("b", cpu=6)  # 2 over the 8 there are
    fn, sched = DistributeResources(), Sched(cluster={"cpu": 8})
    assert fn(View(a, b), b, it(), sched)["cpu"] == 4
    small = rec("c", cpu=1)
    assert fn(View(rec("x", cpu=9), small), small, it(), sched)["cpu"] == 1


def test_a_request_never_grows_past_the_largest_node():
    a, b = rec("a"), rec("b")  # the even share would be 4 more (5 CPUs); a node has 4
    sched = Sched(cluster={"cpu": 10, "gpu": 0, "node_cpu": 4, "node_gpu": 0})
    assert DistributeResources()(View(a, b), a, it(), sched)["cpu"] == 4
    two = DistributeResources(increase_by={"CPU": 2})  # in whole units: 1 + 2, not 1 + 3
    assert two(View(a, b), a, it(), Sched(cluster={"cpu": 10, "node_cpu": 4}))["cpu"] == 3


def test_increase_by_times_caps_the_units_added():
    a, b = rec("a"), rec("b")
    fn = DistributeResources(increase_by={"CPU": 1}, increase_by_times=1)
    assert fn(View(a, b), a, it(), Sched(cluster={"cpu": 8}))["cpu"] == 2


def test_increase_by_two_cpus_moves_in_whole_units():
    a, b = rec("a"), rec("b")  # 6 spare = three 2-CPU units: shares 2 and 1; a may take 2 units
    fn = DistributeResources(increase_by={"CPU": 2})
    assert fn(View(a, b), a, it(), Sched(cluster={"cpu": 8}))["cpu"] == 5


def test_gpu_trials_grow_by_gpus_and_keep_their_cpus():
    a, b = rec("a", cpu=1, gpu=1), rec("b", cpu=1, gpu=1)
    sched = Sched(base={"cpu": 1, "gpu": 1}, cluster={"cpu": 8, "gpu": 4})
    assert DistributeResources()(View(a, b), a, it(), sched) == {"cpu": 1, "gpu": 2}


def test_reserved_resources_are_never_handed_out():
    a, b = rec("a"), rec("b")
    fn = DistributeResources(reserve_resources={"CPU": 4})
    assert fn(View(a, b), a, it(), Sched(cluster={"cpu": 8}))["cpu"] == 2


def test_without_the_clusters_size_the_error_says_how_to_give_it():
    a = rec("a")
    with pytest.raises(ConfigError, match="set_cluster_resources"):
        DistributeResources()(View(a), a, it(), Sched(cluster=None))


@pytest.mark.parametrize("kwargs, needle", [
    ({"add_bundles": True}, "add_bundles=True"),
    ({"increase_by": {"TPU": 1}}, "may hold only"),
    ({"increase_by": {"CPU": -1}}, "may hold only"),
    ({"increase_by": {"CPU": 0}}, "at least one CPU"),
    ({"increase_by_times": 1.5}, "whole number"),
    ({"reserve_resources": "2"}, "must be a dict"),
])
def test_bad_arguments_are_clear_errors(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        DistributeResources(**kwargs)


# -- DistributeResourcesToTopJob ----------------------------------------------------------------------
def test_the_top_job_takes_every_free_unit_and_the_others_keep_theirs():
    a, b, c = rec("a", acc=0.5), rec("b", acc=0.9), rec("c")  # c has not reported acc: last
    fn, sched = DistributeResourcesToTopJob(metric="acc", mode="max"), Sched(cluster={"cpu": 8})
    assert fn(View(a, b, c), b, it(acc=0.9), sched)["cpu"] == 6
    assert fn(View(a, b, c), a, it(acc=0.5), sched)["cpu"] == 1
    assert fn(View(a, b, c), c, it(), sched)["cpu"] == 1


def test_the_top_job_in_min_mode_and_from_the_schedulers_metric():
    a, b = rec("a", loss=0.1), rec("b", loss=0.2)
    fn = DistributeResourcesToTopJob()
    sched = Sched(cluster={"cpu": 4}, metric="loss", mode="min")
    fn.metric, fn.mode = sched.metric, sched.mode  # what the scheduler does before the call
    assert fn(View(a, b), a, it(), sched)["cpu"] == 3


def test_a_capped_top_job_passes_the_free_units_to_the_next_best():
    a, b = rec("a", cpu=2, acc=0.9), rec("b", acc=0.5)
    fn = DistributeResourcesToTopJob(metric="acc", mode="max", increase_by={"CPU": 1},
                                     increase_by_times=1)
    sched = Sched(cluster={"cpu": 8})
    assert fn(View(a, b), b, it(acc=0.5), sched)["cpu"] == 2
    assert fn(View(a, b), a, it(acc=0.9), sched)["cpu"] == 2  # at its cap already


def test_the_top_job_needs_a_metric():
    a = rec("a")
    with pytest.raises(ConfigError, match="metric/mode"):
        DistributeResourcesToTopJob()(View(a), a, it(), Sched(cluster={"cpu": 4}))


# -- ResourceChangingScheduler ---------------------------------------------------------------------------
def info(trial_id: str, cpu: int = 1, gpu: int = 0) -> TrialInfo:
    return TrialInfo(trial_id, {"x": 1}, trial_id, {"cpu": cpu, "gpu": gpu})


def test_a_continue_with_new_resources_becomes_a_change_and_the_same_ones_do_not():
    rcs = ResourceChangingScheduler(resources_allocation_function=DistributeResources())
    rcs.set_cluster_resources({"cpu": 8, "gpu": 0})
    rcs.on_trial_add(info("a")), rcs.on_trial_add(info("b"))
    assert rcs.on_trial_result(info("a"), it()) == ChangeResources({"cpu": 4, "gpu": 0})
    assert rcs.on_trial_result(info("a", cpu=4), it(2)) == Decision.CONTINUE
    assert rcs.debug_string() == "(ResourceChangingScheduler) FIFOScheduler"


def test_the_base_schedulers_stop_and_pause_win_and_the_function_is_not_asked():
    calls = []

    class Stopper(FIFOScheduler):
        def on_trial_result(self, trial, result):
            return Decision.STOP

    rcs = ResourceChangingScheduler(Stopper(), lambda *args: calls.append(args) or {"cpu": 2})
    rcs.on_trial_add(info("a"))
    assert rcs.on_trial_result(info("a"), it()) is Decision.STOP and calls == []


def test_a_users_function_sees_the_live_trials_and_may_answer_in_rays_spelling():
    seen = []

    def allocate(tune_controller, trial, result, scheduler):
        seen.append(([t.trial_id for t in tune_controller.get_live_trials()], trial.last_result,
                     scheduler.base_trial_resources.required_resources,
                     tune_controller._resource_updater.get_num_cpus()))
        return PlacementGroupFactory([{"CPU": 3}]) if trial.trial_id == "a" else {"CPU": 2, "GPU": 0}

    rcs = ResourceChangingScheduler(resources_allocation_function=allocate)
    rcs.set_cluster_resources({"cpu": 16})
    for t in "abc":
        rcs.on_trial_add(info(t))
    rcs.on_trial_complete(info("c"), None)
    assert rcs.on_trial_result(info("a"), it(loss=1)) == ChangeResources({"cpu": 3, "gpu": 0})
    assert rcs.on_trial_result(info("b"), it()) == ChangeResources({"cpu": 2, "gpu": 0})
    assert seen[0] == (["a", "b"], {"training_iteration": 1, "loss": 1}, {"CPU": 1}, 16)


def test_a_function_answering_nonsense_is_a_clear_error():
    rcs = ResourceChangingScheduler(resources_allocation_function=lambda *a: "two cpus")
    rcs.on_trial_add(info("a"))
    with pytest.raises(ConfigError, match="must return a dict"):
        rcs.on_trial_result(info("a"), it())


def test_trials_must_start_alike_unless_this_scheduler_changed_them():
    rcs = ResourceChangingScheduler(resources_allocation_function=lambda *a: {"cpu": 2})
    rcs.on_trial_add(info("a"))
    with pytest.raises(ConfigError, match="same resources"):
        rcs.on_trial_add(info("b", cpu=2))
    rcs.on_trial_result(info("a"), it())
    rcs.on_trial_add(info("a", cpu=2))  # a restored trial with its changed request


def test_bad_construction_is_a_clear_error_and_none_warns():
    with pytest.raises(ConfigError, match="callable"):
        ResourceChangingScheduler(resources_allocation_function=3)
    with pytest.raises(ConfigError, match="base_scheduler"):
        ResourceChangingScheduler(base_scheduler="asha")
    with pytest.warns(UserWarning, match="no trial's resources"):
        rcs = ResourceChangingScheduler(resources_allocation_function=None)
    rcs.on_trial_add(info("a"))
    assert rcs.on_trial_result(info("a"), it()) == Decision.CONTINUE


def test_the_base_scheduler_pauses_holds_and_releases_trials():
    class Barrier(FIFOScheduler):
        metric_required = True

        def on_trial_result(self, trial, result):
            return Decision.PAUSE

        def resume_decision(self, trial):
            return None if trial.trial_id == "a" else Decision.STOP

    calls = []
    rcs = ResourceChangingScheduler(Barrier(), lambda *args: calls.append(args) or {"cpu": 2})
    rcs.set_search_properties("loss", "min")
    assert rcs.metric == "loss" and rcs.mode == "min" and rcs.metric_required
    rcs.on_trial_add(info("a")), rcs.on_trial_add(info("b"))
    assert rcs.on_trial_result(info("a"), it(loss=1)) is Decision.PAUSE and calls == []
    assert rcs.resume_decision(info("a")) is None
    assert rcs.resume_decision(info("b")) is Decision.STOP


def test_the_state_round_trips_mid_run():
    make = lambda: ResourceChangingScheduler(  # noqa: E731
        resources_allocation_function=DistributeResources())
    rcs = make()
    rcs.set_cluster_resources({"cpu": 8})
    rcs.on_trial_add(info("a")), rcs.on_trial_add(info("b"))
    rcs.on_trial_result(info("b", cpu=4), it())
    restored = make()
    restored.set_state(rcs.get_state())
    assert restored.cluster_resources == {"cpu": 8, "gpu": 0}
    assert restored.on_trial_result(info("a"), it()) == rcs.on_trial_result(info("a"), it())
    assert restored.on_trial_result(info("a"), it()) == ChangeResources({"cpu": 4, "gpu": 0})
    with pytest.raises(ConfigError, match="version"):
        make().set_state({**rcs.get_state(), "version": 99})


def test_create_scheduler_by_rays_name():
    assert isinstance(create_scheduler("resource_changing"), ResourceChangingScheduler)


# -- the cluster's size --------------------------------------------------------------------------------------
def test_sinfo_nodes_are_summed_once_each_and_gres_counted():
    text = "n1|debug*|4|gpu:2\nn1|preempt|4|gpu:2\nn2|debug*|4|gpu:a100:2(S:0),mps:100\nn3|big|64|(null)\n"
    assert parse_sinfo_nodes(text, default_only=True) == {"cpu": 8, "gpu": 4, "node_cpu": 4, "node_gpu": 2}
    assert parse_sinfo_nodes(text.replace("*", ""), default_only=False) == {
        "cpu": 72, "gpu": 4, "node_cpu": 64, "node_gpu": 2}
    assert parse_sinfo_nodes("", default_only=False) is None
    assert [gres_gpus(g) for g in ("gpu:2", "gpu:h100:8(S:0-1)", "(null)", "gpu")] == [2, 8, 0, 0]


def test_the_local_backends_size_is_this_machines():
    class Local:
        name, max_cpus, gpus = "local", 6, ["0"]

    assert cluster_resources(Local()) == {"cpu": 6, "gpu": 1, "node_cpu": 6, "node_gpu": 1}
    assert cluster_resources(object()) is None


# -- the controller enacts a change -------------------------------------------------------------------------
T0, T1 = "t_00000", "t_00001"


def two_cpus_from_iteration_2(tune_controller, trial, result, scheduler):
    return {"cpu": 2} if result["training_iteration"] >= 2 and trial.trial_id == T0 else None


def make_run(tmp_path: Path, backend: FakeBackend | None = None):
    exp = ExperimentDir(tmp_path / "exp")
    exp.create()
    space = {"x": tune.grid_search([0, 1])}
    backend = backend or FakeBackend(exp)
    searcher = BasicVariantGenerator(seed=0)
    searcher.set_search_properties("loss", "min", space, num_samples=1)
    scheduler = ResourceChangingScheduler(resources_allocation_function=two_cpus_from_iteration_2)
    scheduler.set_search_properties("loss", "min")
    ctl = Controller(exp, backend, searcher, scheduler, as_stopper(None), CallbackList([]),
                     ControllerSettings(trial_id_prefix="t", metric="loss", mode="min",
                                        param_space=space), clock=FakeClock())
    return ctl, backend, exp


def kinds(exp: ExperimentDir, trial_id: str) -> list[str]:
    return [e["event"] for e in read_events(exp.result_log_path(trial_id)) if e["event"] != "meta"]


def decide_change(ctl, backend):
    ctl.step()
    job = backend.job(T0).start()
    backend.job(T1).start()
    job.report(checkpoint=True, loss=1.0).report(checkpoint=True, loss=0.9)
    ctl.step()
    return job


def test_a_change_pauses_the_trial_and_resubmits_it_with_the_new_request(tmp_path):
    ctl, backend, exp = make_run(tmp_path)
    job = decide_change(ctl, backend)
    trial = ctl.trials[T0]
    assert exp.read_control(T0).is_pause and trial.pending_resources["cpu"] == 2
    assert backend.launches[0].resources["cpu"] == 1 and backend.cancels == []
    job.report(checkpoint=True, loss=0.8).paused()  # the worker checkpoints at its next report
    ctl.step()
    assert trial.status is TrialStatus.PAUSED
    ctl.step()
    assert backend.launches[-1].trial_ids == [T0] and backend.launches[-1].resources["cpu"] == 2
    assert trial.resources["cpu"] == 2 and trial.pending_resources is None
    assert exp.read_trial_meta(T0)["resources"]["cpu"] == 2  # what get_trial_resources() reads
    (event,) = [e for e in read_events(exp.result_log_path(T0)) if e["event"] == "resources_changed"]
    assert (event["old_resources"]["cpu"], event["new_resources"]["cpu"], event["at_iteration"]) == (1, 2, 3)
    again = backend.job(T0).start(restored_iteration=3)
    again.iteration = 3
    again.report(checkpoint=True, loss=0.5).complete()  # the same request again: no change
    backend.job(T1).report(loss=2.0).complete()
    for _ in range(3):
        ctl.step()
    assert ctl.done and len(backend.launches) == 2
    assert kinds(exp, T0) == ["start", "result", "result", "result", "paused", "resources_changed",
                              "start", "result", "complete"]
    assert {t.trial_id: t.resources["cpu"] for t in load_trials(exp)} == {T0: 2, T1: 1}


def test_a_restored_driver_resubmits_with_the_decided_request(tmp_path):
    ctl, backend, exp = make_run(tmp_path)
    job = decide_change(ctl, backend)
    ctl.save()  # then the driver is SIGKILLed; the worker pauses meanwhile
    job.paused()
    ctl2, backend2, _ = make_run(tmp_path, backend=backend.successor())
    ctl2.restore(load_driver_state(exp))
    ctl2.step()
    assert backend2.launches[-1].trial_ids == [T0] and backend2.launches[-1].resources["cpu"] == 2
    assert kinds(exp, T0).count("resources_changed") == 1


def test_a_bad_request_from_the_function_names_it(tmp_path):
    ctl, backend, exp = make_run(tmp_path)
    ctl.scheduler._resources_allocation_function = lambda *a: {"cpu": -3}
    ctl.step()
    backend.job(T0).start().report(loss=1.0)
    with pytest.raises(ConfigError, match=r"resources_allocation_function .* \{'cpu': -3, 'gpu': 0\} for trial t_00000"):
        ctl.step()


# -- what people see ------------------------------------------------------------------------------------------
def test_the_status_table_and_trials_show_changed_requests_paused_trials_and_lineage(tmp_path, capsys):
    from hpctune.cli.main import main
    from hpctune.display.table import infer_columns, lineage_cell, render, table_headers, trial_row
    from hpctune.display.view import StatusView

    ctl, backend, exp = make_run(tmp_path)
    job = decide_change(ctl, backend)
    columns = infer_columns(ctl.trial_list, "loss", None, None)
    rows = {r[0]: dict(zip(table_headers(columns), r, strict=True))
            for r in (trial_row(t, columns) for t in ctl.trial_list)}
    assert (rows[T0]["resources"], rows[T1]["resources"]) == ("2 CPU (next)", "1 CPU")
    from hpctune.display.table import resources_cell
    from hpctune.tune.experiment.trial import Trial

    ended = Trial("t", {}, "", "", resources={"cpu": 1, "gpu": 1}, status=TrialStatus.TERMINATED,
                  pending_resources={"cpu": 4, "gpu": 1})
    assert resources_cell(ended) == "1 CPU 1 GPU"  # a change it never got is not shown
    job.paused()
    ctl.step()
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(render(StatusView(trials=ctl.trial_list), columns))
    text = console.export_text()
    assert "resources" in text and "released (paused)" in text and "2 CPU (next)" in text
    ctl.step()  # resubmitted with 2 CPUs
    ctl.save()
    capsys.readouterr()
    assert main(["trials", str(exp.root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "resources" in lines[0]
    assert any(line.startswith(T0) and "2 CPU" in line for line in lines)
    trial = ctl.trials[T1]
    trial.lineage = ["t_00003@4", "t_00000@8"]
    assert lineage_cell(trial) == "t_00003@4>t_00000@8"
    assert lineage_cell(trial, max_len=10) == "…t_00000@8"


def test_the_same_requests_everywhere_hide_the_resources_column(tmp_path):
    from rich.console import Console

    from hpctune.display.table import infer_columns, render
    from hpctune.display.view import StatusView

    ctl, backend, _ = make_run(tmp_path)
    ctl.step()
    console = Console(width=200, record=True)
    console.print(render(StatusView(trials=ctl.trial_list), infer_columns(ctl.trial_list, "loss", None, None)))
    assert "resources" not in console.export_text().split("Slurm job", 1)[1]


def test_the_driver_tells_the_scheduler_the_clusters_size_unless_the_user_did(tmp_path):
    from hpctune.controller.bridge import bridge_scheduler

    class Ctl:
        class backend:  # noqa: N801 - a stand-in for the local backend
            name, max_cpus, gpus = "local", 4, []

    rcs = ResourceChangingScheduler()
    bridge_scheduler(rcs).bind(Ctl())
    assert rcs.cluster_resources == {"cpu": 4, "gpu": 0, "node_cpu": 4, "node_gpu": 0}
    mine = ResourceChangingScheduler()
    mine.set_cluster_resources({"CPU": 32, "GPU": 8})
    bridge_scheduler(mine).bind(Ctl())
    assert mine.cluster_resources == {"cpu": 32, "gpu": 8}
    assert not hasattr(FIFOScheduler(), "cluster_resources")
