"""What schedulers, searchers and callbacks may know about a trial: ids, config, status."""

from __future__ import annotations

import dataclasses
import marshal
import weakref
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hpctune.core.ids import default_trial_name
from hpctune.core.metrics import ANALYSED_AUTO_METRICS, AUTO_METRICS, fits_float, flatten
from hpctune.tune.experiment.trial_lifecycle import JobState, TrialLifecycle, TrialStatus

__all__ = ["JobState", "Trial", "TrialInfo", "TrialStatus"]


@dataclass(frozen=True)
class TrialInfo:
    """An immutable snapshot of a trial handed to pure decision logic (schedulers, stoppers)."""

    trial_id: str
    config: Mapping[str, Any] = field(default_factory=dict)
    experiment_tag: str = ""
    #: the trial's current resource request ({"cpu": 1, "gpu": 0, ...})
    resources: Mapping[str, Any] = field(default_factory=dict)


_ANALYSIS_SKIP = AUTO_METRICS - ANALYSED_AUTO_METRICS


class Finished:
    """A truth value that is also callable: Ray's ``Trial.is_finished()`` is a method, while
    code written for hpctune reads ``trial.is_finished`` as a flag; both give the same bool."""

    __slots__ = ("_value",)

    def __init__(self, value: bool):
        self._value = bool(value)

    def __bool__(self) -> bool:
        return self._value

    def __call__(self) -> bool:
        return self._value

    def __eq__(self, other: object) -> bool:
        return self._value == other

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return repr(self._value)


@dataclass(eq=False)  # a trial is one thing: equal to itself only, hashable (Ray's is a dict key)
class Trial(TrialLifecycle):
    """The driver's record of a trial: status, Slurm job, latest result, log offset.

    ``Trial.PENDING`` ... ``Trial.ERROR`` are the statuses, as on Ray's ``Trial``
    (``trial.status == Trial.TERMINATED`` works: statuses are strings). Where the trial is
    (status, job, pause, stop) changes only through the operations of ``TrialLifecycle``
    (``hpctune/tune/experiment/trial_lifecycle.py``); the other fields are its record.
    """

    PENDING = TrialStatus.PENDING
    RUNNING = TrialStatus.RUNNING
    PAUSED = TrialStatus.PAUSED
    TERMINATED = TrialStatus.TERMINATED
    ERROR = TrialStatus.ERROR

    trial_id: str
    config: dict[str, Any]
    experiment_tag: str
    path: str
    resources: dict[str, Any] = field(default_factory=dict)
    status: TrialStatus = TrialStatus.PENDING
    job_id: str | None = None
    job_state: JobState = JobState.NONE
    job_reason: str = ""
    node: str = ""
    last_result: dict[str, Any] = field(default_factory=dict)
    num_results: int = 0
    metric_analysis: dict[str, dict[str, float]] = field(default_factory=dict)
    error: str | None = None
    log_offset: int = 0
    stop_requested_at: float | None = None
    results_after_stop: int = 0
    stop_reason: str = ""
    stopped_by_scheduler: bool = False
    num_failures: int = 0
    restart_count: int = 0
    preemptions: int = 0
    awaiting_restart: bool = False
    #: jobs the driver cancelled to run the trial again later (Ctrl+C): never re-attached to
    cancelled_jobs: list[str] = field(default_factory=list)
    max_iteration: int = 0
    last_event_at: float | None = None
    checkpoint: str | None = None
    checkpoints: list[list[Any]] = field(default_factory=list)
    submitted_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    #: from TuneConfig(trial_name_creator=...): shown instead of the id; "" when not set
    trial_name: str = ""
    #: from TuneConfig(trial_dirname_creator=...): a link at the experiment root; "" when not set
    dirname: str = ""
    trainable_name: str = ""
    #: the worker process of the latest result (to tell callbacks of a restore from a checkpoint)
    run_key: str = ""
    #: resources a ResourceChangingScheduler decided on: they apply at the next resubmission
    pending_resources: dict[str, Any] | None = None
    #: PBT: the checkpoints the trial continued from, oldest first (``<donor>@<iteration>``)
    lineage: list[str] = field(default_factory=list)

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if _WATCHERS:  # a driver's snapshot looks only at the trials assigned to
            _assigned(self)

    @property
    def info(self) -> TrialInfo:
        return TrialInfo(self.trial_id, self.config, self.experiment_tag, self.resources)

    @property
    def name(self) -> str:
        """The trial's name: ``trial_name_creator``'s, else Ray's ``<trainable>_<trial_id>``."""
        return self.trial_name or default_trial_name(self.trainable_name, self.trial_id)

    @property
    def logdir(self) -> str:
        """Ray's name for the trial directory (also ``local_path``)."""
        return self.path

    @property
    def local_path(self) -> str:
        return self.path

    @property
    def is_finished(self) -> Finished:
        """TERMINATED or ERROR: ``trial.is_finished()`` as Ray's method, ``if trial.is_finished``
        as a flag (both work)."""
        return Finished(self.status.is_finished)

    def record_result(self, result: dict[str, Any]) -> None:
        """Keep the latest result (as reported) and Ray's metric analysis (min/max/avg/last-k-avg)
        of every number in it, nested ones by their flattened name (``"val/acc"``)."""
        self.last_result = result
        self.num_results += 1
        for key, value in flatten({k: v for k, v in result.items() if k != "config"}).items():
            if key in _ANALYSIS_SKIP or isinstance(value, bool):
                continue
            if isinstance(value, (int, float)) and fits_float(value):  # an old log's huge int: skipped
                _update_analysis(self.metric_analysis.setdefault(key, {}), float(value))

    def pack(self) -> bool:
        """Keep this finished trial's record in a compact form (``PackedTrial``): the same
        object, every field reading as before, ``trial_id``, ``status`` and ``config`` as they
        are and the others from one ``marshal`` blob (a few hundred bytes instead of several
        KB: at 100,000 trials the finished ones were most of the driver's memory). Any
        assignment unpacks it first (``PackedTrial.__setattr__``), so no change is lost; a
        reader gets a new copy of a list or dict field each time. False (nothing done) unless
        it is a finished ``Trial`` holding exactly its fields, each built of the types
        ``marshal`` keeps exactly (``_exact``: the JSON types a result log holds, tuples)."""
        if type(self) is not Trial or not self.status.is_finished or list(self.__dict__) != _FIELD_NAMES:
            return False
        data = self.__dict__
        values = tuple(data[name] if name != "job_state" else data[name].value for name in _PACKED_NAMES)
        if not _exact(values):  # a value of another type (a numpy number, a subclass): left as it is
            return False
        blob = _compress(marshal.dumps(values))
        object.__setattr__(self, "__dict__", {"trial_id": self.trial_id, "config": self.config,
                                              "status": self.status, _BLOB: blob})
        object.__setattr__(self, "__class__", PackedTrial)
        return True

    @property
    def packed(self) -> bytes | None:
        """The compact form's blob (``pack``); None while the trial holds its fields as they are."""
        return None

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["status"], data["job_state"] = self.status.value, self.job_state.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trial:
        """A trial from ``to_dict``'s output; fields an older version saved and this one no
        longer has are ignored, so its snapshots still restore."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})  # statuses: __post_init__

    def __str__(self) -> str:
        return self.name


class AssignedTrials(set):
    """The trials assigned to (any attribute) since the set was last cleared, while
    ``watching`` (``watch_assignments``; ``stop_watching``: the caller looks at every trial)."""

    watching = True


#: the sets every assignment of a trial adds it to, while they live
_WATCHERS: list[weakref.ref[AssignedTrials]] = []


def watch_assignments() -> AssignedTrials:
    """A set that every ``Trial`` joins when one of its attributes is assigned, from now on
    and while the set lives (the caller clears it). A trial changes only by assignments (an
    edit in place of a list or dict field comes with one of a scalar field: the snapshot's
    ``fingerprint`` relies on it too), so a driver's snapshot looks at these trials alone
    instead of every live one (each look reads the whole record: 50 ms a snapshot at
    10,000 live trials)."""
    marks = AssignedTrials()
    _WATCHERS.append(weakref.ref(marks))
    return marks


def stop_watching(marks: AssignedTrials) -> None:
    """No more trials join ``marks`` (a driver whose run ended: it would hold every trial of
    the process's later experiments); its owner looks at every trial again."""
    marks.watching = False
    marks.clear()
    _WATCHERS[:] = [ref for ref in _WATCHERS if ref() not in (None, marks)]


def _assigned(trial: Trial) -> None:
    dead = False
    for ref in _WATCHERS:
        marks = ref()
        if marks is None:
            dead = True
        else:
            marks.add(trial)
    if dead:
        _WATCHERS[:] = [ref for ref in _WATCHERS if ref() is not None]


#: the fields in their order (a trial's ``__dict__`` holds exactly these: ``pack``)
_FIELD_NAMES = [f.name for f in dataclasses.fields(Trial)]
#: what a packed trial keeps as it is: what every pass over the trials reads (and the config,
#: which may hold any object, and is the searcher's own)
_PLAIN = ("trial_id", "config", "status")
#: the fields in a packed trial's blob, in this order
_PACKED_NAMES = tuple(name for name in _FIELD_NAMES if name not in _PLAIN)
_BLOB = "_packed"


class PackedTrial(Trial):
    """A finished trial in its compact form (``Trial.pack``): what it holds reads as before;
    an assignment of any attribute brings the trial back to a plain ``Trial`` first (a
    restore running it again, a replay reopening it: ``TrialLifecycle``'s operations)."""

    def __setattr__(self, name: str, value: Any) -> None:
        self.unpack()
        setattr(self, name, value)

    def __delattr__(self, name: str) -> None:
        self.unpack()
        delattr(self, name)

    def unpack(self) -> None:
        """Back to a plain ``Trial`` with every field as it was packed (same field order)."""
        data = self.__dict__
        values = dict(zip(_PACKED_NAMES, _unmarshal(data[_BLOB]), strict=True))
        object.__setattr__(self, "__dict__", {name: data[name] if name in _PLAIN else values[name]
                                              for name in _FIELD_NAMES})
        object.__setattr__(self, "__class__", Trial)

    @property
    def packed(self) -> bytes | None:
        return self.__dict__[_BLOB]

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled (and copied) as the plain ``Trial`` it reads as: its blob is compressed
        against this process's ``_ZDICT``, which another process lacks."""
        data = self.__dict__
        values = dict(zip(_PACKED_NAMES, _unmarshal(data[_BLOB]), strict=True))
        return _plain_trial, ({name: data[name] if name in _PLAIN else values[name] for name in _FIELD_NAMES},)

    def to_dict(self) -> dict[str, Any]:
        data = self.__dict__
        values = dict(zip(_PACKED_NAMES, _loads(data[_BLOB]), strict=True))
        return {name: (data[name] if name in _PLAIN else values[name]) if name != "status"
                else data[name].value for name in _FIELD_NAMES}


#: the types ``marshal`` gives back exactly (it writes a float or str subclass as the base type)
_EXACT = frozenset({str, int, float, bool, type(None), bytes})


def _exact(value: Any) -> bool:
    """True if ``value`` is built of the JSON types, tuples and bytes alone, each exactly (no
    subclass), so that ``marshal`` gives back an equal value of the same types."""
    kind = type(value)
    if kind in _EXACT:
        return True
    if kind is dict:
        return all(type(k) in _EXACT and _exact(v) for k, v in value.items())
    if kind is list or kind is tuple:
        return all(_exact(v) for v in value)
    return False


#: the preset dictionary every blob is compressed against (``zlib``'s ``zdict``): the fields of
#: the first trial this process packs. The trials of one run are much alike (the same field
#: order, metric names, paths), so the next blobs take half the bytes (about 280 instead of
#: 580: 26 MB at 100,000 trials). Set once, never changed: a blob is only read in the process
#: that made it (``PackedTrial.__reduce__`` pickles a plain ``Trial``).
_ZDICT: list[bytes] = []


def _compress(raw: bytes) -> bytes:
    if not _ZDICT:
        _ZDICT.append(raw[-32768:])  # zlib's window: a longer dictionary is cut to its end
    packer = zlib.compressobj(1, zdict=_ZDICT[0])  # level 1: as small as 9 here, 5 times faster
    return packer.compress(raw) + packer.flush()


def _loads(blob: bytes) -> tuple[Any, ...]:
    unpacker = zlib.decompressobj(zdict=_ZDICT[0])
    return marshal.loads(unpacker.decompress(blob) + unpacker.flush())


def _plain_trial(data: dict[str, Any]) -> Trial:
    """A ``Trial`` holding ``data`` (its fields in their order), for ``PackedTrial.__reduce__``."""
    trial = Trial.__new__(Trial)
    object.__setattr__(trial, "__dict__", data)
    return trial


def _unmarshal(blob: bytes) -> list[Any]:
    values = list(_loads(blob))
    values[_JOB_STATE] = JobState.parse(values[_JOB_STATE])
    return values


_JOB_STATE = _PACKED_NAMES.index("job_state")


def _packed_field(index: int, name: str) -> property:
    def get(self: PackedTrial) -> Any:
        value = _loads(self.__dict__[_BLOB])[index]
        return JobState.parse(value) if index == _JOB_STATE else value

    get.__name__ = name
    return property(get, doc=f"The packed trial's ``{name}`` (a new copy of a list or dict each read).")


for _index, _name in enumerate(_PACKED_NAMES):
    setattr(PackedTrial, _name, _packed_field(_index, _name))


def _update_analysis(stats: dict[str, Any], value: float) -> None:
    n = stats.get("n", 0) + 1
    stats["n"] = n
    stats["last"] = value
    stats["max"] = max(stats.get("max", value), value)
    stats["min"] = min(stats.get("min", value), value)
    stats["avg"] = stats.get("avg", 0.0) + (value - stats.get("avg", 0.0)) / n
    recent = (stats.get("recent", []) + [value])[-10:]
    stats["recent"] = recent
    stats["last-5-avg"] = sum(recent[-5:]) / len(recent[-5:])
    stats["last-10-avg"] = sum(recent) / len(recent)
