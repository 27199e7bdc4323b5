"""The experiment directory: every path and file name of it lives here (see docs/concepts.md).

```
<root>/experiment.json   spec, written once         state.json     driver snapshot (JSON)
                                                    state.journal  its changes since (JSON lines)
       summary.json      what `hpctune ls` reads    driver-state.pkl  searcher/scheduler state
       trainable.pkl     the pickled trainable      tuner.pkl      what Tuner.restore needs
       submit.json       a `hpctune submit` plan    driver.log, driver.sbatch  the detached driver
       .driver.lock      one driver at a time
       trials/<id>/{params.json,result.jsonl}  (the trial's metadata: ``meta`` events in its log)
       trials/<id>/params.pkl   only for a config JSON cannot give back exactly
       trials/<id>/control.json while the driver asks the trial's job to stop or pause
       trials/<id>/{progress.csv,events.out.tfevents.*}  the driver's default loggers, live
       jobs/             sbatch scripts, array manifests, one log per Slurm job (stdout and stderr)
       pbt_global.txt, pbt_policy_<trial id>.txt   PBT's exploits, in Ray's format
```
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hpctune.core.ids import is_pool_job, is_slurm_job
from hpctune.storage import control, trial_meta
from hpctune.storage.atomic import read_json, write_bytes_atomic, write_json_atomic
from hpctune.storage.changes import ChangeBell
from hpctune.storage.control import ControlRecord
from hpctune.storage.events import KIND, EventKind
from hpctune.storage.experiment_lock import experiment_lock
from hpctune.storage.new_trial import NewTrial
from hpctune.storage.result_log import ResultLog, read_events
from hpctune.storage.secure import (
    NewDirs,
    check_component,
    ensure_dir,
    load_private_pickle,
    make_private_dir,
    root_dir_mode,
)
from hpctune.storage.trial_config import (
    config_view,
    json_exact,
    params_text,
    pickle_config,
    write_config_file,
)

EXPERIMENT_FILE = "experiment.json"
STATE_FILE = "state.json"
STATE_JOURNAL_FILE = "state.journal"  # the trials' changes since state.json (``storage/journal``)
STATE_ROWS_FILE = "state.rows"  # the base's display fields, column by column (``storage/trial_rows``)
SUMMARY_FILE = "summary.json"
SUBMIT_FILE = "submit.json"
TRAINABLE_FILE = "trainable.pkl"
TUNER_FILE = "tuner.pkl"
DRIVER_STATE_FILE = "driver-state.pkl"
DRIVER_LOG = "driver.log"
DRIVER_SCRIPT = "driver.sbatch"
LOCK_FILE = ".driver.lock"
PBT_GLOBAL_FILE = "pbt_global.txt"
PBT_POLICY_PREFIX = "pbt_policy_"
#: any of these makes a directory an experiment (a driver may not have started yet)
MARKER_FILES = (SUMMARY_FILE, EXPERIMENT_FILE, SUBMIT_FILE, STATE_FILE)
TRIALS_DIR = "trials"
JOBS_DIR = "jobs"
POOL_DIR = "pool"  # the worker pool's queue (``storage/pool_queue``)
SEARCHER_STATE_FILE = "searcher-state.pkl"  # the searcher's own (``tune.search.searcher``)
#: the driver's own files of a fit() that may be started over while no trial has run
FIT_FILES = (EXPERIMENT_FILE, STATE_FILE, STATE_JOURNAL_FILE, STATE_ROWS_FILE, SUMMARY_FILE, TRAINABLE_FILE,
             TUNER_FILE, DRIVER_STATE_FILE, SEARCHER_STATE_FILE, PBT_GLOBAL_FILE)

TRIAL_META_FILE = "trial.json"
PARAMS_FILE = "params.json"
PARAMS_PICKLE_FILE = "params.pkl"
RESULT_LOG_FILE = "result.jsonl"
CONTROL_FILE = "control.json"
#: written live by the driver's loggers (``hpctune.tune.logger``), never by the workers
RESULT_JSON_FILE = "result.json"
PROGRESS_CSV_FILE = "progress.csv"
#: TensorBoard's event files: ``<prefix>.<unix time>.<host>`` (one per driver process)
TBX_EVENTS_PREFIX = "events.out.tfevents"


class ExperimentDir:
    """Paths and small readers/writers for one experiment directory."""

    def __init__(self, root: str | Path):
        # the last component is kept as given: a link planted at <storage>/<name> must be seen
        # (``create`` refuses it), never silently followed to wherever it points
        path = Path(root).expanduser().absolute()
        plain = path.name not in ("", ".", "..")
        self.root = path.parent.resolve() / path.name if plain else path.resolve()
        self._trial_dirs: NewDirs | None = None  # made at the first new trial
        self._new: NewTrial | None = None  # the trial being created (``new_trial``)

    # -- the experiment's own files ---------------------------------------------------------
    @property
    def trials_dir(self) -> Path:
        return self.root / TRIALS_DIR

    @property
    def jobs_dir(self) -> Path:
        return self.root / JOBS_DIR

    @property
    def trainable_path(self) -> Path:
        return self.root / TRAINABLE_FILE

    @property
    def tuner_path(self) -> Path:
        return self.root / TUNER_FILE

    @property
    def driver_state_path(self) -> Path:
        return self.root / DRIVER_STATE_FILE

    @property
    def state_path(self) -> Path:
        return self.root / STATE_FILE

    @property
    def summary_path(self) -> Path:
        return self.root / SUMMARY_FILE

    @property
    def experiment_path(self) -> Path:
        return self.root / EXPERIMENT_FILE

    @property
    def submit_path(self) -> Path:
        return self.root / SUBMIT_FILE

    @property
    def driver_log_path(self) -> Path:
        return self.root / DRIVER_LOG

    @property
    def driver_script_path(self) -> Path:
        return self.root / DRIVER_SCRIPT

    @property
    def lock_path(self) -> Path:
        return self.root / LOCK_FILE

    @property
    def pbt_global_path(self) -> Path:
        """Every PBT exploit of the experiment, one JSON row each (Ray's ``pbt_global.txt``)."""
        return self.root / PBT_GLOBAL_FILE

    def pbt_policy_path(self, trial_id: str) -> Path:
        """The exploits in a trial's lineage (Ray's ``pbt_policy_<trial>.txt``)."""
        return self.root / f"{PBT_POLICY_PREFIX}{check_component(trial_id, 'trial id')}.txt"

    def is_experiment(self) -> bool:
        return any((self.root / marker).exists() for marker in MARKER_FILES)

    def has_started(self) -> bool:
        """True once a trial may have run: a job was launched (``jobs/`` or the pool's queue
        holds something) or a trial has a result log. Until then a failed or killed first
        ``fit()`` can be started over (``reset_unstarted``) instead of burning the name."""
        if (self.root / POOL_DIR).exists() or any(_entries(self.jobs_dir)):
            return True
        return any(_worker_wrote(self.trials_dir / name / RESULT_LOG_FILE) for name in _entries(self.trials_dir))

    def reset_unstarted(self) -> None:
        """Remove what a first ``fit()`` that never launched a trial left (its files, its trial
        directories and their name links at the root), so that ``fit()`` starts over. Call it
        under the experiment lock, after ``has_started()`` said False; ``submit.json`` and the
        detached driver's files stay."""
        for name in _entries(self.root):
            path = self.root / name
            if path.is_symlink() and os.readlink(path).startswith(TRIALS_DIR + os.sep):
                path.unlink()  # a trial_dirname_creator link into trials/
            elif name in FIT_FILES or name.startswith(PBT_POLICY_PREFIX):
                path.unlink()
        for name in _entries(self.trials_dir):
            path = self.trials_dir / name
            if path.is_symlink() or not path.is_dir():
                path.unlink()
            else:
                shutil.rmtree(path)

    def create(self, share_with_group: bool | None = None) -> None:
        """Create root, trials/ and jobs/ as 0700 (0750 when shared with the group; None: the
        HPCTUNE_SHARE_WITH_GROUP environment variable), whatever the umask; what is created
        below them takes their mode (see ``storage.secure``)."""
        mode = root_dir_mode(share_with_group)
        for path in (self.root, self.trials_dir, self.jobs_dir):
            ensure_dir(path, mode)

    # -- per trial ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def new_trial(self, trial_id: str) -> Iterator[NewTrial]:
        """The driver creates trial ``trial_id`` in this block: its directory, params and record
        in few metadata operations when the directory is new (``storage/new_trial``); take the
        new log's descriptor (``NewTrial.take_log``) before the block ends."""
        if self._trial_dirs is None:
            self._trial_dirs = NewDirs(self.trials_dir)
        self._new = NewTrial(check_component(trial_id, "trial id"), self._trial_dirs, RESULT_LOG_FILE)
        try:
            yield self._new
        finally:
            self._new.close()
            self._new = None

    def _creating(self, trial_id: str) -> NewTrial | None:
        """The trial being created, if it is ``trial_id`` (``new_trial``)."""
        new = self._new
        return new if new is not None and new.trial_id == trial_id else None

    def trial_dir(self, trial_id: str) -> Path:
        """``trials/<trial_id>``; an id that is not one path component (read from a forged
        file) is an UnsafeFileError, never a path outside the experiment."""
        return self.trials_dir / check_component(trial_id, "trial id")

    def trial_meta_path(self, trial_id: str) -> Path:
        """``trial.json``: the metadata of a trial run by hpctune before it went into the result
        log (``storage/trial_meta``); read when the log has none, never written."""
        return self.trial_dir(trial_id) / TRIAL_META_FILE

    def result_log_path(self, trial_id: str) -> Path:
        return self.trial_dir(trial_id) / RESULT_LOG_FILE

    def result_log(self, trial_id: str) -> ResultLog:
        """The trial's log as its writers open it: each append rings the change feed, so the
        driver reads this log without looking at the others (``storage/changes``)."""
        return ResultLog(self.result_log_path(trial_id), ChangeBell(self.root, trial_id))

    def control_path(self, trial_id: str) -> Path:
        return self.trial_dir(trial_id) / CONTROL_FILE

    def params_path(self, trial_id: str) -> Path:
        return self.trial_dir(trial_id) / PARAMS_FILE

    def params_pickle_path(self, trial_id: str) -> Path:
        return self.trial_dir(trial_id) / PARAMS_PICKLE_FILE

    def trial_ids(self) -> list[str]:
        if not self.trials_dir.is_dir():
            return []
        return sorted(p.name for p in self.trials_dir.iterdir() if p.is_dir() and not p.is_symlink())

    # -- per job --------------------------------------------------------------------------------
    def job_log_paths(self, job_id: str) -> tuple[Path, Path]:
        """(stdout, stderr) of a job: a local process ``local-N``, a pool run ``pool-N`` or a Slurm
        array task. One file for both (``.out``: a file per job, not two), unless the job has
        the ``.err`` an older hpctune wrote stderr to."""
        base = f"{job_id}_0_log" if is_slurm_job(job_id) else f"{job_id}"  # submitit's %A_%a_0_log
        out, err = self.jobs_dir / f"{base}.out", self.jobs_dir / f"{base}.err"
        return out, err if os.path.lexists(err) else out

    def remove_empty_job_log(self, job_id: str, fd: int = 1) -> bool:
        """At a trial's clean end: remove its job's log when nothing was written to it (a file
        per trial fewer; ``hpctune logs`` then says there was no output). Only the job's own
        ``.out`` (the file ``fd`` writes to, same inode), only while empty, only for a Slurm
        array task or a pool run, whose ids never come back; a local process keeps its log (a
        restored driver numbers its jobs after the logs it finds). True when removed."""
        if not (is_slurm_job(job_id) or is_pool_job(job_id)):
            return False
        out = self.job_log_paths(job_id)[0]
        try:
            mine, there = os.fstat(fd), os.lstat(out)
            if mine.st_size or (mine.st_dev, mine.st_ino) != (there.st_dev, there.st_ino):
                return False
            out.unlink()
        except OSError:
            return False
        return True

    def array_paths(self, uid: str) -> tuple[Path, Path, Path]:
        """(manifest of trial ids, sbatch script, file holding the array's job id) of one array."""
        base = self.jobs_dir / f"array_{uid}"
        return base.with_suffix(".trials"), base.with_suffix(".sbatch"), base.with_suffix(".jobid")

    def array_uids(self) -> list[str]:
        """The uids of every array this experiment submitted or was about to submit (a manifest
        is written before ``sbatch``), oldest first."""
        manifests = sorted(self.jobs_dir.glob("array_*.trials"), key=lambda p: p.stat().st_mtime_ns)
        return [p.stem.removeprefix("array_") for p in manifests]

    # -- readers and writers ----------------------------------------------------------------------
    def write_trainable(self, payload: bytes) -> None:
        write_bytes_atomic(self.trainable_path, payload)

    def write_experiment(self, spec: dict[str, Any]) -> None:
        write_json_atomic(self.experiment_path, spec)

    def read_experiment(self) -> dict[str, Any]:
        return read_json(self.experiment_path, default={})

    def write_trial_meta(self, trial_id: str, meta: dict[str, Any]) -> None:
        """The trial's whole metadata record (tag, resources, name...): a ``meta`` event in its
        result log (``storage/trial_meta``), not a file of its own."""
        new = self._creating(trial_id)
        if new is not None and new.make_dir():
            new.write_meta(meta)
            return
        make_private_dir(self.trial_dir(trial_id))
        trial_meta.write_meta(self.result_log(trial_id), trial_id, meta)

    def read_trial_meta(self, trial_id: str) -> dict[str, Any]:
        """The trial's latest metadata record (``{}``: none yet, or not a JSON object)."""
        new = self._creating(trial_id)
        if new is not None and new.fresh:
            return dict(new.meta)
        meta = trial_meta.read_meta(self.result_log_path(trial_id), self.trial_meta_path(trial_id))
        return meta if isinstance(meta, dict) else {}

    def write_params(self, trial_id: str, params: dict[str, Any]) -> None:
        """The trial's config as text for people (``params.json``) and, only when that text
        does not give it back exactly (a tuple, a numpy number, a class...), pickled as the
        searcher made it (``params.pkl``, what the worker then passes to the trainable): one
        file per trial fewer in the common case. Raises ConfigError naming the key of a value
        that cannot be pickled, before anything is written."""
        payload = pickle_config(params)
        new = self._creating(trial_id)
        fresh = new is not None and new.make_dir()  # a new directory: its mode known, no pickle there
        if not fresh:
            make_private_dir(self.trial_dir(trial_id))
        creating, mode = (new, new.file_mode) if fresh else (None, None)
        pkl, text = self.params_pickle_path(trial_id), self.params_path(trial_id)
        if json_exact(params):
            # params.json first: a crash between the two leaves the older pickle, which a
            # rewrite of the same config (an exploit enacted again on restore) replaces
            write_config_file(creating, text, params_text(params), mode)
            if not fresh or new.wrote_pickle:
                pkl.unlink(missing_ok=True)
            return
        write_config_file(creating, pkl, payload, mode)
        if new is not None:
            new.wrote_pickle = True
        write_config_file(creating, text, params_text(config_view(params)), mode)

    def read_params(self, trial_id: str) -> dict[str, Any]:
        """The human-readable view of the config (``params.json``): JSON types only."""
        return read_json(self.params_path(trial_id), default={})

    def read_config(self, trial_id: str) -> dict[str, Any]:
        """The trial's real config from ``params.pkl`` (loaded only from a file of yours that
        nobody else can write) when there is one; else ``params.json``, which then holds it
        exactly (``write_params``; or a trial written before params.pkl existed)."""
        if not self.params_pickle_path(trial_id).exists():
            return self.read_params(trial_id)
        return load_private_pickle(self.params_pickle_path(trial_id))

    def write_control(self, trial_id: str, record: ControlRecord) -> None:
        """Ask the trial's job to stop or pause (``storage/control``)."""
        control.write_control(self.control_path(trial_id), record)

    def read_control(self, trial_id: str) -> ControlRecord | None:
        """What the driver last asked of the trial's job; None: nothing."""
        return control.read_control(self.control_path(trial_id))

    def clear_control(self, trial_id: str) -> None:
        control.clear_control(self.control_path(trial_id))

    def read_summary(self) -> dict[str, Any]:
        return read_json(self.summary_path, default={}) or {}

    def read_state(self) -> dict[str, Any]:
        return read_json(self.state_path, default={}) or {}

    def read_submit(self) -> dict[str, Any]:
        return read_json(self.submit_path, default={}) or {}


def is_reserved_name(name: str) -> bool:
    """True for a name hpctune uses at the experiment root (its files, ``trials``, ``jobs``,
    ``pool``, PBT's policy files, hidden and temporary files): never a trial's directory name."""
    return (name in RESERVED_NAMES or name.startswith((PBT_POLICY_PREFIX, "."))
            or name.endswith(".tmp"))


__all__ = ["ExperimentDir", "experiment_lock", "is_reserved_name", "config_view", "json_exact", "pickle_config"]

RESERVED_NAMES = frozenset({TRIALS_DIR, JOBS_DIR, POOL_DIR, SEARCHER_STATE_FILE, LOCK_FILE,
                            DRIVER_LOG, DRIVER_SCRIPT, *MARKER_FILES, *FIT_FILES})


def _worker_wrote(log: Path) -> bool:
    """True when a result log holds more than the driver's ``meta`` events (a worker wrote)."""
    with contextlib.suppress(OSError):
        return any(e.get(KIND) != EventKind.META.value for e in read_events(log))
    return False


def _entries(directory: Path) -> list[str]:
    """The names in ``directory``; none if it does not exist."""
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        return os.listdir(directory)
    return []

