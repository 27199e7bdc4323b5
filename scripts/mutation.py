"""Mutation check: do the tests fail when a decision or a piece of bookkeeping breaks?

Each entry of ``MUTANTS`` is a one-line bug: a file, an exact snippet that occurs once in it,
its replacement, and the test files that must catch it. The script copies the repository
(tracked files and untracked ones git does not ignore, as they are in the working tree) to a
temporary directory, checks that the copy is what Python imports, runs the tests of all
mutants once on the unmutated copy (they must pass), then for each mutant applies it, runs its
tests there with ``pytest -x`` under a timeout, and puts the file back. Only unit tests and
local-backend tests run (``-m "not slurm"``, ``HPCTUNE_BACKEND=local``): no Slurm lab needed.
Mutants marked ``lab=True`` name lab tests: they run only with ``--lab``, against the Slurm lab
of ``scripts/slurm-lab.sh`` (``eval "$(scripts/slurm-lab.sh env)"`` first), so that a bug
"caught only on the lab" is checked rather than assumed; CI does not run them.

    .venv/bin/python scripts/mutation.py                 # every mutant (a few minutes)
    .venv/bin/python scripts/mutation.py -k asha -k ckpt  # those whose id or file matches
    .venv/bin/python scripts/mutation.py --list           # the list, nothing run
    .venv/bin/python scripts/mutation.py --lab -k lab     # the lab-only mutants, on the lab

One line per mutant (killed and by which test / SURVIVED / NOT FOUND, seconds), the counts
per module and ``killed N of M``. Exit status 1 when a mutant survived, its snippet is not
found exactly once or pytest could not run its tests (BROKEN) (so the list cannot silently rot: ``tests/unit/test_mutation_list.py`` checks the
snippets on every test run), 2 when the unmutated tests fail or the copy is not imported.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TIMEOUT_S = 180


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str
    original: str
    replacement: str
    tests: tuple[str, ...]
    what: str = ""
    #: its tests need the Slurm lab (they run only with --lab, against it)
    lab: bool = False


U = "tests/unit/"
ASHA = (U + "test_asha.py",)
COST = (U + "test_cost_estimate.py",)
MEDIAN = (U + "test_median_stopping.py",)
STOPPERS = (U + "test_stoppers.py",)
CONTROLLER = (U + "test_controller.py",)
FEED = U + "test_change_feed.py"
REPLAY = (U + "test_replay.py", U + "test_log_compatibility.py")
LIFECYCLE = (U + "test_trial_state.py",)
BEST = (U + "test_best_result.py",)
LIMITS = (U + "test_slurm_limits.py",)
GRID = (U + "test_basic_variant.py", U + "test_space.py")
SEARCH_ADAPTERS = (U + "test_search_adapters.py",)
SEARCH_CONVERSION = (U + "test_search_space_conversion.py", U + "test_search_adapters.py")
SEARCH_RUNS = (U + "test_search_local_runs.py",)
CREATE_SEARCHER = (U + "test_create_searcher.py",)
JOURNAL = (U + "test_journal.py",)
ROWS = (U + "test_trial_rows.py",)
COLUMNS = (U + "test_trial_rows_columns.py",)
PACKED = (U + "test_packed_trials.py",)

MUTANTS: list[Mutant] = [
    # -- ASHA ------------------------------------------------------------------------------------
    Mutant("asha-cutoff-quantile", "hpctune/tune/schedulers/async_hyperband.py",
           "np.percentile(values, (1 - 1 / reduction_factor) * 100)",
           "np.percentile(values, (1 / reduction_factor) * 100)", ASHA,
           "keeps the bottom instead of the top 1/rf"),
    Mutant("asha-cutoff-ties-stop", "hpctune/tune/schedulers/async_hyperband.py",
           "(math.isnan(score) or score < cutoff)", "(math.isnan(score) or score <= cutoff)", ASHA,
           "a score equal to the cutoff is stopped"),
    Mutant("asha-nan-continues", "hpctune/tune/schedulers/async_hyperband.py",
           "(math.isnan(score) or score < cutoff)", "(score < cutoff)", ASHA,
           "a NaN score is never stopped"),
    Mutant("asha-rung-not-reached", "hpctune/tune/schedulers/async_hyperband.py",
           "if t < rung.milestone or seen:", "if t <= rung.milestone or seen:", ASHA,
           "a trial exactly at a milestone is not judged there"),
    Mutant("asha-max-t", "hpctune/tune/schedulers/async_hyperband.py",
           "if t >= self._max_t and self._stop_last_trials:",
           "if t > self._max_t and self._stop_last_trials:", ASHA,
           "trials at max_t are not stopped"),
    Mutant("asha-mode-ignored", "hpctune/tune/schedulers/async_hyperband.py",
           "return t, self._sign * value", "return t, value", ASHA,
           "mode='min' judged as 'max'"),
    Mutant("asha-bracket-rungs", "hpctune/tune/schedulers/async_hyperband.py",
           "for k in range(n - s)]", "for k in range(n)]", ASHA,
           "brackets get rungs beyond max_t"),
    Mutant("asha-complete-not-recorded", "hpctune/tune/schedulers/async_hyperband.py",
           "                    self._bracket(trial).on_result(trial.trial_id, t, score)",
           "                    pass", ASHA,
           "a completed trial's final result is not recorded at its rung"),
    # -- median stopping ----------------------------------------------------------------------
    Mutant("median-tie-stops", "hpctune/tune/schedulers/median_stopping.py",
           "if best is not None and best >= median:", "if best is not None and best > median:",
           MEDIAN, "a trial exactly at the median is stopped"),
    Mutant("median-counts-itself", "hpctune/tune/schedulers/median_stopping.py",
           "if other == trial_id or not history[-1][0] >= t:", "if not history[-1][0] >= t:",
           MEDIAN, "the trial's own average counts toward the median"),
    Mutant("median-min-samples", "hpctune/tune/schedulers/median_stopping.py",
           "if len(averages) < self._min_samples_required:",
           "if len(averages) <= self._min_samples_required:", MEDIAN,
           "one more trial needed than min_samples_required"),
    Mutant("median-grace", "hpctune/tune/schedulers/median_stopping.py",
           "if math.isnan(t) or t < self._grace_period:",
           "if math.isnan(t) or t <= self._grace_period:", MEDIAN,
           "no judgement at exactly grace_period"),
    Mutant("median-soft-stop", "hpctune/tune/schedulers/median_stopping.py",
           "return Decision.STOP if self._hard_stop else Decision.PAUSE",
           "return Decision.PAUSE if self._hard_stop else Decision.STOP", MEDIAN,
           "hard_stop swapped"),
    Mutant("median-window", "hpctune/tune/schedulers/median_stopping.py",
           "if self._grace_period <= time <= t]", "if time <= t]", MEDIAN,
           "running averages include results before grace_period"),
    # -- stoppers -------------------------------------------------------------------------------
    Mutant("dict-stopper-strict", "hpctune/tune/stopper.py",
           "stop = stop or (value is not None and value >= threshold)",
           "stop = stop or (value is not None and value > threshold)", STOPPERS,
           "stop={'training_iteration': 4} runs a fifth iteration"),
    Mutant("max-iteration-stopper", "hpctune/tune/stopper.py",
           "return self._iter[trial_id] >= self._max_iter",
           "return self._iter[trial_id] > self._max_iter", STOPPERS,
           "MaximumIterationStopper lets one more result through"),
    Mutant("experiment-plateau-mode", "hpctune/tune/stopper.py",
           'reverse=self._mode == "max")', 'reverse=self._mode == "min")', STOPPERS,
           "ExperimentPlateauStopper keeps the worst values"),
    Mutant("experiment-plateau-patience", "hpctune/tune/stopper.py",
           "return self.has_plateaued() and self._iterations >= self._patience",
           "return self.has_plateaued()", STOPPERS, "patience ignored"),
    Mutant("trial-plateau-grace", "hpctune/tune/stopper.py",
           "if self._iter[trial_id] < self._grace_period or len(window) < self._num_results:",
           "if len(window) < self._num_results:", STOPPERS, "TrialPlateauStopper ignores grace"),
    Mutant("trial-plateau-threshold", "hpctune/tune/stopper.py",
           "return value <= self._metric_threshold", "return value >= self._metric_threshold",
           STOPPERS, "metric_threshold in mode min compared the wrong way"),
    Mutant("timeout-stopper-budget", "hpctune/tune/stopper.py",
           "self._budget -= now - self._last_check", "self._budget -= 0", STOPPERS,
           "TimeoutStopper never spends its budget"),
    Mutant("combined-stopper-first-only", "hpctune/tune/stopper.py",
           "decisions = [stopper(trial_id, result) for stopper in self._stoppers]",
           "decisions = [stopper(trial_id, result) for stopper in self._stoppers[:1]]", STOPPERS,
           "CombinedStopper asks only its first stopper"),
    # -- checkpoint retention -------------------------------------------------------------------
    Mutant("ckpt-score-order", "hpctune/storage/checkpoints.py",
           'sign = 1 if order == "max" else -1', 'sign = -1 if order == "max" else 1',
           (U + "test_checkpoint.py",) + CONTROLLER, "keeps the worst checkpoints"),
    Mutant("ckpt-latest-deleted", "hpctune/storage/checkpoints.py",
           "kept = {name for name, _ in ranked[len(ranked) - num_to_keep:]} | {latest}",
           "kept = {name for name, _ in ranked[len(ranked) - num_to_keep:]}", (U + "test_checkpoint.py",) + CONTROLLER,
           "the latest checkpoint may be deleted"),
    Mutant("ckpt-best-deleted-for-latest", "hpctune/storage/checkpoints.py",
           "kept = {name for name, _ in ranked[len(ranked) - num_to_keep:]} | {latest}",
           "kept = {name for name, _ in ranked[len(ranked) - num_to_keep + 1:]} | {latest}",
           (U + "test_checkpoint.py",) + CONTROLLER, "the best checkpoint makes room for the latest"),
    Mutant("ckpt-unscored-best", "hpctune/storage/checkpoints.py",
           'key=lambda c: float("-inf") if c[1] is None', 'key=lambda c: float("inf") if c[1] is None',
           (U + "test_checkpoint.py",), "a checkpoint without a score counts as best"),
    Mutant("ckpt-score-not-recorded", "hpctune/controller/output.py",
           "trial.checkpoints.append([name, flat_value(result, attribute) if attribute else None])",
           "trial.checkpoints.append([name, None])", CONTROLLER,
           "the controller forgets checkpoint scores"),
    # -- Ray's semantics at the end of a trial (issue 22) ------------------------------------------
    Mutant("ckpt-dict-not-loaded", "hpctune/worker/class_trainable.py",
           "instance.load_checkpoint(load_private_pickle(saved) if saved.is_file() else directory)",
           "instance.load_checkpoint(directory)", ("tests/e2e/test_ray_fidelity.py",),
           "load_checkpoint gets the directory, not the dict save_checkpoint returned"),
    Mutant("ckpt-at-end-ignored-on-stop", "hpctune/worker/class_trainable.py",
           "stop.checkpoint = _checkpoint_at_stop(instance, session)", "stop.checkpoint = None",
           ("tests/e2e/test_ray_fidelity.py",), "checkpoint_at_end ignored when a stopper ends the trial"),
    Mutant("stopped-not-done", "hpctune/storage/replay.py",
           "        self.mark_done()  # a stopper or scheduler ended it", "        pass  # a stopper or scheduler ended it",
           REPLAY, "a replayed stopped trial's final result lacks done"),
    Mutant("strict-metric-off", "hpctune/core/checks.py",
           "        if missing:\n            shown", "        if False:\n            shown",
           ("tests/e2e/test_ray_fidelity.py",), "a metric no result holds passes silently"),
    Mutant("strict-metric-env-ignored", "hpctune/core/checks.py",
           'return os.environ.get(STRICT_METRIC_ENV, "0").strip() in ("", "0")', "return True",
           ("tests/e2e/test_ray_fidelity.py",), "TUNE_DISABLE_STRICT_METRIC_CHECKING is not read"),
    Mutant("seed-from-os", "hpctune/tune/search/basic_variant.py",
           "self._entropy = int(np.random.randint(0, 2**63 - 1, dtype=np.int64))",
           "self._entropy = int(np.random.SeedSequence().entropy)", ("tests/e2e/test_ray_fidelity.py",),
           "np.random.seed() before the Tuner does not repeat the configs"),
    Mutant("trial-name-bare-id", "hpctune/tune/experiment/trial.py",
           "return self.trial_name or default_trial_name(self.trainable_name, self.trial_id)",
           "return self.trial_name or self.trial_id", (U + "test_ray_api.py",),
           "default trial names are bare ids, not Ray's <trainable>_<id>"),
    # -- retries and fail_fast ------------------------------------------------------------------
    Mutant("retry-one-too-few", "hpctune/controller/enactor.py",
           "trial.num_failures <= self.settings.max_failures",
           "trial.num_failures < self.settings.max_failures", CONTROLLER,
           "max_failures=1 does not retry"),
    Mutant("retry-unlimited-ignored", "hpctune/controller/enactor.py",
           "return self.settings.max_failures < 0 or trial",
           "return trial", CONTROLLER, "max_failures=-1 does not retry"),
    Mutant("retry-not-counted", "hpctune/controller/enactor.py",
           "        trial.num_failures += 1\n        if self._may_retry(trial):\n",
           "        trial.num_failures += 0\n        if self._may_retry(trial):\n", CONTROLLER,
           "failures are not counted: retried forever"),
    Mutant("retry-not-awaiting-restart", "hpctune/tune/experiment/trial_lifecycle.py",
           "        self.awaiting_restart = True\n\n    def _busy",
           "        self.awaiting_restart = False\n\n    def _busy", CONTROLLER + LIFECYCLE,
           "a retried trial is relaunched as if new (no checkpoint, no throttle wait)"),
    Mutant("fail-fast-does-not-stop", "hpctune/controller/enactor.py",
           "            self.stop_experiment(self.state.fatal_error)", "            pass",
           CONTROLLER, "fail_fast records the error but the run goes on"),
    Mutant("stop-not-cancelled", "hpctune/controller/enactor.py",
           "            self.backend.cancel([t.job_id for t in overdue])", "            pass",
           CONTROLLER, "a STOP decision never reaches Slurm"),
    Mutant("time-budget-ignored", "hpctune/controller/controller.py",
           "self.clock() - self._started >= budget:", "self.clock() - self._started > 10 * budget:",
           CONTROLLER, "time_budget_s overrun tenfold"),
    Mutant("slurm-restart-not-a-failure", "hpctune/controller/events.py",
           "and restarts > trial.restart_count", "and restarts > trial.restart_count + 1",
           CONTROLLER, "a job Slurm restarted without warning is no failure"),
    Mutant("preemption-is-a-failure", "hpctune/controller/events.py",
           "        super().on_preempted(event)\n        self.trial.preempt()",
           "        super().on_preempted(event)\n        pass",
           CONTROLLER, "the restart after a preemption counts as a failure"),
    Mutant("over-budget-not-cancelled", "hpctune/controller/enactor.py",
           "                self.backend.cancel([trial.job_id])", "                pass", CONTROLLER,
           "a trial out of retries keeps its job running"),
    Mutant("stale-job-taken", "hpctune/controller/events.py",
           "return (bool(job) and self.trial.job_id is not None and job != self.trial.job_id",
           "return (False and self.trial.job_id is not None and job != self.trial.job_id", CONTROLLER,
           "events of an older job count for the current one"),
    Mutant("results-after-stop-acted-on", "hpctune/controller/events.py",
           "        if trial.stop_requested_at is not None:\n            trial.results_after_stop += 1",
           "        if False:\n            trial.results_after_stop += 1", CONTROLLER,
           "results after a stop decision change the trial"),
    # -- launching ------------------------------------------------------------------------------
    Mutant("launch-without-throttle", "hpctune/controller/launching.py",
           "batch[0].resources, self._throttle())", "batch[0].resources, None)", CONTROLLER,
           "max_concurrent_trials never reaches the array (%K)"),
    Mutant("launch-beyond-submit-limit", "hpctune/controller/launching.py",
           "batch, room = batch[:room], room - min(room, len(batch))", "batch, room = batch, room",
           CONTROLLER, "MaxSubmitJobs ignored"),
    Mutant("relaunch-beside-full-array", "hpctune/controller/launching.py",
           "return max(0, throttle - len(in_slurm))", "return max(0, throttle)", CONTROLLER,
           "a retry runs as a third trial beside a full array of 2"),
    Mutant("relaunch-while-array-queued", "hpctune/controller/launching.py",
           'if any(t.job_state is JobState.PENDING and t.started_at is None for t in in_slurm):',
           "if False:", CONTROLLER, "a retry jumps the array's queued tasks"),
    Mutant("relaunch-behind-queued-resubmission", "hpctune/controller/launching.py",
           'if any(t.job_state is JobState.PENDING and t.started_at is None for t in in_slurm):',
           'if any(t.job_state is JobState.PENDING for t in in_slurm):', ("tests/unit/test_pbt_exploit.py",),
           "an exploit's resubmission waits until the previous one's job runs"),
    # -- heartbeats and vanished jobs ------------------------------------------------------------
    Mutant("heartbeat-never-fires", "hpctune/controller/job_watch.py",
           "if self.clock() - since > timeout:", 'if self.clock() - since > float("inf"):',
           CONTROLLER, "a hung job is never cancelled"),
    Mutant("cancel-request-is-failure", "hpctune/controller/job_watch.py",
           "if trial.stop_requested_at is None and self._stop_requested_on_disk(trial):",
           "if False:", CONTROLLER, "`hpctune cancel` counts as a failure"),
    # -- restore -----------------------------------------------------------------------------------
    Mutant("restore-no-catch-up", "hpctune/controller/snapshot.py",
           "    read_logs(Reading.RESTORE)", "    pass", CONTROLLER,
           "events written while no driver ran are read only after relaunching"),
    Mutant("restore-offset-zero", "hpctune/controller/snapshot.py",
           "LogTail(exp.result_log_path(trial.trial_id), trial.log_offset, keep_open=True)",
           "LogTail(exp.result_log_path(trial.trial_id), 0, keep_open=True)", CONTROLLER,
           "a restored driver handles every result twice"),
    Mutant("restore-finished-live", "hpctune/controller/state.py",
           "        if not trial.is_finished:\n            self.live[trial.trial_id] = trial",
           "        if True:\n            self.live[trial.trial_id] = trial", CONTROLLER,
           "finished trials come back to the loop"),
    Mutant("restore-local-not-relaunched", "hpctune/controller/snapshot.py",
           "trial.job_id and not backend.jobs_survive_driver:",
           "trial.job_id and backend.jobs_survive_driver:", CONTROLLER,
           "local trials killed with the driver are waited on forever"),
    # -- the state journal (issue 23) ---------------------------------------------------------------
    Mutant("journal-replay-keeps-base", "hpctune/storage/journal.py",
           'state.trials[trial["trial_id"]] = trial', 'state.trials.setdefault(trial["trial_id"], trial)',
           JOURNAL, "a journal line does not replace the trial's older record"),
    Mutant("journal-torn-line-fatal", "hpctune/storage/journal.py",
           "        if last:  # cut short", "        if False:  # cut short", JOURNAL,
           "a torn last line (newline written) makes the experiment unreadable"),
    Mutant("journal-upto-seq-ignored", "hpctune/storage/journal.py",
           "if upto_seq is not None and seq > upto_seq:", "if False:", JOURNAL,
           "a restore pairs an older driver-state with newer trial records"),
    Mutant("journal-stale-generation-replayed", "hpctune/storage/journal.py",
           "            if skip_upto is None:\n                return  # an older journal",
           "            if False:\n                return  # an older journal", JOURNAL,
           "an old journal left by a cut-off compaction is replayed over the newer base"),
    Mutant("journal-first-snapshot-appends", "hpctune/storage/journal_writer.py",
           "        if self.generation is None:\n            return True",
           "        if self.generation is None:\n            return False", JOURNAL,
           "a new driver appends after an earlier driver's torn line instead of compacting"),
    Mutant("journal-failed-append-not-compacted", "hpctune/storage/journal_writer.py",
           "generation, self.generation = self.generation, None", "generation = self.generation",
           JOURNAL, "after a failed append the next snapshot appends after a torn line"),
    Mutant("journal-dirty-ignored", "hpctune/controller/snapshot.py",
           "looked = table.trials if final else dirty | _assigned_live(table, book)",
           "looked = table.trials if final else _assigned_live(table, book)", JOURNAL,
           "a trial that ended between two snapshots is never written as ended"),
    Mutant("journal-assigned-ignored", "hpctune/controller/snapshot.py",
           "ids = {t.trial_id for t in assigned if live.get(t.trial_id) is t}", "ids = set()", JOURNAL,
           "a live trial changed without a log line (a poll's job state) is never written"),
    Mutant("journal-assignment-unwatched", "hpctune/tune/experiment/trial.py",
           "            _assigned(self)", "            pass", JOURNAL,
           "a trial's assignment is not seen: the snapshot skips a live trial that changed"),
    Mutant("journal-offset-moved-ignored", "hpctune/controller/snapshot.py",
           "if tail is not None and tail.offset != trial.log_offset:", "if False:", JOURNAL,
           "a log read further without a change to its trial keeps the old offset on disk"),
    Mutant("journal-assigned-after-run", "hpctune/controller/snapshot.py",
           "    if not assigned.watching:  # the run ended: every live trial\n        return set(live)",
           "    if False:  # the run ended: every live trial\n        return set(live)", CONTROLLER,
           "after its run a snapshot of the driver misses a live trial that changed"),
    Mutant("journal-assigned-kept", "hpctune/controller/snapshot.py",
           "    book.assigned.clear()  # each trial assigned to", "    pass  # each trial assigned to",
           JOURNAL, "the trials assigned to are never forgotten: every snapshot looks at them all again"),
    Mutant("journal-only-new-trials", "hpctune/controller/snapshot.py",
           "if book.written.get(trial_id) != key:", "if trial_id not in book.written:", JOURNAL,
           "a trial's changes after its first snapshot are never written"),
    Mutant("journal-compaction-loses-trials", "hpctune/controller/snapshot.py",
           "book.writer.compact(book.seq, (_record(t) for t in table.all), run)",
           "book.writer.compact(book.seq, (_record(t) for t in changed), run)", JOURNAL,
           "a compaction keeps only the trials that changed since the last snapshot"),
    # -- finished trials packed (issue 23 item 7: the driver's memory) ---------------------------
    Mutant("packed-field-dropped", "hpctune/tune/experiment/trial.py",
           "_PACKED_NAMES = tuple(name for name in _FIELD_NAMES if name not in _PLAIN)",
           "_PACKED_NAMES = tuple(name for name in _FIELD_NAMES if name not in (*_PLAIN, \"num_failures\"))",
           PACKED, "a packed trial's num_failures reads as the class default 0"),
    Mutant("packed-inexact-types", "hpctune/tune/experiment/trial.py",
           "    if kind in _EXACT:\n        return True", "    if True:\n        return True", PACKED,
           "a numpy value in a result is packed and reads back as a plain float"),
    Mutant("packed-job-state-as-text", "hpctune/tune/experiment/trial.py",
           "return JobState.parse(value) if index == _JOB_STATE else value", "return value", PACKED,
           "a packed trial's job_state reads as text, not a JobState"),
    Mutant("packed-brought-back-without-log", "hpctune/controller/state.py",
           "if trial.trial_id not in self.tails and self.log_path is not None:",
           "if False:", PACKED, "an errored packed trial a restore runs again has no log reader"),
    Mutant("packed-pickles-blob", "hpctune/tune/experiment/trial.py",
           "    def __reduce__(self) -> tuple[Any, ...]:", "    def _no_reduce(self) -> tuple[Any, ...]:",
           PACKED, "a pickled packed trial carries a blob another process cannot read (no preset dictionary)"),
    Mutant("packed-never", "hpctune/controller/snapshot.py",
           "            _pack_written(table, book, dirty)", "            pass", PACKED,
           "finished trials stay whole while the run goes on (the memory it was for)"),
    Mutant("journal-background-merge-drops-a-snapshot", "hpctune/storage/journal_merge.py",
           "            if int(line[len(_TRIAL_LINE) : end]) > upto_seq:",
           "            if int(line[len(_TRIAL_LINE) : end]) >= upto_seq:", JOURNAL,
           "a background compaction loses the trials changed in the snapshot it compacts up to"),
    Mutant("journal-continued-journal-ignored", "hpctune/storage/journal.py",
           'after[str(base["continues"])] = int(base.get("seq", 0))', "pass", JOURNAL,
           "killed after a background compaction's base landed: the snapshots since are lost"),
    Mutant("journal-new-generation-drops-tail", "hpctune/storage/journal_writer.py",
           "            old.seek(offset)", "            old.seek(0, 2)", JOURNAL,
           "the journal a background compaction starts lacks the lines appended meanwhile"),
    Mutant("journal-background-never-waited", "hpctune/controller/snapshot.py",
           "book.writer.poll()  # a background", "pass  # a background", JOURNAL,
           "the driver never starts the new base's journal: its changes go to a journal of the old one"),
    Mutant("journal-adopt-keeps-later-lines", "hpctune/storage/journal_writer.py",
           "if match is None or int(match.group(1)) > upto_seq:", "if match is None:", JOURNAL,
           "a restored driver appends after lines of a snapshot whose driver-state was never written"),
    Mutant("journal-adopt-other-generation", "hpctune/storage/journal_writer.py",
           'or header.get("generation") != generation', 'or False',
           JOURNAL, "a restored driver appends to a journal of an older base (a compaction cut off)"),
    Mutant("journal-final-only-dirty", "hpctune/controller/snapshot.py",
           "looked = table.trials if final else dirty | _assigned_live(table, book)",
           "looked = dirty | _assigned_live(table, book)", JOURNAL,
           "the last snapshot (now an append) misses a trial edited after it ended"),
    Mutant("journal-final-not-waited", "hpctune/controller/snapshot.py",
           "waited = book.writer.finish()", "waited = 0.0", JOURNAL,
           "the driver ends while its background compaction still writes the base"),
    Mutant("summary-best-not-rescanned", "hpctune/storage/summary.py",
           "rescan = True  # the best got worse", "rescan = False  # the best got worse", JOURNAL,
           "the summary keeps naming a best trial whose last report got worse"),
    Mutant("cli-escaped-not-scrubbed", "hpctune/cli/common.py",
           "scrub_trial(t) if escaped is None or t.trial_id in escaped else t", "t", JOURNAL + ROWS,
           "a control character in a journaled trial reaches the terminal"),
    Mutant("best-ignores-journal", "hpctune/storage/journal.py",
           "return _last_in_journal(journal_path(exp), _journal_after(base), needle) or found",
           "return found", JOURNAL, "hpctune best shows the best trial as the base had it, not as now"),
    # -- the displays' row view (issue 23, deliverable 5) ------------------------------------------------
    Mutant("rows-journal-line-ignored", "hpctune/storage/trial_rows_read.py",
           "    lines, rows.problems = changed\n    if lines:", "    lines, rows.problems = changed\n    if False:",
           ROWS, "status and trials show the view as the last compaction left it, not the journal's changes"),
    Mutant("rows-first-journal-line-kept", "hpctune/storage/journal.py",
           "        found[json.loads(match.group(2))] = line",
           "        found.setdefault(json.loads(match.group(2)), line)", ROWS,
           "a trial changed twice since the compaction shows its first change, not its last"),
    Mutant("rows-continued-lines-skipped", "hpctune/storage/journal.py",
           "        if skip_upto is not None and int(match.group(1)) <= skip_upto:",
           "        if skip_upto is not None and int(match.group(1)) <= skip_upto + 1:", ROWS,
           "after a background merge the old journal's first snapshot past the new base is lost"),
    Mutant("rows-stale-generation-used", "hpctune/storage/trial_rows_read.py",
           'or str(top.get("generation")) != str(head.get("generation"))', "or False", ROWS, "a view of an older base is shown as the current state (fallback skipped)"),
    Mutant("rows-version-not-checked", "hpctune/storage/trial_rows.py",
           "or head.get(\"version\") != VERSION", "or False", ROWS,
           "a view of another version is read as this one"),
    Mutant("rows-merge-changed-not-applied", "hpctune/storage/journal_merge.py",
           "                    moved.append(index)", "                    pass", ROWS,
           "a background merge carries the old view forward without the trials that changed"),
    Mutant("rows-column-hole-keeps-number", "hpctune/storage/trial_rows_columns.py",
           "                self.data[row] = 0  # as ``_encode`` writes a row without a number",
           "                pass", COLUMNS, "a row put over by None keeps its old number in the column's line"),
    Mutant("rows-column-codes-unbounded", "hpctune/storage/trial_rows_columns.py",
           "if key is None or len(self.table) >= MAX_CODES:", "if key is None:", COLUMNS,
           "a column of 100,000 distinct texts is kept as codes into a table of them all"),
    Mutant("rows-replaced-row-keeps-columns", "hpctune/storage/trial_rows.py",
           "        if index < self.count:  # a row replaced", "        if False:  # a row replaced", ROWS,
           "a trial whose result lost a key still shows the old value in the view after a merge"),
    Mutant("rows-carry-skips-changed", "hpctune/storage/trial_rows.py",
           "todo = chain((i for i in changed if i < old), range(old, len(lines)))",
           "todo = range(old, len(lines))", ROWS,
           "a background merge carries the old rows of the trials that changed"),
    Mutant("rows-escaped-not-scrubbed", "hpctune/storage/trial_rows_read.py",
           "            if _escapes(line):\n                rows.escaped.add(at)",
           "            if False:\n                rows.escaped.add(at)", ROWS,
           "a control character in a journaled trial reaches the terminal through the view"),
    Mutant("rows-missing-column-not-whole-read", "hpctune/cli/trials.py",
           "        return all(self.knows(c) for c in wanted)", "        return True", ROWS,
           "a filter on a column the view lacks is answered from the view instead of the whole read"),
    # -- result replay -----------------------------------------------------------------------------
    Mutant("replay-rerun-is-progress", "hpctune/storage/replay.py",
           "if iteration <= self.trial.max_iteration:", "if iteration < self.trial.max_iteration:",
           REPLAY + CONTROLLER, "a re-run iteration after a restart is acted on twice"),
    Mutant("replay-lineage", "hpctune/storage/replay.py",
           'results[-1].get("training_iteration", 0) >= iteration:',
           'results[-1].get("training_iteration", 0) > iteration:', REPLAY,
           "a restarted run's reports do not replace the older ones"),
    Mutant("replay-done-flag", "hpctune/storage/replay.py",
           'self.trial.last_result["done"] = True', 'self.trial.last_result["done"] = False',
           REPLAY + CONTROLLER, "a completed trial's last result is not marked done"),
    Mutant("replay-snapshot-overrides-log", "hpctune/storage/replay.py",
           "if known and trial.status is not TrialStatus.TERMINATED:", "if known:", REPLAY,
           "a stale snapshot overrides what the log says finished"),
    # -- driver <-> job records --------------------------------------------------------------------
    Mutant("control-final-lost", "hpctune/storage/control.py",
           "final=bool(data.get(FINAL))", "final=False", (U + "test_control_record.py",) + CONTROLLER,
           "a scheduler's stop reads as a cancel: the trial is resumed instead of ending"),
    Mutant("control-old-record-refused", "hpctune/storage/control.py",
           "check_version(data.get(VERSION, 1), CONTROL_VERSION", "check_version(data.get(VERSION), CONTROL_VERSION",
           (U + "test_control_record.py",), "a control.json of the previous release is refused as a newer one"),
    Mutant("event-field-unchecked", "hpctune/storage/events.py",
           "    if undeclared:", "    if False:", (U + "test_event_schema.py",),
           "an event field nobody declared is written"),
    Mutant("ends-job-without-paused", "hpctune/storage/events.py",
           "_ENDS_JOB = frozenset({EventKind.COMPLETE, EventKind.STOPPED, EventKind.ERROR, EventKind.PAUSED,",
           "_ENDS_JOB = frozenset({EventKind.COMPLETE, EventKind.STOPPED, EventKind.ERROR,",
           (U + "test_event_schema.py",), "a restored driver re-adopts a job that paused"),
    Mutant("pool-claim-kept-by-run-end", "hpctune/pool/task.py",
           "kinds[-1] is not None and kinds[-1].ends_job", "kinds[-1] is not None and kinds[-1].ends_run",
           (U + "test_pool.py",), "a preempted pool task drops the claims it must resume"),
    Mutant("manifest-positional-dropped", "hpctune/storage/pool_manifest.py",
           'return _from_json(line, path) if line.startswith("{") else _from_positional(line)',
           "return _from_json(line, path)", (U + "test_pool_records.py",),
           "a pool array queued before an upgrade cannot start"),
    Mutant("queue-old-record-refused", "hpctune/storage/pool_records.py",
           "check_version(data.get(VERSION, 1), QUEUE_VERSION", "check_version(data.get(VERSION), QUEUE_VERSION",
           (U + "test_pool_records.py",), "a run queued by the previous release is never started"),
    Mutant("pool-claims-flat-unseen", "hpctune/storage/pool_queue.py",
           "                found.claimed[claim[0]] = claim[1]", "                pass",
           (U + "test_pool_records.py",), "the driver does not see the runs pool tasks claimed"),
    Mutant("pool-claims-task-dir-unread", "hpctune/storage/pool_queue.py",
           'elif "." not in name:  # claimed/<task>/<N>', "elif False:  # claimed/<task>/<N>",
           (U + "test_pool_records.py",), "runs claimed by a pool task of the previous release are lost"),
    Mutant("pool-hand-back-task-dir-missed", "hpctune/storage/pool_queue.py",
           'self._dir("claimed", _claim_name(seq, task)), self._dir("claimed", task, _name(seq))):\n'
           "            try:\n                os.rename(claim",
           'self._dir("claimed", _claim_name(seq, task)),):\n            try:\n                os.rename(claim',
           (U + "test_pool_records.py",), "a dead pool task of the previous release keeps its claims"),
    Mutant("pool-flat-queue-unclaimed", "hpctune/storage/pool_queue.py",
           'for bucket in [""] * bool(flat) +', "for bucket in [] +",
           (U + "test_pool_records.py",), "runs queued by the previous release are never claimed"),
    Mutant("pool-empty-bucket-kept", "hpctune/storage/pool_queue.py",
           "            if bucket and not seqs and bucket != buckets[-1]:", "            if False:",
           (U + "test_pool_records.py",), "emptied buckets pile up: every claim lists them all"),
    Mutant("local-quiet-log-kept", "hpctune/backends/local.py",
           "                if code == 0:\n                    _remove_if_empty", "                if False:\n                    _remove_if_empty",
           (U + "test_files_per_trial.py",), "a quiet local trial keeps an empty job log (5 files per trial)"),
    Mutant("local-next-not-recorded", "hpctune/backends/local.py",
           "        write_next_local_job(self._jobs_dir, self._next_id)", "        pass",
           (U + "test_files_per_trial.py",), "a restored local driver reuses a job id whose log was removed"),
    Mutant("status-rows-not-refreshed", "hpctune/cli/inspect.py",
           "            columns.job_state[index] = str(JobState.parse(job.state))", "            pass",
           (U + "test_pool_status.py",), "status at scale shows the snapshot's job states, not Slurm's"),
    Mutant("pool-newest-bucket-removed", "hpctune/storage/pool_queue.py",
           "            if bucket and not seqs and bucket != buckets[-1]:", "            if bucket and not seqs:",
           (U + "test_pool_records.py",), "a claim removes the bucket the driver is adding to (enqueue races it)"),
    Mutant("pool-buckets-unsorted", "hpctune/storage/pool_queue.py",
           "    return sorted((name for name in names if _BUCKET.fullmatch(name)), key=lambda name: int(name[1:]))",
           "    return [name for name in names if _BUCKET.fullmatch(name)]",
           (U + "test_pool_records.py",), "a newer bucket is claimed before an older one"),
    Mutant("replay-retry-not-reopened", "hpctune/storage/replay.py",
           "        if self.trial.is_finished:\n            self.trial.reopen()",
           "        if False:\n            self.trial.reopen()", REPLAY,
           "a log that goes on after an error (a retry) cannot be replayed"),
    # -- the loop's parts --------------------------------------------------------------------------
    Mutant("paused-stop-ignored", "hpctune/controller/paused.py",
           "            self._end(trial)\n            return False", "            pass\n            return False",
           ("tests/unit/test_pbt_exploit.py",), "a paused trial its scheduler stops stays paused forever"),
    Mutant("paused-donor-not-awaited", "hpctune/controller/paused.py",
           "            if self._donor_pausing(decision.donor_trial_id):", "            if False:",
           ("tests/unit/test_pbt_exploit.py",), "a paused recipient exploits its donor's older checkpoint"),
    Mutant("waiting-list-kept-after-assignment", "hpctune/controller/live_subset.py",
           "or any(t in self._set or may(t) for t in assigned)):", "or False):", CONTROLLER,
           "a trial that lost its job (a retry) is never seen waiting: it is not relaunched"),
    Mutant("waiting-list-kept-after-live-change", "hpctune/controller/live_subset.py",
           "or not assigned.watching or len(live) != self._live", "or not assigned.watching",
           CONTROLLER, "a trial that joined the live ones unseen is never launched"),
    Mutant("waiting-list-kept-after-run", "hpctune/controller/live_subset.py",
           "if (listed is None or not assigned.watching or len(live) != self._live",
           "if (listed is None or len(live) != self._live", CONTROLLER,
           "after its run the driver keeps an old list of trials without a job (nothing tells it more)"),
    Mutant("assignments-watched-after-run", "hpctune/controller/controller.py",
           "                stop_watching(self.parts.snapshots.assigned)",
           "                pass", CONTROLLER,
           "a driver kept after its run holds every trial later experiments assign to"),
    Mutant("launcher-watches-after-run", "hpctune/controller/controller.py",
           "                self.launcher.idle.stop_watching()", "                pass", CONTROLLER,
           "a driver kept after its run holds (in its launcher) every trial later experiments assign to"),
    Mutant("enactor-watches-after-run", "hpctune/controller/controller.py",
           "                self.enactor.stopping.stop_watching()", "                pass", CONTROLLER,
           "a driver kept after its run holds (in its enactor) every trial later experiments assign to"),
    Mutant("waiting-assignments-kept", "hpctune/controller/live_subset.py",
           "        assigned.clear()\n        return [t for t in listed", "        pass\n        return [t for t in listed",
           CONTROLLER, "the trials assigned to pile up between steps (memory; every step rescans)"),
    Mutant("stopping-list-kept-after-assignment", "hpctune/controller/enactor.py",
           "    return trial.stop_requested_at is not None", "    return False", CONTROLLER,
           "a trial stopped by the scheduler or a stopper is never cancelled"),
    Mutant("relaunch-keeps-pause-request", "hpctune/controller/launching.py",
           "            self.exp.clear_control(trial.trial_id)", "            pass", CONTROLLER,
           "a resumed trial is relaunched with its old pause request (it pauses again at once)"),
    Mutant("restore-skips-unsubmitted-logs", "hpctune/controller/events.py",
           "    if reading is Reading.RESTORE:\n        return table.unfinished",
           "    if reading is Reading.RESTORE:\n        return [t for t in table.unfinished if t.job_id]",
           CONTROLLER, "a restored driver misses what a launch its snapshot missed wrote"),
    Mutant("enacted-not-resubmitted-at-once", "hpctune/controller/controller.py",
           "        if enacted and not self.state.stop_everything:", "        if False:",
           ("tests/unit/test_pbt_exploit.py",), "PBT's recipients wait a step before they go out again"),
    # -- the trial state machine -------------------------------------------------------------------
    Mutant("lifecycle-unchecked", "hpctune/tune/experiment/trial_lifecycle.py",
           "        if phase not in TRANSITIONS[operation]:", "        if False:", LIFECYCLE,
           "an operation runs from any phase (a finished trial is launched again)"),
    Mutant("lifecycle-launch-twice", "hpctune/tune/experiment/trial_lifecycle.py",
           '"launch": frozenset({Phase.NEW, Phase.RELAUNCH}),',
           '"launch": frozenset({Phase.NEW, Phase.RELAUNCH, Phase.QUEUED}),', LIFECYCLE,
           "a trial with a job is submitted a second time"),
    Mutant("lifecycle-second-stop", "hpctune/tune/experiment/trial_lifecycle.py",
           '"a stop was requested already" if self.stop_requested_at is not None else ""',
           '""', LIFECYCLE, "a second stop decision overwrites the first one's reason and time"),
    Mutant("lifecycle-late-result-runs", "hpctune/tune/experiment/trial_lifecycle.py",
           "        if not self.awaiting_restart:\n            self.status = TrialStatus.RUNNING",
           "        if True:\n            self.status = TrialStatus.RUNNING", LIFECYCLE + CONTROLLER,
           "a late result of a job retried away from makes the waiting trial RUNNING (never relaunched)"),
    Mutant("lifecycle-cancelled-job-forgotten", "hpctune/tune/experiment/trial_lifecycle.py",
           "        self.cancelled_jobs.append(str(self.job_id))", "        pass", LIFECYCLE,
           "a job cancelled on Ctrl+C is re-attached to at the restore"),
    Mutant("lifecycle-unknown-slurm-state-fails", "hpctune/tune/experiment/trial_lifecycle.py",
           "            return cls.UNKNOWN", "            raise", LIFECYCLE,
           "a Slurm state this version does not know fails the poll"),
    # -- best result -------------------------------------------------------------------------------
    Mutant("best-scope-all-is-last", "hpctune/core/metrics.py",
           'key = mode if scope == "all" else scope', 'key = "last" if scope == "all" else scope',
           BEST, "get_best_result(scope='all') behaves like 'last'"),
    Mutant("best-mode-flipped", "hpctune/core/metrics.py",
           'pick = min if mode == "min" else max', 'pick = max if mode == "min" else min', BEST,
           "the worst trial is best"),
    Mutant("best-nan-kept", "hpctune/core/metrics.py",
           "if value is None or (filter_nan_and_inf and not math.isfinite(value)):",
           "if value is None:", BEST, "NaN/inf win get_best_result"),
    # -- array splitting ---------------------------------------------------------------------------
    Mutant("array-chunk-submit-limit", "hpctune/backends/slurm_limits.py",
           "(configured, self.max_array_size, self.max_submit_jobs) if c]",
           "(configured, self.max_array_size) if c]", LIMITS,
           "arrays larger than MaxSubmitJobs"),
    Mutant("array-chunk-max", "hpctune/backends/slurm_limits.py",
           "return max(1, min([count, *caps]))", "return max(1, max([count, *caps]))", LIMITS,
           "arrays not split at all"),
    Mutant("submit-room-loosest", "hpctune/backends/slurm_limits.py",
           "return max(0, min(caps) - queued) if caps else None",
           "return max(0, max(caps) - queued) if caps else None", LIMITS,
           "submit room from the loosest limit"),
    # -- Slurm command lines, job ids, scripts, the pool's reconcile ------------------------------
    Mutant("job-id-unchecked", "hpctune/core/ids.py",
           "if not isinstance(text, str) or not is_slurm_job(text):", "if not isinstance(text, str):",
           (U + "test_slurm_argv.py",), "an edited job id reaches a Slurm command line as an option"),
    Mutant("pool-run-to-scancel", "hpctune/cli/common.py",
           "if job and job_kind(job) not in (JobKind.LOCAL, JobKind.POOL)]",
           "if job and job_kind(job) is not JobKind.LOCAL]", (U + "test_pool.py",),
           "`hpctune cancel` hands a pool run to scancel"),
    Mutant("pool-submissions-not-live", "hpctune/backends/pool.py",
           "self._live[shape] = self._live.get(shape, 0) + count * slots", "pass",
           (U + "test_pool.py",), "pool tasks just submitted are submitted again before they show in squeue"),
    Mutant("pool-default-ignores-fit", "hpctune/backends/pool_settings.py",
           "return requested is not None or pool_fits(trainable, use_srun, scheduler)", "return True",
           (U + "test_pool.py",), "multi-node, srun or resource-changing trials go to a pool by default"),
    Mutant("pool-default-multi-node", "hpctune/backends/pool_settings.py",
           'return int(resources.get("nodes") or 1) == 1 and task_count(resources) == 1', "return True",
           (U + "test_pool.py",), "multi-node trials are put in a pool by default (refused at launch)"),
    Mutant("pool-default-config-function", "hpctune/backends/pool_settings.py",
           "        return False  # a function of the config\n", "        pass\n",
           (U + "test_pool.py",), "a resources function of the config is assumed to fit a pool"),
    Mutant("pool-default-off-where-on", "hpctune/backends/pool_settings.py",
           "DEFAULT_REUSE_ACTORS = True", "DEFAULT_REUSE_ACTORS = False",
           (U + "test_pool.py",), "the pool is not the default for function trainables"),
    Mutant("restore-takes-todays-pool-default", "hpctune/tune/tuner.py",
           'tune_config.reuse_actors = saved.get("pooled_on_slurm", False)', "pass",
           (U + "test_pool.py",), "a restored experiment switches between one job per trial and a pool"),
    Mutant("pool-array-over-max-size", "hpctune/backends/pool.py",
           "size = self.limits.array_chunk(self.config.max_array_size, tasks)", "size = tasks",
           (U + "test_pool.py",), "a pool array larger than MaxArraySize: sbatch refuses it"),
    Mutant("pool-barren-tasks-for-ever", "hpctune/backends/pool.py",
           "if excess - self._barren_base < BARREN_TASKS:", "if True:",
           (U + "test_pool.py",), "pool tasks that cannot start are submitted for ever, the trial stays PENDING"),
    Mutant("pool-barren-counts-working-tasks", "hpctune/backends/pool.py",
           "excess = self._own[\"tasks\"] - self._own[\"live\"] - taken",
           "excess = self._own[\"tasks\"] - self._own[\"live\"]",
           (U + "test_pool.py",), "pool tasks that ran trials and ended fail the queued runs"),
    Mutant("pool-first-fill-late", "hpctune/pool/task.py",
           "late = self._filled_once and self.claim_until is not None",
           "late = self.claim_until is not None",
           (U + "test_pool.py",), "time_min*60 within signal_lead_s: pool tasks start nothing, "
           "the driver submits fresh ones for ever"),
    Mutant("orphaned-claims-kept", "hpctune/backends/pool_runs.py",
           "if task not in tasks}", "if task in tasks}", (U + "test_pool.py",),
           "the runs of a pool task that died are never handed back"),
    Mutant("requeue-never-looked-up", "hpctune/backends/slurm.py",
           'self._requeue = any("PreemptMode=REQUEUE" in line for line in self._partition_lines())',
           "self._requeue = False",
           (U + "test_sbatch_script.py",), "a partition that preempts by requeueing gets no --requeue"),
    Mutant("requeue-not-rendered", "hpctune/backends/sbatch_script.py",
           "    if spec.requeue:\n", "    if False:\n", (U + "test_golden_sbatch.py",),
           "--requeue left out of the script"),
    Mutant("pool-array-runs-the-worker", "hpctune/backends/pool.py",
           "    entry_module = POOL_MODULE\n", '    entry_module = "hpctune.worker"\n',
           (U + "test_golden_sbatch.py",), "a pool array's tasks run one trial each"),
    # -- grid counting -----------------------------------------------------------------------------
    Mutant("grid-count-sum", "hpctune/space/resolve.py",
           "return math.prod(len(values) for _, values in grid_variables(param_space))",
           "return sum(len(values) for _, values in grid_variables(param_space))", GRID,
           "two grids of 3 count as 6 configs, not 9"),
    Mutant("grid-total-points-twice", "hpctune/tune/search/basic_variant.py",
           "repetitions = max(0, self._num_samples - len(self._points))",
           "repetitions = self._num_samples", GRID,
           "total_trials counts points_to_evaluate twice"),
    Mutant("grid-units", "hpctune/tune/search/basic_variant.py",
           "return len(self._points) + max(0, self._num_samples - len(self._points))",
           "return self._num_samples + len(self._points)", GRID,
           "points_to_evaluate come on top of num_samples"),
    Mutant("grid-index-off-by-one", "hpctune/tune/search/basic_variant.py",
           "if self._grid_index >= math.prod(", "if self._grid_index > math.prod(", GRID,
           "a grid point is suggested past the end of the grid"),
    Mutant("grid-max-concurrent", "hpctune/tune/search/basic_variant.py",
           "if self._max_concurrent and len(self._live) >= self._max_concurrent:",
           "if self._max_concurrent and len(self._live) > self._max_concurrent:", GRID,
           "one trial more than max_concurrent in flight"),
    Mutant("tuner-num-samples", "hpctune/tune/tuner.py",
           "num_samples=tc.num_samples, seed=tc.seed)", "seed=tc.seed)",
           (U + "test_tuner_searcher.py",), "num_samples never reaches the default searcher"),
    # -- one implementation each (files, pickles, checkpoints, checks) -----------------------------
    Mutant("searcher-restore-unchecked", "hpctune/tune/search/searcher.py",
           "self.set_state(load_private_pickle(checkpoint_path))",
           "self.set_state(pickle.loads(Path(checkpoint_path).read_bytes()))",
           (U + "test_security.py",), "Searcher.restore loads a pickle anyone could have written"),
    Mutant("log-torn-line-not-sealed", "hpctune/storage/result_log.py",
           'data = b"\\n" + data', "data = data", (U + "test_result_log.py",),
           "an append after a killed writer's torn line is swallowed by it"),
    Mutant("checkpoint-result-first-wins", "hpctune/storage/result_log.py",
           "found[name] = result", "found.setdefault(name, result)", (U + "test_result_log.py",),
           "a checkpoint goes with its first result, not the exploit's copy that replaced it"),
    Mutant("rerun-totals-from-nothing", "hpctune/worker/run.py",
           "checkpoint_results(exp.result_log_path(trial_id)).get(name, {})",
           "checkpoint_results(exp.result_log_path(trial_id)).get(trial_id, {})",
           (U + "test_trainable_api.py",), "a rerun's time_total_s starts again from 0"),
    Mutant("latest-checkpoint-lowest", "hpctune/storage/checkpoints.py",
           "return max(found, key=lambda p: checkpoint_iteration(p.name), default=None)",
           "return min(found, key=lambda p: checkpoint_iteration(p.name), default=None)",
           (U + "test_checkpoint.py",), "a rerun restores its oldest checkpoint"),
    Mutant("by-value-registry-kept", "hpctune/storage/pickling.py",
           "if m.__name__ not in registered]", "]", (U + "test_pickle_by_value.py",),
           "pickling unregisters a module the caller registered by value"),
    Mutant("user-module-by-reference", "hpctune/storage/pickling.py",
           "found[module.__name__] = module", "pass", (U + "test_pickle_by_value.py",),
           "a trainable from the user's own module fails to load in the job"),
    Mutant("flat-value-missing-is-none", "hpctune/core/metrics.py",
           "            return default\n", "            return None\n", STOPPERS + BEST,
           "a stopping criterion the trial never reports is silently ignored"),
    Mutant("parent-death-not-asked", "hpctune/core/parent_death.py",
           "_LIBC.prctl(_PR_SET_PDEATHSIG, ctypes.c_ulong(int(signum)), 0, 0, 0)", "pass",
           (U + "test_exit_guard.py",), "a trial outlives the driver or pool task that started it"),
    Mutant("mode-none-always-allowed", "hpctune/core/checks.py",
           'if mode in ("min", "max") or (mode is None and allow_none):',
           'if mode in ("min", "max") or mode is None:', STOPPERS,
           "TrialPlateauStopper(metric_threshold=...) without a mode is accepted"),
    # -- tune.integration: the callbacks' report and checkpoint rules ------------------------------
    Mutant("boosting-frequency-off-by-one", "hpctune/tune/integration/_common.py",
           "(round_index + 1) % self._frequency == 0", "round_index % self._frequency == 0",
           (U + "test_integration_callbacks.py",), "XGBoost/LightGBM checkpoint at the wrong rounds"),
    Mutant("xgboost-epoch-not-rounds", "hpctune/tune/integration/xgboost.py",
           "boosted = model.num_boosted_rounds() - 1", "boosted = epoch",
           (U + "test_integration_callbacks.py",),
           "a restored XGBoost trial checkpoints off its rhythm and saves its last round twice"),
    Mutant("lightgbm-no-checkpoint-at-end", "hpctune/tune/integration/lightgbm.py",
           "or (self._checkpoint_at_end and last)", "or False",
           (U + "test_integration_callbacks.py",), "LightGBM's last round is never checkpointed"),
    Mutant("lightning-reports-sanity-check", "hpctune/tune/integration/pytorch_lightning.py",
           "        if trainer.sanity_checking:", "        if False:",
           (U + "test_integration_callbacks.py",), "Lightning's sanity check is reported as epoch 1"),
    Mutant("lightning-sigterm-completes", "hpctune/tune/integration/pytorch_lightning.py",
           "if isinstance(exception, SystemExit) and session is not None and session.context.preempted:",
           "if False:", (U + "test_integration_callbacks.py",),
           "a Lightning trial preempted by SIGTERM ends as complete instead of being requeued"),
    Mutant("comet-config-as-metrics", "hpctune/tune/logger/comet.py",
           '_exclude_results = ["done", "should_checkpoint", "config"]',
           '_exclude_results = ["done", "should_checkpoint"]',
           (U + "test_integration_loggers.py",), "Comet gets every config value as a metric"),
    Mutant("aim-tracks-nan", "hpctune/tune/logger/aim.py",
           "return value if math.isfinite(value) else None", "return value",
           (U + "test_integration_loggers.py",), "Aim is given NaN and infinite values"),
    # -- array manifest ----------------------------------------------------------------------------
    Mutant("array-manifest-header-is-a-trial", "hpctune/storage/array_manifest.py",
           "lines = lines[1:]", "lines = lines[0:]", (U + "test_array_manifest.py",),
           "array task 0 runs a trial named after the manifest's header, every task one off"),
    # -- the worst-case cost estimate ----------------------------------------------------------------
    Mutant("cost-gpus-per-node-once", "hpctune/accounting/estimate.py",
           'float(resources.get("gpu") or 0) * nodes', 'float(resources.get("gpu") or 0)', COST,
           "a multi-node trial's GPUs counted for one node only"),
    Mutant("cost-cpus-per-trial-not-task", "hpctune/accounting/estimate.py",
           'cpus=int(resources.get("cpu") or 1) * tasks', 'cpus=int(resources.get("cpu") or 1)', COST,
           "a trial of several tasks counted as one task's CPUs"),
    Mutant("cost-mem-weight-per-gb", "hpctune/accounting/estimate.py",
           'values["mem_per_gb"] = number * 1024 / (unit or 1.0)',
           'values["mem_per_gb"] = number / (unit or 1.0)', COST,
           "a Mem weight read per GB where Slurm means per MB (or the reverse)"),
    Mutant("cost-billing-drops-gpus", "hpctune/accounting/estimate.py",
           "self.cpu * shape.cpus + self.gpu * shape.gpus", "self.cpu * shape.cpus", COST,
           "GPUs left out of the billed units"),
    Mutant("cost-retries-ignored", "hpctune/accounting/estimate.py",
           "else inputs.trials * inputs.attempts", "else inputs.trials", COST,
           "max_failures retries left out of the worst case"),
    Mutant("cost-pool-jobs-per-trial", "hpctune/accounting/estimate.py",
           "return math.ceil(runs / pool_slots)", "return runs", COST,
           "a worker pool counted as one job per trial"),
    Mutant("cost-loosest-bound", "hpctune/accounting/estimate.py",
           "return min(candidates, key=lambda c: c[0])", "return max(candidates, key=lambda c: c[0])", COST,
           "the loosest bound reported instead of the tightest"),
    Mutant("cost-minutes-as-hours", "hpctune/accounting/estimate.py",
           "limit_h = inputs.time_limit_min / 60", "limit_h = inputs.time_limit_min", COST,
           "the time limit read as hours"),
    Mutant("cost-hyperband-keeps-all", "hpctune/accounting/estimate.py",
           "live = min(live, n)", "live = live", COST,
           "HyperBand's halvings keep every trial of a bracket"),
    Mutant("cost-asha-rung-share", "hpctune/accounting/estimate.py",
           "previous, share = rung, share / reduction_factor", "previous, share = rung, share", COST,
           "ASHA's designed figure keeps every trial at each rung"),
]

# -- issue 27: the allocation used and the budget ------------------------------------------------
USAGE = (U + "test_usage.py",)
BUDGET = (U + "test_budget.py",)
USAGE_LAB = ("tests/slurm/test_usage_lab.py",)
MUTANTS += [
    Mutant("usage-requeue-last-only", "hpctune/accounting/usage.py",
           "for record in sacct[job]:", "for record in sacct[job][-1:]:", USAGE,
           "a requeued job's earlier incarnations not counted"),
    Mutant("usage-request-not-allocation", "hpctune/accounting/usage.py",
           "used = used + record.hours_for(shape.gpus)", "used = used + Hours.held(shape, record.elapsed_s)",
           USAGE, "the trial's request counted where sacct gives Slurm's allocation"),
    Mutant("usage-missing-gpus-zero", "hpctune/accounting/usage.py",
           "gpus = self.gpus if self.gpus is not None else requested_gpus", "gpus = self.gpus or 0.0",
           USAGE, "a cluster that records no GPUs in sacct shows no GPU-hours"),
    Mutant("usage-pool-idle-whole-task", "hpctune/accounting/usage.py",
           "total(pool_tasks) - pooled if pool_tasks", "total(pool_tasks) if pool_tasks",
           USAGE, "the pool's trials counted twice: as shares and as idle"),
    Mutant("usage-driver-events-as-runtime", "hpctune/accounting/usage.py",
           "if not isinstance(when, (int, float)) or event.get(ev.KIND) in ev.DRIVER_KINDS:",
           "if not isinstance(when, (int, float)):", USAGE,
           "the driver's own events stretch a job's span"),
    Mutant("usage-final-array-any-job", "hpctune/accounting/usage.py",
           "if all(state in FINAL_STATES for state in newest.values()):",
           "if any(state in FINAL_STATES for state in newest.values()):", USAGE,
           "an array with a task still queued kept as final: its later use never measured"),
    Mutant("usage-final-oldest-incarnation", "hpctune/accounting/usage.py",
           "newest = {r.job_id: r.state for r in rows}", "newest = {r.job_id: r.state for r in reversed(rows)}",
           USAGE, "a requeued job judged by its first incarnation"),
    Mutant("usage-pool-resumed-run-once", "hpctune/accounting/usage.py",
           "earlier = sum(spans[(job, rc)] for rc in restarts[:-1])", "earlier = 0.0", USAGE,
           "a pool run resumed after a requeue counts only its last process"),
    Mutant("usage-pool-run-whole-node", "hpctune/accounting/usage.py",
           "Hours(held.node / slots, held.cpu, held.gpu, held.wall)", "held", USAGE,
           "each run of a pool task counted as holding the task's whole node"),
    Mutant("usage-pool-wall-not-recorded", "hpctune/pool/task.py",
           "wall_s=self.clock() - running.started)", "wall_s=None)", USAGE_LAB,
           "a pool run's end without its wall time: the trial falls back to its events (on the lab)",
           lab=True),
    Mutant("budget-running-not-committed", "hpctune/accounting/budget.py",
           "room = budget.limit - used - running_left", "room = budget.limit - used", BUDGET,
           "running trials' worst case left out of admission"),
    Mutant("budget-admits-a-partial-trial", "hpctune/accounting/budget.py",
           "math.floor(room / worst_per_trial + 1e-9)", "math.ceil(room / worst_per_trial)", BUDGET,
           "a trial admitted whose worst case only partly fits"),
    Mutant("budget-stops-past-the-limit", "hpctune/accounting/budget.py",
           "if used >= budget.limit:", "if used > budget.limit:", BUDGET,
           "a budget used exactly does not stop the experiment"),
    Mutant("budget-launch-not-gated", "hpctune/controller/launching.py",
           "chosen = self.settings.allocation.admit(chosen, self.table.all, self.table.submitted())",
           "chosen = chosen", BUDGET, "the driver launches trials whatever the budget"),
    Mutant("budget-stale-ended-trials", "hpctune/accounting/meter.py",
           "self._running_left(running + self._ended_since(running))", "self._running_left(running)",
           BUDGET, "a trial that just ended counted at its last (stale) figure, not its worst case"),
    Mutant("budget-admitted-not-tracked", "hpctune/accounting/meter.py",
           "self._measured_running.update({t.trial_id: t for t in chosen})", "pass", BUDGET,
           "a trial that started and ended between two measurements counted as having used nothing"),
]


# -- issue 29: behaviours of wave 2 that no test pinned (one block: tests/unit/test_*_catch etc.) --
CATCH = U + "test_results_catch.py"
FULL = U + "test_storage_full_fast.py"
ERRORED = U + "test_restore_errored.py"
SELECT = U + "test_trials_select.py"
RANKS = U + "test_rank_exit.py"
POOL_STATUS = U + "test_pool_status.py"
MUTANTS += [
    Mutant("pb2-bonus-subtracted", "hpctune/tune/schedulers/pb2.py",
           "return mean + kappa * float(std[0]) ** 2", "return mean - kappa * float(std[0]) ** 2",
           (U + "test_pb2_bonus.py",), "PB2 prefers what it knows most about"),
    Mutant("hdf5-missing-is-zero", "hpctune/results/hdf5.py",
           "math.nan if v is None else float(v) for v in values", "0.0 if v is None else float(v) for v in values",
           (CATCH,), "a value a result did not report is 0.0 in the HDF5 file"),
    Mutant("report-worst-first", "hpctune/results/report/stats.py",
           'key=lambda pair: pair[1], reverse=exp.mode == "max")', 'key=lambda pair: pair[1], reverse=exp.mode == "min")',
           (CATCH,), "the HTML report names the worst trial as the best"),
    Mutant("report-driver-fields-lost", "hpctune/results/report/data.py",
           "        if known is not None:\n", "        if False:\n", (CATCH,),
           "a report from the directory loses queue times, job ids and nodes"),
    Mutant("report-node-lost", "hpctune/results/report/data.py",
           '"stop_reason", "node")', '"stop_reason")', (CATCH,),
           "a report from the directory loses the trials' nodes"),
    Mutant("exploit-recipient-keeps-later-results", "hpctune/storage/replay.py",
           "keep = min(int(event.get(ev.DONOR_ITERATION, 0) or 0), int(event.get(ev.STEP, 0) or 0))",
           "keep = max(int(event.get(ev.DONOR_ITERATION, 0) or 0), int(event.get(ev.STEP, 0) or 0))",
           (CATCH,), "a PBT recipient keeps results after its donor's checkpoint when the run ends early"),
    Mutant("edquot-not-full", "hpctune/storage/atomic.py",
           "FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})",
           "FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS})", (FULL,),
           "an over-quota error is not a full disk"),
    Mutant("full-disk-jobs-kept", "hpctune/controller/storage_full.py",
           "        parts.backend.cancel([t.job_id for t in live])", "        pass", (FULL,),
           "on a full disk the Slurm jobs run on"),
    Mutant("log-short-write-kept", "hpctune/storage/result_log.py",
           "            os.ftruncate(fd, start)", "            pass", (FULL,),
           "a write cut short by a full disk leaves half a record in the log"),
    Mutant("restart-errored-from-checkpoint", "hpctune/controller/snapshot.py",
           "                discard_checkpoints(Path(trial.path))", "                pass", (ERRORED,),
           "--restart-errored resumes from the checkpoints"),
    Mutant("restart-errored-old-iterations", "hpctune/controller/snapshot.py",
           "trial.checkpoint, trial.checkpoints, trial.max_iteration = None, [], 0",
           "trial.checkpoint, trial.checkpoints = None, []", (ERRORED,),
           "a trial restarted from scratch: its first results reach no scheduler"),
    Mutant("resume-errored-spent-retries", "hpctune/tune/experiment/trial_lifecycle.py",
           "self.error, self.num_failures = None, 0", "self.error = None",
           (ERRORED,), "a resumed errored trial keeps its spent retry count"),
    Mutant("trials-filter-le-strict", "hpctune/cli/trials_table.py",
           '"<=": operator.le', '"<=": operator.lt', (SELECT,), 'hpctune trials --filter "x <= v" leaves out v'),
    Mutant("trials-sort-missing-first", "hpctune/cli/trials_table.py",
           "kept = present + missing", "kept = missing + present", (SELECT,),
           "--sort puts trials without the value first"),
    Mutant("sbatch-account-unchecked", "hpctune/config/__init__.py",
           'SBATCH_TEXT_FIELDS = ("partition", "account", "qos",', 'SBATCH_TEXT_FIELDS = ("partition", "qos",',
           (U + "test_sbatch_text_fields.py",), "a newline in SlurmConfig(account=...) reaches the sbatch script"),
    Mutant("rank-other-requeues", "hpctune/worker/run.py",
           'if not session.writes or (signal_name == "SIGTERM" and session.peer_failed()):',
           'if (signal_name == "SIGTERM" and session.peer_failed()):', (RANKS,),
           "every rank writes the requeue/terminate event and requeues the job"),
    Mutant("rank-other-final-event", "hpctune/worker/run.py",
           "    if session.writes:\n        session.append({**event", "    if True:\n        session.append({**event",
           (RANKS,), "every rank writes the trial's last event"),
    Mutant("pool-status-no-task", "hpctune/backends/pool_runs.py",
           "JobReport(state.state, state.reason, node_label(state.node, task))",
           "JobState(state.state, state.reason, state.node)", (POOL_STATUS,),
           "`hpctune status` no longer names the pool task of a running trial"),
    Mutant("bench-ray-all-cores", "bench/pbt.py",
           "ray.init(num_cpus=slots(args), include_dashboard=False", "ray.init(include_dashboard=False",
           (U + "test_bench_ray.py",), "the PBT bench's Ray column runs on every core, not on hpctune's 8 slots"),
    # the same two bugs on the lab (--lab): the lab tests that caught them before the unit tests did
    Mutant("rank-other-requeues-lab", "hpctune/worker/run.py",
           'if not session.writes or (signal_name == "SIGTERM" and session.peer_failed()):',
           'if (signal_name == "SIGTERM" and session.peer_failed()):',
           ("tests/e2e/test_distributed.py::test_a_preempted_two_node_trial_resumes_from_rank_zeros_checkpoint_on_every_rank",
            "tests/e2e/test_distributed.py::test_the_time_limit_warning_reaches_every_rank_and_the_trial_requeues"),
           "every rank requeues the job (on the lab)", lab=True),
    Mutant("pool-status-no-task-lab", "hpctune/backends/pool_runs.py",
           "JobReport(state.state, state.reason, node_label(state.node, task))",
           "JobState(state.state, state.reason, state.node)",
           ("tests/e2e/test_pool.py::test_status_cancel_and_ctrl_c_with_pool_tasks",),
           "`hpctune status` without the pool task (on the lab)", lab=True),
    # -- hardening (issue 24) ---------------------------------------------------------------------
    Mutant("started-ignores-result-logs", "hpctune/storage/experiment.py",
           "return any(_worker_wrote(self.trials_dir / name / RESULT_LOG_FILE)", "return any(False",
           (U + "test_hardening_checks.py",), "an experiment that ran a trial is started over"),
    Mutant("probe-skipped", "hpctune/tune/preflight.py",
           "        _probe_names(tuner, config)", "        pass",
           (U + "test_hardening_checks.py",), "a bad trial_name_creator fails after the files exist"),
    Mutant("huge-int-accepted", "hpctune/worker/report_values.py",
           "if type(value) is int and not fits_float(value):", "if False:",
           (U + "test_hardening_checks.py",), "report() logs an int that readers cannot compare"),
    Mutant("component-allows-dotdot", "hpctune/storage/secure.py",
           'name not in ("", ".", "..")', 'name not in ("", ".")',
           (U + "test_hardening_trust.py",), "a crafted name '..' becomes a path"),
    Mutant("link-out-copied", "hpctune/storage/secure.py",
           "if target != inside and inside not in target.parents:", "if False:",
           (U + "test_hardening_trust.py",), "a checkpoint copies a link to ~/.ssh/id_rsa"),
    Mutant("foreign-owner-trusted", "hpctune/cli/common.py",
           "if st.st_uid != me or writable or stat.S_ISLNK(st.st_mode):", "if writable:",
           (U + "test_hardening_trust.py",), "hpctune cancel signals another user's driver"),
    Mutant("control-chars-printed", "hpctune/cli/common.py",
           "return pattern.sub(lambda m: m.group().encode", "return str(value) or pattern.sub(lambda m: m.group().encode",
           (U + "test_hardening_trust.py",), "escape sequences from a file reach the terminal"),
    Mutant("own-directive-allowed", "hpctune/config/__init__.py",
           'hint = OWN_DIRECTIVES.get(key.replace("_", "-"))', "hint = None",
           (U + "test_hardening_checks.py",), "sbatch_options replaces --array"),
    Mutant("suggestion-keys-unchecked", "hpctune/controller/bridge.py",
           "    if isinstance(config, dict) and _bad_key(config) is None:", "    if isinstance(config, dict):",
           (U + "test_hardening_searcher.py",), "a suggestion with an int key becomes a trial"),
    Mutant("suggestion-any-string", "hpctune/controller/bridge.py",
           "if config is None or (isinstance(config, str) and config == Searcher.FINISHED):",
           "if config is None or isinstance(config, str):",
           (U + "test_hardening_searcher.py",), "a suggestion that is a string becomes a trial"),
    Mutant("submit-refuses-unstarted", "hpctune/cli/submit.py",
           "    if exp.has_started():", "    if exp.is_experiment():",
           (U + "test_submit_rerun.py",), "hpctune submit refuses a directory whose first run never started a trial"),
    # -- poor answers (issue 24) --------------------------------------------------------------------
    Mutant('long-name-raw-oserror', 'hpctune/storage/secure.py',
           '    if exc.errno != errno.ENAMETOOLONG:', '    if True:',
           (U + "test_poor_answers.py",), 'a 300-character name ends in a raw OSError'),
    Mutant('space-depth-unchecked', 'hpctune/core/checks.py',
           '        if depth > MAX_SPACE_DEPTH:', '        if False:',
           (U + "test_poor_answers.py",), 'a 3,000-deep space ends in a RecursionError'),
    Mutant('space-collision-unchecked', 'hpctune/core/checks.py',
           '    clash = flat_collision(param_space)', '    clash = None',
           (U + "test_poor_answers.py",), 'two param_space entries flatten to one name'),
    Mutant('report-collision-unchecked', 'hpctune/worker/report_values.py',
           '    clash = flat_collision(plain)', '    clash = None',
           (U + "test_poor_answers.py",), 'two reported metrics flatten to one name'),
    Mutant('signal-unchecked', 'hpctune/core/checks.py',
           '    if text in known or (text.isdigit()', '    if True or (text.isdigit()',
           (U + "test_poor_answers.py",), "SlurmConfig(signal='NOTASIGNAL') accepted"),
    Mutant('hookless-callback-accepted', 'hpctune/config/__init__.py',
           ' or not core_checks.has_hooks(c)', '',
           (U + "test_poor_answers.py",), 'callbacks=[object()] ignored in silence'),
    Mutant('two-slurm-configs', 'hpctune/tune/tuner.py',
           'and slurm_config != self.run_config.slurm:', 'and False:',
           (U + "test_poor_answers.py",), 'a second SlurmConfig ignored in silence'),
    Mutant('points-unchecked', 'hpctune/tune/search/basic_variant.py',
           '        _check_point_keys(self._points, self._space)\n', '        pass\n',
           (U + "test_poor_answers.py",), 'an unknown key in points_to_evaluate ignored'),
    Mutant('function-checkpoint-setting', 'hpctune/tune/preflight.py',
           '    if asked and not is_class_trainable(tuner.trainable):', '    if False:',
           (U + "test_poor_answers.py",), 'checkpoint_at_end ignored by a function trainable'),
    Mutant('endless-silent', 'hpctune/tune/preflight.py',
           '    if tc.num_samples == -1 and rc.stop is None and tc.time_budget_s is None:', '    if False:',
           (U + "test_poor_answers.py",), 'num_samples=-1 runs for ever without a word'),
    Mutant('export-empty-traceback', 'hpctune/cli/export.py',
           '    if not record.trials:', '    if False:',
           (U + "test_poor_answers.py",), 'hpctune export of an empty experiment: a raw ValueError'),
    Mutant('user-error-unnoted', 'hpctune/controller/bridge.py',
           '    if isinstance(exc, HpctuneError) or not hasattr(exc, "add_note"):', '    if True:',
           (U + "test_poor_answers.py",), "a searcher's exception without a word on where and what next"),
    # -- a caller that left signals ignored (nohup, `cmd &`) -------------------------------------
    Mutant("cancel-ignored-sigint", "hpctune/cli/cancel.py",
           "usable = [s for s in (signal.SIGINT, signal.SIGTERM) if not process_ignores(verified, s)]",
           "usable = [signal.SIGINT, signal.SIGTERM]", (U + "test_cli_hardening.py",),
           "cancel sends SIGINT to a driver that ignores it: the driver runs on"),
    Mutant("sigign-bit", "hpctune/storage/process.py",
           "return bool(int(line.split()[1], 16) >> (signum - 1) & 1)",
           "return bool(int(line.split()[1], 16) >> signum & 1)", (U + "test_signal_dispositions.py",),
           "the SigIgn mask read one signal off"),
    Mutant("driver-keeps-inherited-sigign", "hpctune/cli/driver.py",
           "if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:", "if False:",
           (U + "test_signal_dispositions.py",),
           "a detached driver started with SIGINT ignored swallows its SIGTERM"),
    Mutant("version-wraps", "hpctune/cli/main.py",
           "formatter_class=argparse.RawDescriptionHelpFormatter)", ")",
           (U + "test_signal_dispositions.py",), "`hpctune --version` wraps in a narrow terminal"),
]

RECOVERY = (U + "test_recovery.py",)
MUTANTS += [  # issue 24 deliverable 4: recovery that finishes
    Mutant("full-disk-not-revived", "hpctune/controller/snapshot.py",
           "if interrupted and not restart_errored:", "if False:", RECOVERY,
           "a trial a full disk interrupted stays ERROR after a default restore"),
    Mutant("full-disk-mark-ignored", "hpctune/controller/recovery.py",
           "if error and FULL_STORAGE_MARK in error:", "if False:", RECOVERY,
           "a storage-full error event is taken for the trial's own error"),
    Mutant("quarantine-skipped", "hpctune/controller/snapshot.py",
           "        if problem is not None:\n            note(problem)", "        if False:\n            note(problem)",
           RECOVERY, "a damaged file of one trial aborts the whole restore"),
    Mutant("checkpoint-name-unchecked", "hpctune/controller/recovery.py",
           "            check_component(name, f\"checkpoint name in {path}\")", "            pass", RECOVERY,
           "a crafted checkpoint name in a result log reaches the driver's rmtree"),
    Mutant("crafted-checkpoint-stops-driver", "hpctune/controller/events.py",
           "            except UnsafeFileError as exc:  # a crafted name", "            except ZeroDivisionError as exc:  # a crafted name",
           (U + "test_hardening_run.py",), "a crafted checkpoint name in a log during a run stops the driver"),
    Mutant("crafted-checkpoint-kept", "hpctune/controller/output.py",
           '    check_component(name, "checkpoint name")  # before', "    pass  # before",
           (U + "test_hardening_run.py",), "a crafted checkpoint name becomes the trial's checkpoint"),
    Mutant("job-full-disk-is-failure", "hpctune/controller/enactor.py",
           "        if full is not None:\n            return stop_after_interruption", "        if False:\n            return stop_after_interruption",
           (U + "test_hardening_run.py",), "a full disk met by a job without retries marks the trial ERROR"),
    Mutant("job-full-disk-run-goes-on", "hpctune/controller/controller.py",
           "        if self.state.storage_full is not None:  # a trial's job", "        if False:  # a trial's job",
           (U + "test_hardening_run.py",), "a full disk met by a job does not stop the run"),
    Mutant("forged-id-kept", "hpctune/controller/snapshot.py",
           "        if forged is not None:", "        if False:", RECOVERY,
           "a forged trial id in the snapshot aborts the restore"),
    Mutant("leftovers-kept", "hpctune/controller/recovery.py",
           "            if entry.is_dir(follow_symlinks=False):", "            if entry.is_dir(follow_symlinks=False) and False:", RECOVERY,
           "temp files of killed writes are left behind"),
    Mutant("leftovers-any-tmp", "hpctune/controller/recovery.py",
           "        return atomic[\"file\"] in _OWN_FILES", "        return True", RECOVERY,
           "a trainable's own temp file is removed as a leftover"),
    Mutant("orphan-checkpoint-uncounted", "hpctune/controller/snapshot.py",
           "                trial.checkpoints.append([name, None])", "                pass", RECOVERY,
           "a torn line's checkpoint stays outside num_to_keep"),
    Mutant("garbage-control-kills-trial", "hpctune/worker/session.py",
           "        request = read_request(self.control_path)\n        if request is None:",
           "        request = read_control(self.control_path)\n        if request is None:", RECOVERY,
           "a garbage control.json kills a running trial"),
    Mutant("grid-one-bad-trial", "hpctune/storage/replay.py",
           "            trials.append(_unreadable(exp, trial_id, exc))\n            continue",
           "            raise\n            continue", RECOVERY, "a garbled trial.json breaks ResultGrid.from_path"),
    Mutant("replay-crafted-checkpoint", "hpctune/storage/replay.py",
           "if event.get(ev.CHECKPOINT) and checkpoint_name_ok(event[ev.CHECKPOINT], self.trial.trial_id):",
           "if event.get(ev.CHECKPOINT):", RECOVERY, "ResultGrid takes a crafted checkpoint name as a path"),
    Mutant("experiment-json-unchecked", "hpctune/controller/snapshot.py",
           "    check_experiment_file(exp)\n", "    pass\n", RECOVERY,
           "a damaged experiment.json is found only by every trial's job"),
]


# -- issue 22 S1: reports that wait where a decision can fall --------------------------------------
POINTS = U + "test_decision_points.py"
VERDICTS = U + "test_verdicts.py"
MUTANTS += [
    Mutant("points-period-off", "hpctune/core/decision_points.py",
           "return (iteration - self.start) % self.period == 0", "return (iteration - self.start) % self.period == 1",
           (POINTS,), "PBT's trials wait one iteration after each perturbation point"),
    Mutant("points-union-drops-other", "hpctune/core/decision_points.py",
           "iterations=self.iterations | other.iterations", "iterations=self.iterations",
           (POINTS,), "a scheduler's and a stopper's points: only the scheduler's are waited at"),
    Mutant("points-subclass-trusted", "hpctune/core/decision_points.py",
           "and issubclass(deciding, declaring)):", "and False):",
           (POINTS,), "a subclass that decides itself keeps its parent's points: no wait where it decides"),
    Mutant("points-rung-floor", "hpctune/core/decision_points.py",
           "frozenset(max(1, math.ceil(v)) for v in values)", "frozenset(max(1, int(v)) for v in values)",
           (POINTS,), "a rung at 2.5 waits at 2, where nothing is decided yet"),
    Mutant("asha-points-no-max-t", "hpctune/tune/schedulers/async_hyperband.py",
           "return at(rungs + ([self._max_t] if self._stop_last_trials else []))", "return at(rungs)",
           (POINTS,), "ASHA's stop at max_t falls where the worker does not wait"),
    Mutant("hyperband-points-current-only", "hpctune/tune/schedulers/hyperband.py",
           "for _ in range(self.halves):", "for _ in range(0):",
           (POINTS,), "HyperBand's later milestones are not waited at"),
    Mutant("pbt-points-from-zero", "hpctune/tune/schedulers/pbt.py",
           "last = state.last_perturbation_time if state is not None else 0.0", "last = 0.0",
           (POINTS,), "an exploited trial waits at the old perturbation points"),
    Mutant("dict-stopper-points-any-key", "hpctune/tune/stopper.py",
           'if set(self._criteria) == {"training_iteration"}:', 'if "training_iteration" in self._criteria:',
           (POINTS,), "stop={iteration, acc}: an accuracy stop falls where nobody waits"),
    Mutant("verdict-any-proceed", "hpctune/storage/control.py",
           "return self.action is ControlAction.PROCEED and self.iteration == iteration",
           "return self.action is ControlAction.PROCEED",
           (POINTS,), "a proceed for an earlier result lets the worker run past this one's decision"),
    Mutant("session-never-waits", "hpctune/worker/session.py",
           "self.verdicts.after(self.iteration)", "pass", (POINTS, "tests/e2e/test_report_waits.py"),
           "report() returns before the verdict: a stopped trial runs on"),
    Mutant("changes-not-read", "hpctune/controller/controller.py",
           "        self.table.mark_changed(self.changes.take())", "        self.changes.take()",
           (VERDICTS, FEED), "between polls the driver reads no log: every verdict waits for a Slurm poll"),
    Mutant("append-does-not-ring", "hpctune/storage/result_log.py",
           "            self.bell.ring()", "            pass",
           (FEED, VERDICTS), "a result reaches the driver only at its next Slurm poll (30 s)"),
    Mutant("waiting-events-forgotten", "hpctune/controller/events.py",
           "            table.read_again(trial.trial_id)", "            pass",
           (FEED,), "an event too young to be handled waits until its trial writes again"),
    Mutant("tail-reads-one-piece", "hpctune/storage/result_log.py",
           "        while chunk := os.pread(self._file.fileno(), _TAIL_CHUNK, position):",
           "        if chunk := os.pread(self._file.fileno(), _TAIL_CHUNK, position):",
           (FEED,), "a log that grew by more than a megabyte is read in part; the rest waits for a ring"),
    Mutant("feed-never-emptied", "hpctune/storage/changes.py",
           "        if self._offsets[index] >= COMPACT_BYTES:", "        if False:",
           (FEED,), "the feed's shards grow for the whole experiment"),
    Mutant("polls-never-back-off", "hpctune/backends/slurm.py",
           "            self.poll_interval_s = min(2 * self.poll_interval_s, self.steady_poll_s)",
           "            pass", (FEED,), "squeue every 2 s in a steady state: 30 calls a minute"),
    Mutant("tfevents-crc-tables-swapped", "hpctune/tune/logger/tfevents.py",
           "    low = [t3[x & 0xFF] ^ t2[x >> 8] for x in range(1 << 16)]",
           "    low = [t2[x & 0xFF] ^ t3[x >> 8] for x in range(1 << 16)]",
           (U + "test_loggers.py",), "TensorBoard's records get a wrong CRC-32C (four bytes a step)"),
    Mutant("tfevents-scalar-head-of-another-tag", "hpctune/tune/logger/tfevents.py",
           "    head = _SCALAR_HEADS.get(tag)", "    head = next(iter(_SCALAR_HEADS.values()), None)",
           (U + "test_loggers.py",), "every scalar is written under the first tag the driver encoded"),
    Mutant("tfevents-record-head-of-another-length", "hpctune/tune/logger/tfevents.py",
           "    head = _HEADS.get(size)", "    head = _HEADS.get(size - size % 8)",
           (U + "test_loggers.py",), "a record's length (and its CRC) is another record's"),
    Mutant("csv-path-of-another-trial", "hpctune/tune/logger/files.py",
           "        path = paths.get(trial.trial_id)", "        path = next(iter(paths.values()), None)",
           (U + "test_loggers.py",), "every trial's progress.csv rows go to the first trial's file"),
    Mutant("logger-writes-replaced-file", "hpctune/tune/logger/files.py",
           "            self.forget(path)", "            pass",
           (U + "test_loggers.py",), "after progress.csv gains a column, later rows go to the replaced file"),
    Mutant("heartbeat-from-submission", "hpctune/controller/job_watch.py",
           "            seen = self.clock()  # from its submission: an array task may queue for hours",
           "            seen = trial.submitted_at or 0.0  # from its submission: an array task may queue for hours",
           CONTROLLER, "a task that queued longer than the heartbeat timeout is cancelled as lost when it starts"),
    Mutant("restored-trial-taken-for-new", "hpctune/tune/logger/base.py",
           "        if trial_id not in self._checked:  # the first batch of a trial that ran before this",
           "        if False:  # the first batch of a trial that ran before this",
           (U + "test_loggers.py",), "a restored driver writes the results its predecessor logged a second time"),
    Mutant("last-figures-before-snapshot-on-full-disk", "hpctune/controller/controller.py",
           "            if not is_storage_full(exc):", "            if True:",
           ("tests/e2e/test_disk_full.py",), "a full disk met by the last usage figures skips the driver's last snapshot"),
    Mutant("unthrottled-batch-waits-for-drain", "hpctune/controller/launching.py",
           "            room = room if room >= floor or not self.table.any_submitted() else 0",
           "            room = room if not self.table.any_submitted() else 0",
           CONTROLLER, "100,000 random trials: each batch of 10,000 drains before the next, slots idle"),
    Mutant("pool-tops-up-at-half-a-batch", "hpctune/controller/launching.py",
           'top_up = getattr(self.backend, "top_up_fraction", None)', "top_up = None",
           (U + "test_pool.py",), "a pool's queue runs dry before the driver queues the next batch: "
           "pool tasks idle out"),
    Mutant("stopped-task-exits-before-its-cancel", "hpctune/worker/run.py",
           "            _await_the_cancel(session)", "            pass",
           ("tests/e2e/test_early_stopping.py::test_asha_cancels_stopped_tasks_in_slurm",),
           "a stopped array task that saw its verdict first ends COMPLETED in Slurm, not CANCELLED", lab=True),
    Mutant("pending-jobs-read-at-polls", "hpctune/controller/events.py",
           "        return [t for t in submitted if t.trial_id in named or t.job_state is not JobState.PENDING",
           "        return [t for t in submitted if True or t.job_state is not JobState.PENDING",
           (FEED,), "every poll opens the (missing) log of every queued trial"),
    Mutant("proceed-overwrites-stop", "hpctune/controller/enactor.py",
           "if (isinstance(iteration, int) and trial.stop_requested_at is None and not trial.awaiting_restart",
           "if (isinstance(iteration, int) and not trial.awaiting_restart",
           (VERDICTS,), "a proceed replaces the stop the same result decided"),
    Mutant("no-proceed", "hpctune/controller/events.py",
           "self.enactor.let_proceed(trial, result.get(\"training_iteration\"))", "pass",
           (VERDICTS,), "a waiting worker never hears it may go on: it waits out the timeout"),
    Mutant("no-points-at-relaunch", "hpctune/controller/launching.py",
           "**self._points_meta(trial)})\n\n    def _points_meta", "})\n\n    def _points_meta",
           (VERDICTS,), "a resubmitted trial waits at its first launch's points"),
    # -- searchers over libraries (search/library_searcher.py and the adapters) ---------------------
    Mutant("lib-max-not-negated", "hpctune/tune/search/library_searcher.py",
           'return value if self._mode == "min" else -value',
           'return value', SEARCH_ADAPTERS, "mode='max' is told to a minimising library unnegated"),
    Mutant("lib-points-all-dropped", "hpctune/tune/search/library_searcher.py",
           "            self._points.pop(0)", "            self._points.clear()",
           SEARCH_ADAPTERS, "the points_to_evaluate after the first are dropped"),
    Mutant("lib-missing-point-key-accepted", "hpctune/tune/search/library_searcher.py",
           "        if unknown or missing:", "        if unknown:", SEARCH_ADAPTERS,
           "a point without every parameter is accepted"),
    Mutant("lib-live-not-saved", "hpctune/tune/search/library_searcher.py",
           "self._library_state(), self._live)),", "self._library_state(), {})),",
           SEARCH_ADAPTERS, "a restored searcher forgets the trials that were running"),
    Mutant("snap-no-clip", "hpctune/tune/search/space_conversion.py",
           "        return min(max(value, lo), hi)", "        return value", SEARCH_CONVERSION,
           "a value a library sampled outside the bounds reaches the config"),
    Mutant("hyperopt-fail-as-ok", "hpctune/tune/search/hyperopt.py",
           'doc["state"], doc["result"] = hpo.base.JOB_STATE_ERROR, {"status": hpo.STATUS_FAIL}',
           'doc["state"], doc["result"] = hpo.base.JOB_STATE_DONE, {"status": hpo.STATUS_OK, "loss": 0.0}',
           SEARCH_ADAPTERS, "a failed trial is told to HyperOpt as a loss of 0"),
    Mutant("zoopt-failure-not-told", "hpctune/tune/search/zoopt.py",
           "self._opt.complete(handle, math.inf if loss is None else loss)",
           "self._opt.complete(handle, loss) if loss is not None else None", SEARCH_ADAPTERS,
           "a failed trial keeps its ZOOpt slot forever"),
    Mutant("bayesopt-registers-at-once", "hpctune/tune/search/bayesopt.py",
           'if len(state["buffer"]) >= self._random_search_steps or len(state["optimizer"].space):',
           "if True:", SEARCH_ADAPTERS, "BayesOpt fits its GP before random_search_steps results"),
    Mutant("bohb-budget-too-early", "hpctune/tune/search/bohb.py",
           "if len(seen) >= self._min_points + 2\n", "if len(seen) >= self._min_points\n",
           SEARCH_ADAPTERS, "BOHB models a budget with too few results"),
    Mutant("create-searcher-keywords-unchecked", "hpctune/tune/search/registry.py",
           "    unknown = sorted(set(kwargs) - set(named))", "    unknown = []", CREATE_SEARCHER,
           "create_searcher hands a keyword the class does not take on (a raw TypeError)"),
    Mutant("zoopt-parameter-keywords-unchecked", "hpctune/tune/search/zoopt.py",
           "        unknown = sorted(set(kwargs) - takes)", "        unknown = []", CREATE_SEARCHER,
           "ZOOptSearch keeps a keyword zoopt.Parameter does not take until its first suggestion"),
    Mutant("ax-logs-each-trial", "hpctune/tune/search/ax.py", "        _quiet_ax()\n",
           "        pass\n", (U + "test_search_ax.py",),
           "Ax's two INFO lines per trial reach the driver's log"),
    Mutant("hb-bohb-smallest-bracket-first", "hpctune/tune/schedulers/hb_bohb.py",
           "return self._s_max_1 - 1 - position", "return position", SEARCH_RUNS,
           "HyperBandForBOHB fills the least aggressive bracket first"),
    # -- Ray's smaller cases ---------------------------------------------------------------------------
    Mutant("one-bundle-pg-refused", "hpctune/core/resources.py",
           "        return bundles[0]", "        return resources", (U + "test_ray_smaller_cases.py",),
           "tune.with_resources(f, PlacementGroupFactory([{...}])) is refused"),
    Mutant("print-all-errors-ignored", "hpctune/tune/callback.py",
           'PRINT_ALL_TRIAL_ERRORS_ENV, "0").strip() == "1"', 'PRINT_ALL_TRIAL_ERRORS_ENV, "0").strip() == "0"',
           (U + "test_ray_smaller_cases.py",), "TUNE_PRINT_ALL_TRIAL_ERRORS=1 prints nothing (and 0 prints)"),
    # -- Ray's last smaller cases (issue 22) ---------------------------------------------------------
    Mutant("pbt-seed-from-os", "hpctune/core/seeding.py",
           "return random.getrandbits(64) if seed is None else seed",
           "return np.random.SeedSequence().entropy if seed is None else seed",
           (U + "test_ray_last_cases.py", "tests/e2e/test_ray_last_cases_local.py"),
           "random.seed(...) before PBT does not repeat its perturbations"),
    Mutant("pb2-seed-after-sklearn", "hpctune/tune/schedulers/pb2.py",
           "            seed = root_seed(None)", "            pass", (U + "test_ray_last_cases.py",),
           "PB2 draws its seed after importing scikit-learn drew from `random`: the recipe does not repeat"),
    Mutant("result-path-not-named", "hpctune/results/grid.py",
           "self.path: str = trial_path(trial)", "self.path: str = trial.path",
           ("tests/e2e/test_ray_last_cases_local.py",), "Result.path stays trials/<id> under trial_dirname_creator"),
    Mutant("pause-waits-for-checkpoint", "hpctune/worker/session.py",
           "or not self.checkpointed_this_run or pausing):", "or not self.checkpointed_this_run):",
           ("tests/e2e/test_ray_last_cases_local.py",),
           "a paused function trainable runs on to its next checkpointed report"),
    Mutant("class-pause-not-saved", "hpctune/worker/class_trainable.py",
           "            paused.checkpoint = _checkpoint_at_stop(instance, session)", "            pass",
           ("tests/e2e/test_ray_last_cases_local.py",),
           "a paused class trainable is not saved: it resumes from an older checkpoint"),
    Mutant("restore-objects-ignored", "hpctune/tune/tuner.py",
           "respecify(controller.table.all, self._objects, exp.write_params)", "pass",
           ("tests/e2e/test_ray_last_cases_local.py",),
           "Tuner.restore(param_space=...) does not reach the restored trials"),
    Mutant("respecify-first-option", "hpctune/tune/respecify.py",
           "                if mine == old:", "                if True:", (U + "test_ray_last_cases.py",),
           "a trial gets the new object of another grid/choice option than its own"),
    Mutant("respecify-value-change-accepted", "hpctune/tune/respecify.py",
           "        if type(old) is not type(new) or old != new:", "        if False:",
           (U + "test_ray_last_cases.py", "tests/e2e/test_ray_last_cases_local.py"),
           "Tuner.restore(param_space=...) silently takes a changed number or string"),
]


# -- issue 23 deliverable 3: files per trial with a ceiling ----------------------------------------
FILES = (U + "test_files_per_trial.py",)
FILES_E2E = ("tests/e2e/test_files_per_trial.py",)
MUTANTS += [
    Mutant("params-pkl-skipped-for-tuple", "hpctune/storage/trial_config.py",
           "    if kind is list:", "    if kind in (list, tuple):", FILES + (U + "test_trainable_api.py",),
           "a tuple in the config reaches the trainable as a list (params.pkl skipped when needed)"),
    Mutant("params-pkl-skipped-for-numpy", "hpctune/storage/trial_config.py",
           "    return kind in (str, int, bool) or value is None",
           "    return isinstance(value, (str, int, bool, float)) or value is None", FILES,
           "a numpy float64 in the config reaches the trainable as a float"),
    Mutant("stale-params-pkl-kept", "hpctune/storage/experiment.py",
           "            self.params_pickle_path(trial_id).unlink(missing_ok=True)", "            pass", FILES,
           "after an exploit's plain config the worker still runs the old pickled one"),
    # -- a new trial's files in few metadata operations (issue 23) ----------------------------------
    Mutant("new-dirs-trusted-at-once", "hpctune/storage/secure.py",
           "        self._trusted = False", "        self._trusted = True", (U + "test_new_trial.py",),
           "a trial directory keeps the mode the umask left (0700 in an experiment shared with the group)"),
    Mutant("new-dirs-trusted-after-a-fix", "hpctune/storage/secure.py",
           "            self._trusted = _set_dir_mode(path, self.mode)",
           "            self._trusted = _set_dir_mode(path, self.mode) or True", (U + "test_new_trial.py",),
           "after the first directory's mode was fixed, the next ones keep the umask's"),
    Mutant("new-dirs-no-parent-raises", "hpctune/storage/secure.py",
           "        except FileNotFoundError:  # no parent (yet, or no more)", "        except KeyError:  # (",
           (U + "test_new_trial.py",), "a trial whose trials/ is missing fails instead of making it"),
    Mutant("existing-trial-dir-read-as-new", "hpctune/storage/experiment.py",
           "        if new is not None and new.fresh:", "        if new is not None:", (U + "test_new_trial.py",),
           "a directory there already (an older hpctune's trial.json) is taken for an empty new one"),
    Mutant("new-trial-pickle-kept", "hpctune/storage/experiment.py",
           "            if not fresh or new.wrote_pickle:", "            if not fresh:", (U + "test_new_trial.py",),
           "a new trial's params.pkl stays after PBT's plain initial config replaced it"),
    Mutant("existing-trial-pickle-kept", "hpctune/storage/experiment.py",
           "            if not fresh or new.wrote_pickle:", "            if new is not None and new.wrote_pickle:",
           FILES + (U + "test_new_trial.py",), "a directory there already keeps its stale params.pkl"),
    Mutant("run-record-there-refused", "hpctune/storage/pool_records.py",
           "    except FileExistsError:\n        write_record(path, fields, mode)",
           "    except FileExistsError:\n        raise", (U + "test_pool_records.py",),
           "a run record already at its name (a driver killed before it) stops the enqueue"),
    Mutant("tail-reads-own-meta", "hpctune/storage/result_log.py",
           "            self._read_to = self.offset = skip", "            pass",
           (U + "test_new_trial.py",) + CONTROLLER,
           "the driver reads its own meta events late and takes them for the job's heartbeat"),
    Mutant("trial-meta-first-wins", "hpctune/storage/trial_meta.py",
           "    for event in reversed(events):", "    for event in events:", FILES,
           "a resubmission's new resources never reach the worker or a restore"),
    Mutant("trial-json-ignored", "hpctune/storage/trial_meta.py",
           "    return read_json(legacy_path, default={}) or {}", "    return {}", FILES,
           "an older experiment's trial.json is no longer read (tags and resources lost)"),
    Mutant("meta-event-counts-as-a-run", "hpctune/storage/experiment.py",
           "        return any(e.get(KIND) != EventKind.META.value for e in read_events(log))",
           "        return any(True for e in read_events(log))", FILES,
           "a fit() that never launched a trial cannot be started over (the driver's meta events)"),
    Mutant("control-json-kept-at-end", "hpctune/worker/run.py",
           "        clear_control(session.control_path)  # the trial is over: what was asked of it, done",
           "        pass", FILES_E2E, "a stopped trial keeps its control.json: a file per trial more"),
    Mutant("printed-job-log-removed", "hpctune/storage/experiment.py",
           "            if mine.st_size or (mine.st_dev, mine.st_ino)", "            if (mine.st_dev, mine.st_ino)",
           FILES, "a job's log is removed although the trial printed to it"),
    Mutant("local-job-log-removed", "hpctune/storage/experiment.py",
           "        if not (is_slurm_job(job_id) or is_pool_job(job_id)):", "        if False:", FILES,
           "a local job's log goes: a restored driver reuses its number"),
    Mutant("stderr-own-file-again", "hpctune/storage/experiment.py",
           "        return out, err if os.path.lexists(err) else out", "        return out, err", FILES,
           "the driver and hpctune logs look for a .err no job writes any more"),
    Mutant("sbatch-error-file-again", "hpctune/backends/sbatch_script.py",
           '"stderr_to_stdout": True,', '"stderr_to_stdout": False,', (U + "test_golden_sbatch.py",),
           "each array task writes a .err besides its .out: a file per trial more"),
    Mutant("logs-merged-file-twice", "hpctune/cli/logs.py",
           "    return list(dict.fromkeys(files))", "    return files", (U + "test_cli.py",),
           "hpctune logs prints a job's merged log twice"),
    Mutant("json-logger-default-again", "hpctune/tune/logger/__init__.py",
           "    kinds: list[type[LoggerCallback]] = [CSVLoggerCallback]",
           "    kinds: list[type[LoggerCallback]] = [JsonLoggerCallback, CSVLoggerCallback]",
           (U + "test_loggers.py",), "result.json is written by default again, repeating result.jsonl"),
    Mutant("pool-newest-run-record-deleted", "hpctune/storage/pool_queue.py",
           '        if logged_end and (self._dir("runs", f"{_name(seq + 1)}.json").exists() or seq < self.next_seq() - 1):',
           "        if logged_end:",
           (U + "test_pool.py",), "a restored driver numbers its runs from an older one: pool-N comes back"),
    Mutant("pool-crash-record-deleted", "hpctune/pool/task.py",
           "            self.queue.finish(self.task_id, running.seq, code, logged_end=ended,",
           "            self.queue.finish(self.task_id, running.seq, code, logged_end=True,",
           (U + "test_pool.py",), "a crashed run's exit code is lost before the driver took it"),
    Mutant("pool-ended-run-cancel-marker", "hpctune/storage/pool_queue.py",
           "            return False  # its record went when it ended", "            pass  # its record went when it ended",
           (U + "test_pool.py",), "cancelling a run that ended leaves a cancel/ marker nobody removes"),
    Mutant("control-json-removed-on-cancel", "hpctune/worker/run.py",
           "        if event[KIND] == EventKind.TERMINATED.value:", "        if False:",
           ("tests/e2e/test_pool.py",), "hpctune cancel's stop is gone when the driver looks: the trial is retried",
           lab=True),
]


# -- running ------------------------------------------------------------------------------------
def copy_repository(target: Path) -> None:
    """The working tree's tracked files and untracked, not ignored, ones (as they are now)."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=REPO, check=True, capture_output=True).stdout.decode()
    for name in filter(None, out.split("\0")):
        source = REPO / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree
        dest = target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            os.symlink(os.readlink(source), dest)
        elif source.is_file():
            shutil.copy2(source, dest)


def environment(copy: Path, lab: bool = False) -> dict[str, str]:
    """The tests' environment: the copy first on PYTHONPATH; local processes, or the lab's Slurm."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HPCTUNE_BACKEND")}
    env.update(PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE="1")
    if not lab:
        env["HPCTUNE_BACKEND"] = "local"
    return env


def check_lab() -> None:
    """Exit 2 unless the Slurm lab answers (sinfo under this environment's SLURM_CONF)."""
    try:
        ok = subprocess.run(["sinfo", "-h"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        sys.exit('mutation: --lab needs the Slurm lab: scripts/slurm-lab.sh up; '
                 'eval "$(scripts/slurm-lab.sh env)"; export SLURM_CONF')


def check_imports_copy(copy: Path, env: dict[str, str]) -> None:
    found = subprocess.run([sys.executable, "-c", "import hpctune; print(hpctune.__file__)"],
                           cwd=copy, env=env, capture_output=True, text=True).stdout.strip()
    if not found.startswith(str(copy)):
        sys.exit(f"mutation: the copy is not what Python imports (hpctune from {found!r}, "
                 f"expected under {copy}): check PYTHONPATH and the editable install")


def run_tests(copy: Path, env: dict[str, str], tests: tuple[str, ...],
              timeout_s: float, lab: bool = False) -> tuple[str, float, str]:
    """('passed' | 'failed' | 'timeout', seconds, output tail); ``lab``: the slurm tests too."""
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
           *([] if lab else ["-m", "not slurm"]), *tests]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=copy, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the pytest run and the workers it started
        out, _ = proc.communicate()
        return "timeout", time.monotonic() - started, out[-2000:]
    outcome = {0: "passed", 1: "failed", 2: "error"}.get(proc.returncode, f"pytest exit {proc.returncode}")
    return outcome, time.monotonic() - started, out[-2000:]


def killer(output: str) -> str:
    """The first test that failed (pytest's short summary), or the collection error."""
    for line in output.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line.split(" - ")[0].split("::", 1)[-1].removeprefix("FAILED ").strip()
    return "(timeout)" if not output else output.strip().splitlines()[-1][:60]


def snippet_problem(text: str, mutant: Mutant) -> str | None:
    count = text.count(mutant.original)
    if count == 1:
        return None
    return "NOT FOUND" if count == 0 else f"FOUND {count}x"


def module_of(mutant: Mutant) -> str:
    return mutant.file.removeprefix("hpctune/").removesuffix(".py")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", action="append", default=[], metavar="TEXT",
                        help="only mutants whose id or file contains TEXT (repeatable)")
    parser.add_argument("--list", action="store_true", help="print the mutants and exit")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                        help=f"seconds per mutant (default {DEFAULT_TIMEOUT_S})")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the run of the unmutated tests")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy")
    parser.add_argument("--lab", action="store_true",
                        help="also run the lab-only mutants, against the Slurm lab (slow)")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if not args.k or any(k in m.id or k in m.file for k in args.k)]
    if args.list:
        for m in chosen:
            print(f"{m.id:32} {m.file}: {m.what}" + ("  [lab]" if m.lab else ""))
        return 0
    lab_only = [m for m in chosen if m.lab and not args.lab]
    if lab_only:
        print(f"{len(lab_only)} lab-only mutants not run (--lab runs them against the Slurm lab)")
        chosen = [m for m in chosen if m not in lab_only]
    if args.lab and any(m.lab for m in chosen):
        check_lab()
    if not chosen:
        print("mutation: no mutant matches", args.k)
        return 1

    workdir = Path(tempfile.mkdtemp(prefix="hpctune-mutation-"))
    copy = workdir / "repo"
    try:
        copy_repository(copy)
        env, lab_env = environment(copy), environment(copy, lab=True)
        check_imports_copy(copy, env)
        for lab in ([False, True] if not args.no_baseline else []):
            tests = tuple(sorted({t for m in chosen if m.lab == lab for t in m.tests}))
            if not tests:
                continue
            outcome, seconds, out = run_tests(copy, lab_env if lab else env, tests, args.timeout * 2, lab)
            if outcome != "passed":
                print(f"mutation: the unmutated tests {outcome} ({seconds:.1f} s); fix them first:\n{out}")
                return 2
            print(f"baseline: {len(tests)} {'lab ' if lab else ''}tests pass on the unmutated copy ({seconds:.1f} s)")
        results: list[tuple[Mutant, str]] = []
        for mutant in chosen:
            path = copy / mutant.file
            original = path.read_text()
            problem = snippet_problem(original, mutant)
            if problem:
                results.append((mutant, problem))
                print(f"{problem:10} {0:6.1f}s  {mutant.id:32} {mutant.file}: snippet {mutant.original!r}")
                continue
            path.write_text(original.replace(mutant.original, mutant.replacement))
            try:
                outcome, seconds, out = run_tests(copy, lab_env if mutant.lab else env, mutant.tests,
                                                  args.timeout * (4 if mutant.lab else 1), mutant.lab)
            finally:
                path.write_text(original)
            # killed: a test failed (or the tests hung, or could not even be collected)
            status = {"passed": "SURVIVED", "failed": "killed", "timeout": "killed",
                      "error": "killed"}.get(outcome, "BROKEN")
            by = {"passed": "", "timeout": "  by a timeout"}.get(outcome, f"  by {killer(out)}")
            if status == "BROKEN":  # pytest could not run the tests at all: the list is wrong
                by = f"  ({outcome}): {out.strip()[-300:]}"
            results.append((mutant, status))
            print(f"{status:10} {seconds:6.1f}s  {mutant.id:30} {mutant.what}{by}", flush=True)
        return summarize(results)
    finally:
        if args.keep:
            print(f"copy kept in {copy}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def summarize(results: list[tuple[Mutant, str]]) -> int:
    per_module: dict[str, Counter] = {}
    for mutant, status in results:
        per_module.setdefault(module_of(mutant), Counter())[status] += 1
    print("\nper module (killed/total):")
    for module, counts in per_module.items():
        total = sum(counts.values())
        extra = ", ".join(f"{n} {s.lower()}" for s, n in counts.items() if s != "killed")
        print(f"  {module:28} {counts['killed']}/{total}" + (f"  ({extra})" if extra else ""))
    killed = sum(1 for _, status in results if status == "killed")
    print(f"killed {killed} of {len(results)}")
    return 0 if killed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
