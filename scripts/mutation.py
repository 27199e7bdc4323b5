"""Mutation check: do the tests fail when a decision or a piece of bookkeeping breaks?

Each entry of ``MUTANTS`` is a one-line bug: a file, an exact snippet that occurs once in it,
its replacement, and the test files that must catch it. The script copies the repository
(tracked files and untracked ones git does not ignore, as they are in the working tree) to a
temporary directory, checks that the copy is what Python imports, runs the tests of all
mutants once on the unmutated copy (they must pass), then for each mutant applies it, runs its
tests there with ``pytest -x`` under a timeout, and puts the file back. Only unit tests and
local-backend tests run (``-m "not slurm"``, ``HPCTUNE_BACKEND=local``): no Slurm lab needed.

    .venv/bin/python scripts/mutation.py                 # every mutant (a few minutes)
    .venv/bin/python scripts/mutation.py -k asha -k ckpt  # those whose id or file matches
    .venv/bin/python scripts/mutation.py --list           # the list, nothing run

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


U = "tests/unit/"
ASHA = (U + "test_asha.py",)
MEDIAN = (U + "test_median_stopping.py",)
STOPPERS = (U + "test_stoppers.py",)
CONTROLLER = (U + "test_controller.py",)
REPLAY = (U + "test_replay.py", U + "test_log_compatibility.py")
BEST = (U + "test_best_result.py",)
LIMITS = (U + "test_slurm_limits.py",)
GRID = (U + "test_basic_variant.py", U + "test_space.py")

MUTANTS: list[Mutant] = [
    # -- ASHA ------------------------------------------------------------------------------------
    Mutant("asha-cutoff-quantile", "hpctune/schedulers/async_hyperband.py",
           "np.percentile(values, (1 - 1 / reduction_factor) * 100)",
           "np.percentile(values, (1 / reduction_factor) * 100)", ASHA,
           "keeps the bottom instead of the top 1/rf"),
    Mutant("asha-cutoff-ties-stop", "hpctune/schedulers/async_hyperband.py",
           "(math.isnan(score) or score < cutoff)", "(math.isnan(score) or score <= cutoff)", ASHA,
           "a score equal to the cutoff is stopped"),
    Mutant("asha-nan-continues", "hpctune/schedulers/async_hyperband.py",
           "(math.isnan(score) or score < cutoff)", "(score < cutoff)", ASHA,
           "a NaN score is never stopped"),
    Mutant("asha-rung-not-reached", "hpctune/schedulers/async_hyperband.py",
           "if t < rung.milestone or seen:", "if t <= rung.milestone or seen:", ASHA,
           "a trial exactly at a milestone is not judged there"),
    Mutant("asha-max-t", "hpctune/schedulers/async_hyperband.py",
           "if t >= self._max_t and self._stop_last_trials:",
           "if t > self._max_t and self._stop_last_trials:", ASHA,
           "trials at max_t are not stopped"),
    Mutant("asha-mode-ignored", "hpctune/schedulers/async_hyperband.py",
           "return t, self._sign * value", "return t, value", ASHA,
           "mode='min' judged as 'max'"),
    Mutant("asha-bracket-rungs", "hpctune/schedulers/async_hyperband.py",
           "for k in range(n - s)]", "for k in range(n)]", ASHA,
           "brackets get rungs beyond max_t"),
    Mutant("asha-complete-not-recorded", "hpctune/schedulers/async_hyperband.py",
           "                    self._bracket(trial).on_result(trial.trial_id, t, score)",
           "                    pass", ASHA,
           "a completed trial's final result is not recorded at its rung"),
    # -- median stopping ----------------------------------------------------------------------
    Mutant("median-tie-stops", "hpctune/schedulers/median_stopping.py",
           "if best is not None and best >= median:", "if best is not None and best > median:",
           MEDIAN, "a trial exactly at the median is stopped"),
    Mutant("median-counts-itself", "hpctune/schedulers/median_stopping.py",
           "if other == trial_id or not history[-1][0] >= t:", "if not history[-1][0] >= t:",
           MEDIAN, "the trial's own average counts toward the median"),
    Mutant("median-min-samples", "hpctune/schedulers/median_stopping.py",
           "if len(averages) < self._min_samples_required:",
           "if len(averages) <= self._min_samples_required:", MEDIAN,
           "one more trial needed than min_samples_required"),
    Mutant("median-grace", "hpctune/schedulers/median_stopping.py",
           "if math.isnan(t) or t < self._grace_period:",
           "if math.isnan(t) or t <= self._grace_period:", MEDIAN,
           "no judgement at exactly grace_period"),
    Mutant("median-soft-stop", "hpctune/schedulers/median_stopping.py",
           "return Decision.STOP if self._hard_stop else Decision.PAUSE",
           "return Decision.PAUSE if self._hard_stop else Decision.STOP", MEDIAN,
           "hard_stop swapped"),
    Mutant("median-window", "hpctune/schedulers/median_stopping.py",
           "if self._grace_period <= time <= t]", "if time <= t]", MEDIAN,
           "running averages include results before grace_period"),
    # -- stoppers -------------------------------------------------------------------------------
    Mutant("dict-stopper-strict", "hpctune/stoppers.py",
           "stop = stop or (value is not None and value >= threshold)",
           "stop = stop or (value is not None and value > threshold)", STOPPERS,
           "stop={'training_iteration': 4} runs a fifth iteration"),
    Mutant("max-iteration-stopper", "hpctune/stoppers.py",
           "return self._iter[trial_id] >= self._max_iter",
           "return self._iter[trial_id] > self._max_iter", STOPPERS,
           "MaximumIterationStopper lets one more result through"),
    Mutant("experiment-plateau-mode", "hpctune/stoppers.py",
           'reverse=self._mode == "max")', 'reverse=self._mode == "min")', STOPPERS,
           "ExperimentPlateauStopper keeps the worst values"),
    Mutant("experiment-plateau-patience", "hpctune/stoppers.py",
           "return self.has_plateaued() and self._iterations >= self._patience",
           "return self.has_plateaued()", STOPPERS, "patience ignored"),
    Mutant("trial-plateau-grace", "hpctune/stoppers.py",
           "if self._iter[trial_id] < self._grace_period or len(window) < self._num_results:",
           "if len(window) < self._num_results:", STOPPERS, "TrialPlateauStopper ignores grace"),
    Mutant("trial-plateau-threshold", "hpctune/stoppers.py",
           "return value <= self._metric_threshold", "return value >= self._metric_threshold",
           STOPPERS, "metric_threshold in mode min compared the wrong way"),
    Mutant("timeout-stopper-budget", "hpctune/stoppers.py",
           "self._budget -= now - self._last_check", "self._budget -= 0", STOPPERS,
           "TimeoutStopper never spends its budget"),
    Mutant("combined-stopper-first-only", "hpctune/stoppers.py",
           "decisions = [stopper(trial_id, result) for stopper in self._stoppers]",
           "decisions = [stopper(trial_id, result) for stopper in self._stoppers[:1]]", STOPPERS,
           "CombinedStopper asks only its first stopper"),
    # -- checkpoint retention -------------------------------------------------------------------
    Mutant("ckpt-score-order", "hpctune/checkpoint.py",
           'sign = 1 if order == "max" else -1', 'sign = -1 if order == "max" else 1',
           (U + "test_checkpoint.py",) + CONTROLLER, "keeps the worst checkpoints"),
    Mutant("ckpt-latest-deleted", "hpctune/checkpoint.py",
           "doomed = [name for name, _ in ranked if name != latest]",
           "doomed = [name for name, _ in ranked]", (U + "test_checkpoint.py",) + CONTROLLER,
           "the latest checkpoint may be deleted"),
    Mutant("ckpt-unscored-best", "hpctune/checkpoint.py",
           'key=lambda c: float("-inf") if c[1] is None', 'key=lambda c: float("inf") if c[1] is None',
           (U + "test_checkpoint.py",), "a checkpoint without a score counts as best"),
    Mutant("ckpt-score-not-recorded", "hpctune/controller/controller.py",
           "trial.checkpoints.append([name, flat_value(result, attribute) if attribute else None])",
           "trial.checkpoints.append([name, None])", CONTROLLER,
           "the controller forgets checkpoint scores"),
    # -- retries and fail_fast ------------------------------------------------------------------
    Mutant("retry-one-too-few", "hpctune/controller/controller.py",
           "trial.num_failures <= self.settings.max_failures",
           "trial.num_failures < self.settings.max_failures", CONTROLLER,
           "max_failures=1 does not retry"),
    Mutant("retry-unlimited-ignored", "hpctune/controller/controller.py",
           "return self.settings.max_failures < 0 or trial",
           "return trial", CONTROLLER, "max_failures=-1 does not retry"),
    Mutant("retry-not-counted", "hpctune/controller/controller.py",
           "        trial.num_failures += 1\n        if self._may_retry(trial):\n",
           "        trial.num_failures += 0\n        if self._may_retry(trial):\n", CONTROLLER,
           "failures are not counted: retried forever"),
    Mutant("retry-not-awaiting-restart", "hpctune/controller/controller.py",
           "        trial.awaiting_restart = True\n\n    def keep_checkpoint",
           "        trial.awaiting_restart = False\n\n    def keep_checkpoint", CONTROLLER,
           "a retried trial is relaunched as if new (no checkpoint, no throttle wait)"),
    Mutant("fail-fast-does-not-stop", "hpctune/controller/controller.py",
           "            self.stop_experiment(self.fatal_error)", "            pass",
           CONTROLLER, "fail_fast records the error but the run goes on"),
    Mutant("stop-not-cancelled", "hpctune/controller/controller.py",
           "            self.backend.cancel([t.job_id for t in overdue])", "            pass",
           CONTROLLER, "a STOP decision never reaches Slurm"),
    Mutant("time-budget-ignored", "hpctune/controller/controller.py",
           "self.clock() - self._started >= budget:", "self.clock() - self._started > 10 * budget:",
           CONTROLLER, "time_budget_s overrun tenfold"),
    Mutant("slurm-restart-not-a-failure", "hpctune/controller/events.py",
           "and restarts > trial.restart_count", "and restarts > trial.restart_count + 1",
           CONTROLLER, "a job Slurm restarted without warning is no failure"),
    Mutant("preemption-is-a-failure", "hpctune/controller/events.py",
           "        super().on_preempted(event)\n        self.trial.awaiting_restart = True",
           "        super().on_preempted(event)\n        self.trial.awaiting_restart = False",
           CONTROLLER, "the restart after a preemption counts as a failure"),
    Mutant("over-budget-not-cancelled", "hpctune/controller/controller.py",
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
           "batch[0].resources, throttle)", "batch[0].resources, None)", CONTROLLER,
           "max_concurrent_trials never reaches the array (%K)"),
    Mutant("launch-beyond-submit-limit", "hpctune/controller/launching.py",
           "batch, room = batch[:room], room - min(room, len(batch))", "batch, room = batch, room",
           CONTROLLER, "MaxSubmitJobs ignored"),
    Mutant("relaunch-beside-full-array", "hpctune/controller/launching.py",
           "return max(0, throttle - len(in_slurm))", "return max(0, throttle)", CONTROLLER,
           "a retry runs as a third trial beside a full array of 2"),
    Mutant("relaunch-while-array-queued", "hpctune/controller/launching.py",
           'if any(t.job_state == "PENDING" and t.started_at is None for t in in_slurm):',
           "if False:", CONTROLLER, "a retry jumps the array's queued tasks"),
    Mutant("relaunch-behind-queued-resubmission", "hpctune/controller/launching.py",
           'if any(t.job_state == "PENDING" and t.started_at is None for t in in_slurm):',
           'if any(t.job_state == "PENDING" for t in in_slurm):', ("tests/unit/test_pbt_exploit.py",),
           "an exploit's resubmission waits until the previous one's job runs"),
    # -- heartbeats and vanished jobs ------------------------------------------------------------
    Mutant("heartbeat-never-fires", "hpctune/controller/job_watch.py",
           "if ctl.clock() - since > timeout:", 'if ctl.clock() - since > float("inf"):',
           CONTROLLER, "a hung job is never cancelled"),
    Mutant("cancel-request-is-failure", "hpctune/controller/job_watch.py",
           "if trial.stop_requested_at is None and self._stop_requested_on_disk(trial):",
           "if False:", CONTROLLER, "`hpctune cancel` counts as a failure"),
    # -- restore -----------------------------------------------------------------------------------
    Mutant("restore-no-catch-up", "hpctune/controller/snapshot.py",
           "    ctl.ingest_logs(settle=False, unsubmitted=True)", "    pass", CONTROLLER,
           "events written while no driver ran are read only after relaunching"),
    Mutant("restore-offset-zero", "hpctune/controller/snapshot.py",
           "LogTail(ctl.exp.result_log_path(trial.trial_id), trial.log_offset)",
           "LogTail(ctl.exp.result_log_path(trial.trial_id), 0)", CONTROLLER,
           "a restored driver handles every result twice"),
    Mutant("restore-finished-live", "hpctune/controller/snapshot.py",
           "        if not trial.is_finished:\n            ctl.live[trial.trial_id] = trial",
           "        if True:\n            ctl.live[trial.trial_id] = trial", CONTROLLER,
           "finished trials come back to the loop"),
    Mutant("restore-local-not-relaunched", "hpctune/controller/snapshot.py",
           "trial.job_id and not ctl.backend.jobs_survive_driver:",
           "trial.job_id and ctl.backend.jobs_survive_driver:", CONTROLLER,
           "local trials killed with the driver are waited on forever"),
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
    # -- best result -------------------------------------------------------------------------------
    Mutant("best-scope-all-is-last", "hpctune/metrics.py",
           'key = mode if scope == "all" else scope', 'key = "last" if scope == "all" else scope',
           BEST, "get_best_result(scope='all') behaves like 'last'"),
    Mutant("best-mode-flipped", "hpctune/metrics.py",
           'pick = min if mode == "min" else max', 'pick = max if mode == "min" else min', BEST,
           "the worst trial is best"),
    Mutant("best-nan-kept", "hpctune/metrics.py",
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
    # -- grid counting -----------------------------------------------------------------------------
    Mutant("grid-count-sum", "hpctune/space/resolve.py",
           "return math.prod(len(values) for _, values in grid_variables(param_space))",
           "return sum(len(values) for _, values in grid_variables(param_space))", GRID,
           "two grids of 3 count as 6 configs, not 9"),
    Mutant("grid-total-points-twice", "hpctune/search/basic_variant.py",
           "repetitions = max(0, self._num_samples - len(self._points))",
           "repetitions = self._num_samples", GRID,
           "total_trials counts points_to_evaluate twice"),
    Mutant("grid-units", "hpctune/search/basic_variant.py",
           "return len(self._points) + max(0, self._num_samples - len(self._points))",
           "return self._num_samples + len(self._points)", GRID,
           "points_to_evaluate come on top of num_samples"),
    Mutant("grid-index-off-by-one", "hpctune/search/basic_variant.py",
           "if self._grid_index >= math.prod(", "if self._grid_index > math.prod(", GRID,
           "a grid point is suggested past the end of the grid"),
    Mutant("grid-max-concurrent", "hpctune/search/basic_variant.py",
           "if self._max_concurrent and len(self._live) >= self._max_concurrent:",
           "if self._max_concurrent and len(self._live) > self._max_concurrent:", GRID,
           "one trial more than max_concurrent in flight"),
    Mutant("tuner-num-samples", "hpctune/tuner.py",
           "num_samples=tc.num_samples, seed=tc.seed)", "seed=tc.seed)",
           (U + "test_tuner_searcher.py",), "num_samples never reaches the default searcher"),
    # -- a caller that left signals ignored (nohup, `cmd &`) -------------------------------------
    Mutant("cancel-ignored-sigint", "hpctune/cli/cancel.py",
           "usable = [s for s in (signal.SIGINT, signal.SIGTERM) if not process_ignores(verified, s)]",
           "usable = [signal.SIGINT, signal.SIGTERM]", (U + "test_cli_hardening.py",),
           "cancel sends SIGINT to a driver that ignores it: the driver runs on"),
    Mutant("sigign-bit", "hpctune/storage/summary.py",
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


def environment(copy: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(copy), HPCTUNE_BACKEND="local", PYTHONDONTWRITEBYTECODE="1")
    return env


def check_imports_copy(copy: Path, env: dict[str, str]) -> None:
    found = subprocess.run([sys.executable, "-c", "import hpctune; print(hpctune.__file__)"],
                           cwd=copy, env=env, capture_output=True, text=True).stdout.strip()
    if not found.startswith(str(copy)):
        sys.exit(f"mutation: the copy is not what Python imports (hpctune from {found!r}, "
                 f"expected under {copy}): check PYTHONPATH and the editable install")


def run_tests(copy: Path, env: dict[str, str], tests: tuple[str, ...],
              timeout_s: float) -> tuple[str, float, str]:
    """('passed' | 'failed' | 'timeout', seconds, output tail)."""
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m", "not slurm",
           *tests]
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
    args = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if not args.k or any(k in m.id or k in m.file for k in args.k)]
    if args.list:
        for m in chosen:
            print(f"{m.id:32} {m.file}: {m.what}")
        return 0
    if not chosen:
        print("mutation: no mutant matches", args.k)
        return 1

    workdir = Path(tempfile.mkdtemp(prefix="hpctune-mutation-"))
    copy = workdir / "repo"
    try:
        copy_repository(copy)
        env = environment(copy)
        check_imports_copy(copy, env)
        if not args.no_baseline:
            tests = tuple(sorted({t for m in chosen for t in m.tests}))
            outcome, seconds, out = run_tests(copy, env, tests, args.timeout * 2)
            if outcome != "passed":
                print(f"mutation: the unmutated tests {outcome} ({seconds:.1f} s); fix them first:\n{out}")
                return 2
            print(f"baseline: {len(tests)} test files pass on the unmutated copy ({seconds:.1f} s)")
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
                outcome, seconds, out = run_tests(copy, env, mutant.tests, args.timeout)
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
