"""The one writer of the driver's trial state (``state.json`` + ``state.journal``; the format
and its reader: ``storage.journal``).

``JournalWriter.append`` writes the trials of one snapshot that changed; ``compact`` rewrites
the base from the driver's memory; a large base is rewritten in a background thread from the
files instead (``merge_base``), so that the driver's step never waits seconds for it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import stat
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from hpctune.errors import ExperimentStateError, UnsafeFileError
from hpctune.storage.atomic import full_storage_is_clear, replacing, write_all, write_bytes_atomic
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.journal import FORMAT, MAX_STATE_BYTES, RUN_FIELDS, VERSION, journal_path
from hpctune.storage.secure import read_regular_bytes
from hpctune.storage.trial_rows import carry_rows, remove_rows, rows_of_records, save_rows

log = logging.getLogger(__name__)

#: a compaction rewrites the base once the journal is larger than this share of it ...
COMPACT_RATIO = 1.0
#: ... and larger than this (a small experiment's journal is not worth a rewrite)
COMPACT_MIN_BYTES = 4 * 1024 * 1024
#: a base at least this large is compacted in a background thread (``merge_base``)
BACKGROUND_MIN_BYTES = 32 * 1024 * 1024


class JournalWriter:
    """The driver's one writer of ``state.json`` and ``state.journal``.

    ``append`` writes the changed trials of one snapshot; ``compact`` rewrites the base with
    every trial. ``due`` says when to compact instead of appending: at the writer's first
    snapshot (a fresh generation, and no torn line of an earlier driver stays behind), after a
    failed append, and when the journal outgrew ``COMPACT_RATIO`` of the base.
    """

    def __init__(
        self, exp: ExperimentDir, ratio: float | None = None, min_bytes: int | None = None
    ):
        ratio = COMPACT_RATIO if ratio is None else ratio
        min_bytes = COMPACT_MIN_BYTES if min_bytes is None else min_bytes
        self.exp, self.ratio, self.min_bytes = exp, ratio, min_bytes
        self.background_min_bytes = BACKGROUND_MIN_BYTES
        #: write the displays' row view (``storage.trial_rows``) with every base
        self.rows = True
        self.generation: str | None = None
        self.base_bytes = 0
        self.journal_bytes = 0
        #: where the last append began in the journal (a background compaction's new journal
        #: starts with the lines from there on)
        self.appended_at = 0
        self._merge: threading.Thread | None = None
        #: the background compaction's outcome: (generation, base bytes, journal offset) or error
        self._merged: tuple[str, int, int] | BaseException | None = None

    @property
    def path(self) -> Path:
        return journal_path(self.exp)

    def adopt(self, upto_seq: int) -> bool:
        """Go on with the base and journal on disk (a restored driver, which read them up to
        snapshot ``upto_seq``) instead of rewriting the base: the journal is cut after its
        last line of that snapshot (later lines, whose driver-state was never written, and a
        torn line go). False, and nothing changed, when the files are not one base and its
        own journal of this version: the first snapshot compacts then."""
        try:
            with open(self.exp.state_path, "rb") as f:
                first = f.readline(1 << 20)
                base_bytes = os.fstat(f.fileno()).st_size
            head = (
                json.loads(first.rstrip(b"\n") + b"]}") if first.endswith(b'"trials": [\n') else {}
            )
            raw = read_regular_bytes(self.path, MAX_STATE_BYTES)
            header = json.loads(raw[: raw.index(b"\n")])
        except (OSError, ValueError, ExperimentStateError, UnsafeFileError):
            return False
        generation = head.get("generation")
        if (
            head.get("format") != FORMAT
            or head.get("version") != VERSION
            or "continues" in head
            or header.get("kind") != "header"
            or header.get("generation") != generation
        ):
            return False
        end = raw.index(b"\n") + 1
        while (stop := raw.find(b"\n", end)) >= 0:
            match = _SEQ.match(raw, end)
            if match is None or int(match.group(1)) > upto_seq:
                break
            end = stop + 1
        del raw
        with full_storage_is_clear(self.path):
            fd = os.open(self.path, os.O_WRONLY | os.O_NOFOLLOW)
            try:
                os.ftruncate(fd, end)
                os.fsync(fd)
            finally:
                os.close(fd)
        self.generation, self.base_bytes = str(generation), base_bytes
        self.journal_bytes = self.appended_at = end
        return True

    def due(self) -> bool:
        """True when the next snapshot should be a compaction."""
        if self.generation is None:
            return True
        if self._merge is not None:
            return False  # a background compaction is under way: the journal goes on meanwhile
        return self.journal_bytes > max(self.min_bytes, self.ratio * self.base_bytes)

    def background(self) -> bool:
        """True when a due compaction may run in the background (``compact_in_background``):
        the base is large (a rewrite takes seconds) and the journal is whole."""
        return (
            self.generation is not None
            and self._merge is None
            and self.base_bytes >= self.background_min_bytes
        )

    def compact_in_background(self, upto_seq: int) -> None:
        """Start rewriting the base from the files (``merge_base``) with the journal's lines up
        to snapshot ``upto_seq`` (one whose ``driver-state.pkl`` is written: a restore never
        pairs a base with an older one); appends go on to the current journal meanwhile, and
        the first ``poll`` after it ended starts the new generation's journal."""
        continues, offset, generation = self.generation, self.appended_at, uuid.uuid4().hex

        def run() -> None:
            try:
                size = merge_base(self.exp, str(continues), upto_seq, generation, self.rows)
                self._merged = (generation, size, offset)
            except BaseException as exc:  # reported by poll(); the driver compacts itself then
                self._merged = exc

        self._merged = None
        self._merge = threading.Thread(target=run, name="hpctune-compaction", daemon=True)
        self._merge.start()

    def poll(self) -> None:
        """When a background compaction has ended: start its generation's journal (a header,
        then the current journal's lines it did not hold), or after an error compact at the
        next snapshot. Nothing while it runs."""
        if self._merge is None or self._merge.is_alive():
            return
        self._merge.join()
        self._merge, merged, self._merged = None, self._merged, None
        if not isinstance(merged, tuple):
            log.warning(
                "Background compaction of %s failed (%s); the next snapshot compacts.",
                self.exp.state_path,
                merged,
            )
            self.generation = None
            return
        generation, size, offset = merged
        try:
            with open(self.path, "rb") as f:  # the lines appended since it began (this writer's)
                f.seek(offset)
                tail = f.read()
        except FileNotFoundError:  # the journal was moved away: a new base starts a new one
            self.generation = None
            return
        header = json.dumps({"kind": "header", "version": VERSION, "generation": generation}) + "\n"
        data = header.encode() + tail
        self.generation = None  # until written: a failure compacts at the next snapshot
        write_bytes_atomic(self.path, data, fsync=True)
        self.generation, self.base_bytes, self.journal_bytes = generation, size, len(data)

    def finish(self) -> float:
        """At the driver's end: let a background compaction end and start its generation's
        journal (``poll``), so that no half-written base is left behind; the seconds waited."""
        if self._merge is None:
            return 0.0
        start = time.monotonic()
        self._merge.join()
        self.poll()
        return time.monotonic() - start

    def wait(self) -> None:
        """Let a background compaction end (and forget it: the caller rewrites the base)."""
        if self._merge is not None:
            self._merge.join()
            self._merge = self._merged = None

    def compact(self, seq: int, trials: list[dict[str, Any]], run: dict[str, Any]) -> None:
        """Rewrite the base with ``trials`` (all of them), then start an empty journal."""
        self.wait()  # a background compaction never replaces this newer base
        generation = uuid.uuid4().hex
        head = json.dumps(
            {
                "format": FORMAT,
                "version": VERSION,
                "generation": generation,
                "seq": seq,
                **{k: run[k] for k in RUN_FIELDS if k in run},
            },
            default=str,
        )
        lines = [json.dumps(_heavy_last(t), default=str) for t in trials]
        start = f'{head[:-1]}, "trials": [\n'
        self.generation = None  # until both files are written: the next snapshot compacts again
        size, state = 0, self.exp.state_path
        with full_storage_is_clear(state), replacing(state, fsync=True) as (fd, _):
            for at in range(0, max(1, len(lines)), _PIECE):  # not the whole text at once
                end = "\n]}\n" if at + _PIECE >= len(lines) else ",\n"
                text = (start if at == 0 else "") + ",\n".join(lines[at : at + _PIECE]) + end
                size += _write_piece(fd, [text.encode()])
        header = json.dumps({"kind": "header", "version": VERSION, "generation": generation}) + "\n"
        write_bytes_atomic(self.path, header.encode(), fsync=True)
        self.generation, self.base_bytes, self.journal_bytes = generation, size, len(header)
        if self.rows:
            _save_rows(self.exp, generation, seq, trials, lines, len(start.encode()))

    def append(self, seq: int, trials: Iterable[dict[str, Any]], run: dict[str, Any]) -> int:
        """Append the changed ``trials`` and the run's fields as snapshot ``seq`` (one write,
        fsynced); the number of bytes written. ``trials`` may be a generator: each record
        becomes its line's bytes at once (a batch of 10,000 new trials held as dicts, then
        text, then bytes was tens of MB of the driver's peak)."""
        lines = [
            json.dumps({"kind": "trial", "seq": seq, "trial": _heavy_last(t)}, default=str).encode()
            for t in trials
        ]
        lines.append(
            json.dumps(
                {"kind": "run", "seq": seq, **{k: run[k] for k in RUN_FIELDS if k in run}},
                default=str,
            ).encode()
        )
        data = b"\n".join(lines) + b"\n"
        del lines
        generation, self.generation = self.generation, None  # a failed write: compact next time
        self.appended_at = self.journal_bytes
        with full_storage_is_clear(self.path):
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)  # never created here
            try:
                write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
        self.generation = generation
        self.journal_bytes += len(data)
        return len(data)


#: how ``append`` starts a trial's or the run's line, with its snapshot number
_SEQ = re.compile(rb'\{"kind": "(?:trial|run)", "seq": (\d+)[,}]')
#: how ``append`` starts a trial's line: its snapshot number follows
_TRIAL_LINE = b'{"kind": "trial", "seq": '
_TRIAL_ID = re.compile(rb'\{"trial_id": ("(?:[^"\\]|\\.)*")')


def merge_base(
    exp: ExperimentDir, continues: str, upto_seq: int, generation: str, rows: bool = True
) -> int:
    """Write a base of ``generation`` from the files alone: the base of generation
    ``continues`` with the journal's lines up to snapshot ``upto_seq`` applied (each trial's
    record as the journal holds it, without parsing it). The base names ``continues``: until
    a journal of its own generation replaces it, the old journal's later lines count on top.
    The number of bytes written; ExperimentStateError when the files are not of ``continues``.
    ``rows``: then the displays' row view of the new base (``storage.trial_rows.carry_rows``).

    It runs beside the driver's step, and streams: the journal is read once for where each
    trial's latest line is, then the old base is copied a line at a time, each trial's line
    replaced by its journal line (read back then), the trials new in the journal last, in the
    order they first appear there. Neither file is held in memory (at 100,000 trials each is
    hundreds of MB of the driver's), and no call holds the interpreter's lock for long."""
    with _open_regular(exp.state_path) as base, _open_regular(journal_path(exp)) as journal:
        first = base.readline()
        first = first[:-1] if first.endswith(b"\n") else b""
        head = json.loads(first + b"]}") if first.endswith(b'"trials": [') else {}
        if str(head.get("generation")) != continues:
            raise ExperimentStateError(
                f"{exp.state_path} is not the base of generation {continues}."
            )
        run = {k: head[k] for k in RUN_FIELDS if k in head}
        latest = _journal_index(journal, continues, upto_seq, run, journal_path(exp))
        top = {
            "format": FORMAT,
            "version": VERSION,
            "generation": generation,
            "seq": upto_seq,
            "continues": continues,
            **run,
        }
        size, positions, moved = 0, [], set()
        with (
            full_storage_is_clear(exp.state_path),
            replacing(exp.state_path, fsync=True) as (fd, _),
        ):
            piece = [json.dumps(top, default=str)[:-1].encode() + b', "trials": [\n']
            offset, separator = len(piece[0]), b""
            for index, (record, from_journal) in enumerate(_merged_records(base, journal, latest)):
                offset += len(separator)
                positions.append((offset, len(record)))
                offset += len(record)
                if from_journal:
                    moved.add(index)
                piece += (separator, record)
                separator = b",\n"
                if len(piece) >= 2 * _PIECE:
                    size += _write_piece(fd, piece)
                    piece = []
            size += _write_piece(fd, [*piece, b"\n]}\n"])
    if rows:
        with _open_regular(exp.state_path) as written:
            carry_rows(
                exp,
                continues,
                int(head.get("seq", 0)),
                generation,
                upto_seq,
                _WrittenLines(written, positions),
                moved,
                positions,
            )
    return size


class _WrittenLines(Sequence):
    """The records of a base just written, each read back from the file when asked for (the
    row view reads those that changed, or each once when it is built anew)."""

    def __init__(self, f: BinaryIO, positions: list[tuple[int, int]]):
        self.f, self.positions = f, positions

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return _read_at(self.f, *self.positions[index])


def _journal_index(
    journal: BinaryIO, continues: str, upto_seq: int, run: dict[str, Any], path: Path
) -> dict[bytes, tuple[int, int]]:
    """Where each trial's latest record is in the journal (offset, length of its text), for the
    lines up to snapshot ``upto_seq``, in the order trials first appear; ``run`` is updated
    with the run lines. Only complete lines count (the driver may be appending one)."""
    header = journal.readline()
    if not header.endswith(b"\n") or str(json.loads(header).get("generation")) != continues:
        raise ExperimentStateError(f"{path} is not the journal of generation {continues}.")
    latest: dict[bytes, tuple[int, int]] = {}
    at = len(header)
    for line in journal:
        if not line.endswith(b"\n"):
            break  # being written
        start, at, line = at, at + len(line), line[:-1]
        if line.startswith(_TRIAL_LINE):
            end = line.index(b",", len(_TRIAL_LINE))
            if int(line[len(_TRIAL_LINE) : end]) > upto_seq:
                break
            body = line.index(b'"trial": ', end) + len(b'"trial": ')
            latest[_trial_key(line[body:-1])] = (start + body, len(line) - 1 - body)
        elif line.strip():
            record = json.loads(line)
            if int(record.get("seq", 0)) > upto_seq:
                break
            run.update({k: record[k] for k in RUN_FIELDS if k in record})
    return latest


def _merged_records(
    base: BinaryIO, journal: BinaryIO, latest: dict[bytes, tuple[int, int]]
) -> Iterator[tuple[bytes, bool]]:
    """The trial records of the merged base, in order, each with whether the journal gave it:
    the old base's, each replaced by its latest journal record, then the journal's new trials."""
    latest = dict(latest)
    for line in base:
        line = line.rstrip(b"\n")
        if line == b"]}":
            break
        line = line[:-1] if line.endswith(b",") else line
        if line:
            where = latest.pop(_trial_key(line), None)
            yield (line, False) if where is None else (_read_at(journal, *where), True)
    for where in latest.values():
        yield _read_at(journal, *where), True


def _read_at(f: BinaryIO, offset: int, length: int) -> bytes:
    return os.pread(f.fileno(), length, offset)


def _write_piece(fd: int, parts: list[bytes]) -> int:
    data = b"".join(parts)
    write_all(fd, data)
    return len(data)


@contextlib.contextmanager
def _open_regular(path: Path) -> Iterator[BinaryIO]:
    """``path`` opened for reading if it is a regular file of at most ``MAX_STATE_BYTES``, as
    ``secure.read_regular_bytes`` checks, without reading it all."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    with open(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_STATE_BYTES:
            raise UnsafeFileError(
                f"Refusing to read {path}: it is not a regular file of at most "
                f"{MAX_STATE_BYTES} bytes, as hpctune writes it. Fix: move it away."
            )
        yield f


#: trial records written at a time by ``merge_base``
_PIECE = 512


def _trial_key(line: bytes) -> bytes:
    """A trial record line's id, as its JSON text (every line starts with it)."""
    match = _TRIAL_ID.match(line)
    return match.group(1) if match else json.dumps(json.loads(line)["trial_id"]).encode()


def _heavy_last(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with ``metric_analysis`` last: a display reads each line up to it."""
    if "metric_analysis" not in record:
        return record
    record = dict(record)
    record["metric_analysis"] = record.pop("metric_analysis")
    return record


def _save_rows(
    exp: ExperimentDir,
    generation: str,
    seq: int,
    records: list[dict[str, Any]],
    lines: list[str],
    start: int,
) -> None:
    """The displays' row view of the base ``compact`` just wrote (``lines`` from ``start``)."""
    try:
        texts = [line.encode() for line in lines]
        positions = []
        for text in texts:
            positions.append((start, len(text)))
            start += len(text) + 2
        table, escaped = rows_of_records(records, texts)
    except Exception as exc:  # a record of an odd shape: the view is only a cache
        log.warning("No row view for %s (%s); displays read the whole state.", exp.state_path, exc)
        remove_rows(exp)
        return
    save_rows(exp, generation, seq, table, escaped, positions)
