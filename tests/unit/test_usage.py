"""The allocation used (``accounting/usage.py``): hand-computed figures for each source."""

from __future__ import annotations

import pytest

from hpctune.accounting.estimate import TrialShape
from hpctune.accounting.usage import (
    EVENTS,
    POOL,
    SACCT,
    Hours,
    SacctRecord,
    describe_usage,
    event_spans,
    experiment_usage,
    parse_sacct,
    sacct_by_job,
    tres_gpus,
    trial_usage,
)

SACCT_TEXT = """\
101_0|COMPLETED|3600|1|4|billing=4,cpu=4,gres/gpu=2,mem=1G,node=1|2026-12-07T10:00:00|2026-12-07T10:01:00
101_1|REQUEUED|600|2|8|cpu=8,node=2|2026-12-07T10:00:00|2026-12-07T10:00:30
101_1|COMPLETED|1800|2|8|cpu=8,node=2|2026-12-07T10:11:00|2026-12-07T10:12:00
102|PENDING|0|1|1||2026-12-07T10:00:00|Unknown
102.batch|garbage
"""


def test_sacct_lines_become_records_with_allocation_and_queue_time():
    records = parse_sacct(SACCT_TEXT)
    assert [r.job_id for r in records] == ["101_0", "101_1", "101_1", "102"]
    first = records[0]
    assert (first.elapsed_s, first.nodes, first.cpus, first.gpus, first.pending_s) == (
        3600,
        1,
        4,
        2,
        60,
    )
    assert first.hours == Hours(node=1, cpu=4, gpu=2, wall=1)
    assert records[3].pending_s is None and records[3].hours == Hours()
    assert len(sacct_by_job(records)["101_1"]) == 2


def test_typed_gpus_count_once():
    assert tres_gpus("cpu=1,gres/gpu=2,gres/gpu:a100=2") == 2
    assert tres_gpus("cpu=1,gres/gpu:a100=1,gres/gpu:v100=2") == 3
    assert tres_gpus("cpu=1") is None  # AccountingStorageTRES without gres/gpu: unknown


def test_where_sacct_records_no_gpus_the_trials_request_counts():
    sacct = sacct_by_job(
        parse_sacct("9|COMPLETED|1800|1|2|cpu=2,node=1|2026-12-07T10:00:00|2026-12-07T10:00:00")
    )
    assert sacct["9"][0].gpus is None and sacct["9"][0].hours.gpu == 0
    usage = trial_usage(TrialShape(cpus=2, gpus=1), ["9"], {}, sacct, {})
    assert usage.used == Hours(node=0.5, cpu=1.0, gpu=0.5, wall=0.5) and usage.queued_s == 0


def test_a_trial_from_sacct_counts_every_incarnation_and_its_queue_time():
    sacct = sacct_by_job(parse_sacct(SACCT_TEXT))
    usage = trial_usage(TrialShape(cpus=1), ["101_1", "101_1"], {}, sacct, {})
    # 600 s + 1800 s on 2 nodes x 8 CPUs, Slurm's allocation (not the trial's request)
    assert usage.used == Hours(node=2 * 2400 / 3600, cpu=8 * 2400 / 3600, gpu=0, wall=2400 / 3600)
    assert usage.queued_s == 30 + 60 and usage.source == SACCT


def test_without_accounting_a_trial_is_its_event_spans_times_its_resources():
    events = [
        {"event": "start", "slurm_job_id": "7", "restart_count": 0, "time": 100.0},
        {"event": "result", "slurm_job_id": "7", "restart_count": 0, "time": 160.0},
        {"event": "stop_decided", "time": 5000.0},  # the driver's: not the job's time
        {"event": "start", "slurm_job_id": "7", "restart_count": 1, "time": 1000.0},
        {"event": "complete", "slurm_job_id": "7", "restart_count": 1, "time": 1120.0},
    ]
    spans = event_spans(events)
    assert spans == {("7", 0): 60.0, ("7", 1): 120.0}
    usage = trial_usage(TrialShape(nodes=2, cpus=4, gpus=1), ["7"], spans, None, {})
    assert usage.used == Hours(
        node=2 * 180 / 3600, cpu=4 * 180 / 3600, gpu=180 / 3600, wall=180 / 3600
    )
    assert usage.queued_s is None and usage.source == EVENTS


def test_a_pool_run_is_its_wall_time_times_one_slot_and_the_rest_of_the_task_is_idle():
    shape = TrialShape(cpus=2, gpus=1)
    a = trial_usage(shape, ["pool-0"], {}, {}, {"pool-0": 1800.0})
    b = trial_usage(shape, ["pool-1"], {}, {}, {"pool-1": 900.0})
    assert a.used == Hours(node=0.5, cpu=1.0, gpu=0.5, wall=0.5) and a.source == POOL
    # one pool task of 2 slots (4 CPUs, 2 GPUs) held for one hour: 4 CPU-h, of which 1.5 used
    task = SacctRecord("55_0", "COMPLETED", 3600, 1, 4, 2, 5.0)
    usage = experiment_usage({"a": a, "b": b}, [task.hours_for(2)])
    assert usage.idle == Hours(node=0.25, cpu=2.5, gpu=1.25, wall=0.25)
    assert usage.used.cpu == pytest.approx(4.0) and usage.used.gpu == pytest.approx(2.0)
    assert usage.idle_share("cpu") == pytest.approx(2.5 / 4)
    assert "idle pool slots 2.5 CPU-h (62%)" in describe_usage(usage)
    # sacct without GPUs (AccountingStorageTRES): the task's own GPUs, its shape x its slots
    unrecorded = SacctRecord("55_0", "COMPLETED", 3600, 1, 4, None, 5.0)
    assert experiment_usage({"a": a, "b": b}, [unrecorded.hours_for(2)]) == usage


def test_no_accounting_pool_idle_is_unknown_and_job_per_trial_idle_is_zero():
    pooled = trial_usage(TrialShape(), ["pool-0"], {}, None, {"pool-0": 3600.0})
    assert experiment_usage({"a": pooled}, None).idle is None
    own = trial_usage(TrialShape(), ["9"], {("9", 0): 3600.0}, None, {})
    usage = experiment_usage({"a": own}, None)
    assert usage.idle == Hours() and usage.used == Hours(node=1, cpu=1, gpu=0, wall=1)
    assert usage.queued_s is None


def test_hours_round_trip_and_never_go_negative():
    h = Hours(1, 2, 3, 4)
    assert Hours.from_json(h.to_json()) == h
    assert Hours(1, 1, 1, 1) - Hours(2, 0, 2, 0) == Hours(0, 1, 0, 1)


def test_the_meter_reads_a_log_incrementally_to_the_same_spans(tmp_path):
    import json

    from hpctune.accounting.meter import TrialEvents

    events = [
        {"event": "start", "slurm_job_id": "7_1", "restart_count": 0, "time": 10.0},
        {"event": "result", "slurm_job_id": "7_1", "restart_count": 0, "time": 25.0},
        {"event": "start", "slurm_job_id": "8_0", "restart_count": 0, "time": 100.0},
        {"event": "complete", "slurm_job_id": "8_0", "restart_count": 0, "time": 130.0},
    ]
    log = tmp_path / "result.jsonl"
    seen = TrialEvents(log)
    log.write_text("".join(json.dumps(e) + "\n" for e in events[:3]))
    seen.read()
    with log.open("a") as f:
        f.write(json.dumps(events[3]) + "\n")
    seen.read()
    assert seen.spans == event_spans(events) == {("7_1", 0): 15.0, ("8_0", 0): 30.0}
    assert list(seen.jobs) == ["7_1", "8_0"]


def test_fair_share_from_sshare():
    from hpctune.accounting.usage import fairshare_line

    text = "proj|ann|10|0.250000|0.600000\nproj||10|0.3|0.5\n"
    assert fairshare_line(text) == (
        "Fair-share (sshare): account proj: fair-share 0.600000, "
        "effective usage 0.250000, shares 10"
    )
    assert fairshare_line("") is None


def test_a_pool_run_resumed_after_a_requeue_counts_its_earlier_process_from_events():
    spans = {("pool-3", 0): 40.0, ("pool-3", 1): 25.0}  # the task was requeued: the run resumed
    usage = trial_usage(TrialShape(cpus=1), ["pool-3"], spans, None, {"pool-3": 26.0})
    assert usage.used.wall * 3600 == pytest.approx(40.0 + 26.0) and usage.source == POOL


def test_an_array_is_final_once_every_jobs_newest_incarnation_ended():
    from hpctune.accounting.usage import final_arrays
    from hpctune.core.ids import array_of

    records = parse_sacct(SACCT_TEXT)  # 101: 101_1 REQUEUED then COMPLETED; 102 PENDING
    assert list(final_arrays(records, array_of)) == ["101"]
    queued = parse_sacct(
        "103_0|COMPLETED|5|1|1|cpu=1|2026-12-07T10:00:00|2026-12-07T10:00:01\n"
        "103_[1-3]|PENDING|0|1|1||2026-12-07T10:00:00|Unknown\n"
    )
    assert final_arrays(queued, array_of) == {}


def test_pool_runs_sharing_a_task_share_its_node():
    usage = trial_usage(TrialShape(cpus=2), ["pool-4"], {}, None, {"pool-4": 3600.0}, {"pool-4": 4})
    assert usage.used == Hours(node=0.25, cpu=2.0, gpu=0.0, wall=1.0)
