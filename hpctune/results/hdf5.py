"""An experiment as one HDF5 file (``ResultGrid.to_hdf5``, ``hpctune export EXP --hdf5``).

Layout (``FORMAT_VERSION`` 1)::

    /                      attrs: hpctune_version, format_version, experiment, metric, mode,
                                  search_space (JSON), spec (experiment.json as JSON), created,
                                  usage (JSON: the allocation used, idle, budget; usage.json)
    /summary               one row per trial: trial_id, status, num_results, last iteration,
                           the metric's last and best value, every scalar config value,
                           the allocation it used: cpu_hours, gpu_hours, node_hours (NaN: unknown)
    /trials/<trial_id>/    attrs: status, trial_name, experiment_tag, slurm_job_ids, error,
                                  config (JSON), config/<key> (each scalar value), lineage (JSON)
        metrics/<key>      one 1-D dataset per reported key (nested keys as groups: val/acc),
                           all aligned: row i of every dataset is the trial's i-th result
                           (metrics/training_iteration and metrics/timestamp among them);
                           numbers as float64 (NaN where a result lacks the key) or int64,
                           the rest as UTF-8 strings; chunked and gzip-compressed

Strings are fixed-width (so they compress); the file uses HDF5 1.10's format (compact chunk
indexes: about 110 bytes per result for 17 keys, bench/hdf5_export.py), readable by any HDF5
from 1.10 (2016) on. Written by the driver or the CLI only, never by the workers: HDF5's file
locking is not reliable on NFS or Lustre, so one process writes a new file (HDF5 locking off)
and renames it into place. Needs ``pip install 'hpctune[hdf5]'`` (h5py).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from hpctune.core.metrics import fits_float, flatten
from hpctune.errors import ConfigError
from hpctune.results.report.data import ExperimentRecord, TrialRecord
from hpctune.storage.atomic import replacing

FORMAT_VERSION = 1
_COMPRESSION = {"compression": "gzip", "compression_opts": 4}


def write_hdf5(record: ExperimentRecord, path: str | Path) -> Path:
    """Write ``record`` to ``path`` (replaced atomically, private: 0600, or 0640 in a directory
    the group may read); returns the path."""
    h5py = _h5py()
    path = Path(path).expanduser().resolve()
    with (replacing(path) as (_, tmp),
          h5py.File(tmp, "w", libver=("v110", "latest"), **_no_locking(h5py)) as f):
        _root_attrs(f, record)
        _summary(f, record, h5py)
        trials = f.create_group("trials")
        for trial in record.trials:
            _trial_group(trials.create_group(trial.trial_id), trial, h5py)
    return path


def _h5py() -> Any:
    try:
        import h5py
    except ImportError as exc:
        raise ConfigError("Writing HDF5 needs h5py: pip install 'hpctune[hdf5]' (or pip install h5py).") from exc
    return h5py


def _no_locking(h5py: Any) -> dict[str, Any]:
    """HDF5 locking off where the library supports it: it fails or hangs on NFS/Lustre mounts."""
    return {"locking": False} if h5py.version.hdf5_version_tuple >= (1, 12, 1) else {}


def _root_attrs(f: Any, record: ExperimentRecord) -> None:
    from hpctune import __version__

    f.attrs.update({"hpctune_version": __version__, "format_version": FORMAT_VERSION,
                    "experiment": record.name, "metric": record.metric or "", "mode": record.mode or "",
                    "search_space": json.dumps(record.search_space, default=str),
                    "spec": json.dumps(record.spec, default=str), "created": time.time(),
                    "usage": json.dumps(_usage_json(record), default=str)})


def _usage_json(record: ExperimentRecord) -> dict[str, Any] | None:
    """The experiment's allocation as the root's ``usage`` attribute (None: not measured)."""
    if record.usage is None:
        return None
    usage = record.usage.usage
    return {"used": usage.used.to_json(), "idle": None if usage.idle is None else usage.idle.to_json(),
            "queued_s": usage.queued_s, "budget": record.usage.budget}


def _trial_group(group: Any, record: TrialRecord, h5py: Any) -> None:
    trial = record.trial
    group.attrs.update({"status": trial.status.value, "trial_name": trial.name,
                        "experiment_tag": trial.experiment_tag, "error": trial.error or "",
                        "slurm_job_ids": json.dumps(record.job_ids),
                        "config": json.dumps(record.config, default=str),
                        "lineage": json.dumps(record.lineage, default=str)})
    for key, value in flatten(record.config).items():
        if _scalar(value) is not None:
            group.attrs[f"config/{key}"] = _scalar(value)
    metrics = group.create_group("metrics")
    flat = [flatten(r) for r in record.results]
    keys: dict[str, None] = {}
    for row in flat:
        keys.update(dict.fromkeys(k for k in row if not k.startswith("config/")))
    for key in keys:
        data, dtype = _column([row.get(key) for row in flat], h5py)
        name = key if _fits(metrics, key) else key.replace("/", "%2F")
        dataset = metrics.create_dataset(name, data=data, dtype=dtype, chunks=(min(len(data), 4096),),
                                         shuffle=True, **_COMPRESSION)
        if name != key:
            dataset.attrs["key"] = key


def _fits(group: Any, key: str) -> bool:
    """True if ``key`` can be a path in ``group`` (no dataset where a group is needed, or back)."""
    parts = key.split("/")
    for i in range(1, len(parts) + 1):
        prefix = "/".join(parts[:i])
        if prefix in group and (i == len(parts) or not hasattr(group[prefix], "keys")):
            return False
    return all(parts)


def _column(values: list[Any], h5py: Any) -> tuple[Any, Any]:
    """The values as an array: int64, float64 (NaN for missing) or UTF-8 strings."""
    import numpy as np

    present = [v for v in values if v is not None]
    if present and len(present) == len(values) and all(_is_int(v) for v in present):
        return np.asarray(values, dtype=np.int64), np.int64
    if all(_is_number(v) for v in present):
        return np.asarray([math.nan if v is None else float(v) for v in values], dtype=np.float64), np.float64
    text = [("" if v is None else v if isinstance(v, str) else json.dumps(v, default=str)).encode()
            for v in values]
    width = max((len(t) for t in text), default=1) or 1  # fixed width: compressed, unlike vlen
    dtype = h5py.string_dtype("utf-8", width)
    return np.asarray(text, dtype=dtype), dtype


def _summary(f: Any, record: ExperimentRecord, h5py: Any) -> None:
    """One row per trial (a compound dataset: ``pandas.DataFrame(f["summary"][:])``)."""
    import numpy as np

    rows = [_summary_row(t, record.metric, record.mode, record.trial_usage(t.trial_id)) for t in record.trials]
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    kinds = {c: _column([r.get(c) for r in rows], h5py) for c in columns}
    dtype = np.dtype([(c, kinds[c][1]) for c in columns])
    table = np.zeros(len(rows), dtype=dtype)
    for column in columns:
        table[column] = kinds[column][0]
    f.create_dataset("summary", data=table, **_COMPRESSION)


def _summary_row(record: TrialRecord, metric: str | None, mode: str | None,
                 usage: dict[str, float | None]) -> dict[str, Any]:
    last = record.results[-1] if record.results else {}
    row: dict[str, Any] = {"trial_id": record.trial_id, "status": record.trial.status.value,
                           "num_results": len(record.results),
                           "training_iteration": int(last.get("training_iteration") or 0)}
    if metric:
        values = [v for v in record.column(metric) if _is_number(v) and not math.isnan(float(v))]
        row[f"{metric}/last"] = float(values[-1]) if values else math.nan
        best = (min if mode == "min" else max)(values) if values and mode in ("min", "max") else math.nan
        row[f"{metric}/best"] = float(best)
    for key, value in flatten(record.config).items():
        if _scalar(value) is not None:
            row[f"config/{key}"] = _scalar(value)
    return {**row, **{k: math.nan if v is None else v for k, v in usage.items()}}


def _scalar(value: Any) -> Any:
    """A value an HDF5 attribute or a summary cell holds as itself (numbers, text); else None."""
    if isinstance(value, bool):
        return int(value)
    return value if isinstance(value, (int, float, str)) else None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


def _is_number(value: Any) -> bool:
    """None or a number a float holds (an old log's int beyond that range is stored as text)."""
    return value is None or isinstance(value, (int, float)) and fits_float(value)
