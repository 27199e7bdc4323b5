"""The local backend's job numbers: ``jobs/local-next.json`` holds the lowest ``local-N`` no
driver of the experiment has used, so that a restored driver never repeats a job id (each job's
log stays its own) even where empty job logs were removed (a file per trial fewer).

One writer (``LocalBackend.launch``, before it starts the processes it numbered) and one
reader (the backend of a restored driver). The record carries ``"v": LOCAL_JOBS_VERSION``; an
experiment from an hpctune before the record is numbered after the logs it kept.
"""

from __future__ import annotations

from pathlib import Path

from hpctune.core.ids import LOCAL_PREFIX, JobKind, job_kind, job_number
from hpctune.errors import ExperimentStateError
from hpctune.storage.atomic import read_json, write_json_atomic
from hpctune.storage.events import VERSION, check_version

#: the version of ``local-next.json`` this hpctune writes (and the newest it reads)
LOCAL_JOBS_VERSION = 1
_NAME = "local-next.json"


def read_next_local_job(jobs_dir: Path) -> int:
    """The lowest local job number no earlier driver used: the record's, or one more than the
    highest ``local-N`` log found (an experiment from before the record), whichever is higher."""
    path = Path(jobs_dir) / _NAME
    try:
        record = read_json(path, {"next": 0})
    except ValueError:  # not JSON
        record = None
    if not isinstance(record, dict) or type(record.get("next")) is not int or record["next"] < 0:
        raise ExperimentStateError(f"{path} is not an hpctune job-number record (a JSON object with a "
                                   "non-negative 'next'): remove it, and a restored driver numbers "
                                   "its jobs after the logs it finds.")
    check_version(record.get(VERSION, 1), LOCAL_JOBS_VERSION, path, "local job-number record")
    logged = [job_number(p.stem) for p in Path(jobs_dir).glob(f"{LOCAL_PREFIX}*.out")
              if job_kind(p.stem) is JobKind.LOCAL]
    return max([record["next"], *(n + 1 for n in logged if n is not None)])


def write_next_local_job(jobs_dir: Path, number: int) -> None:
    """Record that local job numbers below ``number`` are taken."""
    write_json_atomic(Path(jobs_dir) / _NAME, {VERSION: LOCAL_JOBS_VERSION, "next": int(number)}, fsync=False)
