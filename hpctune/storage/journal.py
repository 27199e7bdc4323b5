"""The driver's trial state on disk: a compact base plus an append-only journal of changes.

A snapshot appends only the trials that changed since the last one to ``state.journal``
(JSON lines), so its cost follows what changed, not how many trials the experiment has.
When the journal grows past a share of the base, the base (``state.json``) is rewritten
from the driver's memory (atomically, fsynced) and the journal starts again empty.

Files (one writer: the driver's ``storage.journal_writer.JournalWriter``; one reader:
``read_trial_state``, and ``read_one_trial`` for one trial):

```
state.json     {"format": "hpctune-state", "version": 2, "generation": G, "seq": S,
                "searcher_finished": ..., "backend_commands": ..., "updated": ...,
                "trials": [<one trial record per line>]}
state.journal  {"kind": "header", "version": 2, "generation": G}
               {"kind": "trial", "seq": N, "trial": {...}}      a trial's whole record, as now
               {"kind": "run", "seq": N, "searcher_finished": ..., ...}
```

The journal counts only while its header names the base's generation: a compaction that
was interrupted after its new base leaves an old journal behind, whose lines the base holds
already. A large base is compacted in the background, from the files (``merge_base``: the
old base and the journal's lines up to a snapshot already paired with its
``driver-state.pkl``), while the driver goes on appending to the old journal; that base
names the old journal's generation as ``continues``, whose lines after the base's ``seq``
still count, until the driver starts the new generation's journal with them. ``seq`` numbers the snapshots: ``driver-state.pkl`` records the one it was written
with, and a restore replays the lines up to it, so trials and searcher state agree. A last
line torn by a crash is reported and ignored; the writer's first snapshot is a compaction,
so a torn line never stays in the middle of a journal. A ``state.json`` without ``format``
(hpctune before the journal) is read as it is: every trial, no journal.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpctune.errors import ExperimentStateError
from hpctune.storage.experiment import STATE_JOURNAL_FILE, ExperimentDir
from hpctune.storage.secure import read_regular_bytes

FORMAT = "hpctune-state"
VERSION = 2
JOURNAL_FILE = STATE_JOURNAL_FILE
#: the run's fields besides the trials (``state.json``'s top level, a journal's ``run`` lines)
RUN_FIELDS = ("searcher_finished", "backend_commands", "updated")
#: the largest state file read (a 100,000-trial base is about 300 MB)
MAX_STATE_BYTES = 2 * 1024 * 1024 * 1024


def journal_path(exp: ExperimentDir) -> Path:
    """Where the journal of ``exp`` lives (next to ``state.json``)."""
    return exp.root / JOURNAL_FILE


@dataclass
class TrialState:
    """What the base and the journal say: every trial's record by id (creation order), the
    run's fields, the last snapshot number read, and problems a reader should report."""

    trials: dict[str, dict[str, Any]] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)
    seq: int = 0
    problems: list[str] = field(default_factory=list)
    #: False for an experiment of an hpctune before the journal (``state.json`` only)
    journaled: bool = True
    #: the trials whose text holds an escaped control character; None: not known (all may)
    escaped: set[str] | None = None

    def as_snapshot(self) -> dict[str, Any]:
        """The old ``state.json`` shape: ``{"trials": [...], <run fields>}``."""
        return {**self.run, "trials": list(self.trials.values())}


def read_trial_state(
    exp: ExperimentDir, upto_seq: int | None = None, view: bool = False
) -> TrialState | None:
    """The trials as of the last snapshot (or of snapshot ``upto_seq``: what a restore pairs
    with ``driver-state.pkl``); None when no snapshot was written yet.

    ``view``: for displays, the base's trial records without their ``metric_analysis`` (the
    largest part, which the base writes last so that a reader can stop before it); and
    ``escaped`` names the trials whose text holds an escaped control character (only those
    need scrubbing before they reach a terminal).

    ExperimentStateError for a damaged base, a journal of a newer hpctune or a damaged line
    in the middle of the journal; a torn last line is left out and named in ``problems``.
    """
    try:
        raw = read_regular_bytes(exp.state_path, MAX_STATE_BYTES)
    except FileNotFoundError:
        return None
    if not raw.strip():
        return None
    base = _base_by_lines(raw, view)
    if base is None:  # not one trial a line (an older hpctune, a hand-written file): whole
        try:
            base = json.loads(raw)
        except ValueError as exc:
            raise ExperimentStateError(f"{exp.state_path} is damaged ({exc}).") from exc
        if isinstance(base, dict):
            base["escaped"] = None  # not known per trial: scrub them all
    if not isinstance(base, dict) or not isinstance(base.get("trials", []), list):
        raise ExperimentStateError(f"{exp.state_path} is damaged: not a trial snapshot.")
    trials = {
        t["trial_id"]: t for t in base.get("trials", []) if isinstance(t, dict) and "trial_id" in t
    }
    run = {k: base[k] for k in RUN_FIELDS if k in base}
    escaped = base.get("escaped")
    if base.get("format") != FORMAT:  # written before the journal: the whole state, as it is
        return TrialState(trials, run, 0, journaled=False, escaped=None)
    _check_version(base.get("version"), exp.state_path)
    state = TrialState(trials, run, int(base.get("seq", 0)), escaped=escaped)
    _replay(journal_path(exp), _journal_after(base), upto_seq, state)
    return state


def _journal_after(base: dict[str, Any]) -> dict[str, int]:
    """The journal generations whose lines count on top of ``base``, each with the snapshot
    number after which they do: its own generation's lines all; those of the journal it
    ``continues`` (a background compaction's base) after the base's ``seq``."""
    after = {str(base.get("generation")): -1}
    if base.get("continues") is not None:
        after[str(base["continues"])] = int(base.get("seq", 0))
    return after


#: where a base's trial record reaches the fields a display does not need (written last)
_HEAVY = b', "metric_analysis": '
#: an escaped control character in JSON text (C0, DEL, C1; as escapes or raw UTF-8 C1)
_ESCAPED_CONTROL = re.compile(rb"\\[nrtbf]|\\u00[01]|\\u007[fF]|\\u00[89]|\xc2[\x80-\x9f]")


def _base_by_lines(raw: bytes, view: bool) -> dict[str, Any] | None:
    """A base as ``compact`` writes it (its header, then one trial a line), parsed line by
    line; None for any other text (the caller parses it whole)."""
    lines = raw.split(b"\n")
    if len(lines) < 3 or lines[-2] != b"]}" or lines[-1] or not lines[0].endswith(b'"trials": ['):
        return None
    try:
        base = json.loads(lines[0] + b"]}")
        trials, escaped = [], set()
        for line in lines[1:-2]:
            record = _trial_line(line[:-1] if line.endswith(b",") else line, view)
            trials.append(record)
            if (b"\\" in line or b"\xc2" in line) and _ESCAPED_CONTROL.search(
                line
            ):  # most have neither
                escaped.add(record.get("trial_id"))
    except (ValueError, AttributeError):
        return None
    if not isinstance(base, dict):
        return None
    base["trials"], base["escaped"] = trials, escaped
    return base


def _trial_line(line: bytes, view: bool) -> dict[str, Any]:
    if view and (cut := line.find(_HEAVY)) > 0:
        with contextlib.suppress(ValueError):  # the marker was inside a value: read it whole
            return json.loads(line[:cut] + b"}")
    return json.loads(line)


def _check_version(version: object, path: Path) -> None:
    if not isinstance(version, int) or version > VERSION:
        raise ExperimentStateError(
            f"{path} was written by a newer hpctune (state format version {version!r}; this one "
            f"reads up to {VERSION}). Fix: upgrade hpctune to read or restore this experiment."
        )


def _replay(path: Path, after: dict[str, int], upto_seq: int | None, state: TrialState) -> None:
    """Apply the journal's lines that count on top of the base (``after``: generation ->
    the snapshot number after which its lines count) to ``state``, in order."""
    try:
        raw = read_regular_bytes(path, MAX_STATE_BYTES)
    except FileNotFoundError:
        return
    lines = raw.split(b"\n")
    complete = len(lines) - 1  # the part after the last newline is a torn line, or empty
    if lines[-1].strip():
        state.problems.append(
            f"{path}: its last line is incomplete (a write cut short); it is left out."
        )
    skip_upto = None
    for number, line in enumerate(lines[:complete], start=1):
        record = _record(line, path, number, last=number == complete, state=state)
        if record is None:
            continue
        kind = record.get("kind")
        if kind == "header":
            _check_version(record.get("version"), path)
            skip_upto = after.get(str(record.get("generation")))
            if skip_upto is None:
                return  # an older journal, from before the base's compaction: the base has it all
            continue
        seq = int(record.get("seq", 0))
        if upto_seq is not None and seq > upto_seq:
            return  # written after the driver-state the restore pairs it with
        if skip_upto is not None and seq <= skip_upto:
            continue  # the base (compacted from these lines) holds it
        if kind == "trial":
            trial = record["trial"]
            state.trials[trial["trial_id"]] = trial
            if state.escaped is not None and _ESCAPED_CONTROL.search(line):
                state.escaped.add(trial["trial_id"])
        elif kind == "run":
            state.run.update({k: record[k] for k in RUN_FIELDS if k in record})
        state.seq = max(state.seq, seq)


def _record(
    line: bytes, path: Path, number: int, last: bool, state: TrialState
) -> dict[str, Any] | None:
    """One journal line; None for a blank one and for a damaged last one (reported)."""
    if not line.strip():
        return None
    try:
        record = json.loads(line)
        if not isinstance(record, dict) or (
            record.get("kind") == "trial" and not isinstance(record["trial"].get("trial_id"), str)
        ):
            raise ValueError("not a journal record")
        return record
    except (ValueError, KeyError, AttributeError, TypeError) as exc:
        if last:  # cut short by a crash while its newline was already written: left out
            state.problems.append(f"{path}: its last line is damaged ({exc}); it is left out.")
            return None
        raise ExperimentStateError(
            f"{path} is damaged at line {number} ({exc}). Fix: move it away (`mv {path} "
            f"{path}.damaged`): the trials then come from state.json and their result logs, "
            "and a running driver writes a new journal at its next snapshot."
        ) from exc


def read_one_trial(exp: ExperimentDir, trial_id: str) -> dict[str, Any] | None:
    """One trial's record as of the last snapshot, found by its id without parsing the other
    trials (``hpctune best``); None when the snapshot does not hold it."""
    try:
        raw = read_regular_bytes(exp.state_path, MAX_STATE_BYTES)
    except FileNotFoundError:
        return None
    head = raw[: raw.find(b"\n")]
    if not head.endswith(b'"trials": [') or b'"format": "' + FORMAT.encode() not in head:
        state = read_trial_state(exp)  # an older or hand-written file: read it all
        return state.trials.get(trial_id) if state is not None else None
    base = json.loads(head + b"]}")
    _check_version(base.get("version"), exp.state_path)
    needle = b'{"trial_id": ' + json.dumps(trial_id).encode() + b", "
    found = None
    at = raw.find(b"\n" + needle)
    if at >= 0:
        line = raw[at + 1 : raw.find(b"\n", at + 1)]
        found = json.loads(line[:-1] if line.endswith(b",") else line)
    return _last_in_journal(journal_path(exp), _journal_after(base), needle) or found


def _last_in_journal(path: Path, after: dict[str, int], needle: bytes) -> dict[str, Any] | None:
    """The trial's last complete record in a journal that counts on top of the base
    (``after``, as ``_replay``); None: none."""
    try:
        raw = read_regular_bytes(path, MAX_STATE_BYTES)
    except FileNotFoundError:
        return None
    header = json.loads(raw[: raw.find(b"\n")] or b"{}")
    skip_upto = after.get(str(header.get("generation")))
    if skip_upto is None:
        return None
    end = len(raw)
    while (at := raw.rfind(b'"trial": ' + needle, 0, end)) >= 0:
        start = raw.rfind(b"\n", 0, at) + 1
        stop = raw.find(b"\n", at)
        end = start
        if stop < 0:
            continue  # a torn last line: its trial is read from the line before
        with contextlib.suppress(ValueError):
            record = json.loads(raw[start:stop])
            if int(record.get("seq", 0)) <= skip_upto:
                return None  # this line and the earlier ones: the base holds them
            return record["trial"]
    return None


#: how ``JournalWriter.append`` starts a trial's line: its snapshot number and the trial's id
_TRIAL_HEAD = re.compile(
    rb'\{"kind": "trial", "seq": (\d+), "trial": \{"trial_id": ("(?:[^"\\]|\\.)*")'
)


def changed_trial_lines(
    exp: ExperimentDir, after: dict[str, int]
) -> tuple[dict[str, bytes], list[str]] | None:
    """The journal's last line of each trial that changed on top of a base (``after``, as
    ``read_trial_state`` replays it), unparsed, by trial id in the order they first appear,
    and the problems a reader reports (a torn last line). None when a line can be judged only
    by a full read (not as ``append`` writes it, a header of a newer version): the caller then
    reads the whole state, which says what is wrong."""
    path = journal_path(exp)
    try:
        raw = read_regular_bytes(path, MAX_STATE_BYTES)
    except FileNotFoundError:
        return {}, []
    lines = raw.split(b"\n")
    complete = len(lines) - 1
    problems = []
    if lines[-1].strip():
        problems.append(f"{path}: its last line is incomplete (a write cut short); it is left out.")
    found: dict[str, bytes] = {}
    skip_upto = None
    for number, line in enumerate(lines[:complete], start=1):
        if not line.strip():
            continue
        match = _TRIAL_HEAD.match(line)
        if match is None or number == complete:
            try:
                record = json.loads(line)
            except ValueError as exc:
                if number != complete:
                    return None  # damaged in the middle: the full read names it
                problems.append(f"{path}: its last line is damaged ({exc}); it is left out.")
                continue
            if not isinstance(record, dict):
                return None
            if record.get("kind") == "header":
                if not isinstance(record.get("version"), int) or record["version"] > VERSION:
                    return None
                skip_upto = after.get(str(record.get("generation")))
                if skip_upto is None:
                    return found, problems  # an older journal: the base holds it all
                continue
            if match is None:
                if record.get("kind") == "trial":
                    return None  # written otherwise than ``append`` does: read it whole
                continue  # the run's fields: no display row
        if skip_upto is not None and int(match.group(1)) <= skip_upto:
            continue  # the base (compacted from these lines) holds it
        found[json.loads(match.group(2))] = line
    return found, problems
