"""The one writer of the driver's trial state (``state.json`` + ``state.journal``; the format
and its reader: ``storage.journal``).

``JournalWriter.append`` writes the trials of one snapshot that changed; ``compact`` rewrites
the base from the driver's memory; a large base is rewritten in a background thread from the
files instead (``merge_base``), so that the driver's step never waits seconds for it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hpctune.errors import ExperimentStateError, UnsafeFileError
from hpctune.storage.atomic import full_storage_is_clear, replacing, write_bytes_atomic
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.journal import FORMAT, MAX_STATE_BYTES, RUN_FIELDS, VERSION, journal_path
from hpctune.storage.journal_merge import PIECE, merge_base, write_piece
from hpctune.storage.secure import read_regular_bytes
from hpctune.storage.trial_rows import RowTable, remove_rows, save_rows

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
            old = open(self.path, "rb")  # noqa: SIM115 (closed below) the lines appended since it began
        except FileNotFoundError:  # the journal was moved away: a new base starts a new one
            self.generation = None
            return
        header = json.dumps({"kind": "header", "version": VERSION, "generation": generation}) + "\n"
        self.generation = None  # until written: a failure compacts at the next snapshot
        with old, full_storage_is_clear(self.path), replacing(self.path, fsync=True) as (fd, _):
            old.seek(offset)
            written = write_piece(fd, [header.encode()])
            while chunk := old.read(_COPY_CHUNK):  # not the whole tail at once (tens of MB)
                written += write_piece(fd, [chunk])
        self.generation, self.base_bytes, self.journal_bytes = generation, size, written

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

    def compact(self, seq: int, trials: Iterable[dict[str, Any]], run: dict[str, Any]) -> None:
        """Rewrite the base with ``trials`` (all of them), then start an empty journal.
        ``trials`` may be a generator: each record becomes its line and its row of the view
        (``trial_rows.RowTable``) at once, and ``PIECE`` lines are written at a time, so that
        neither every record nor every line is held at once (at 20,000 trials they were 90 MB
        of the driver's peak, and more with the view's columns as lists)."""
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
        self.generation = None  # until both files are written: the next snapshot compacts again
        state, table = self.exp.state_path, RowTable() if self.rows else None
        with full_storage_is_clear(state), replacing(state, fsync=True) as (fd, _):
            piece = [f'{head[:-1]}, "trials": [\n'.encode()]
            size, offset, separator = 0, len(piece[0]), b""
            for record in trials:
                line = _encode(_heavy_last(record)).encode()
                offset += len(separator)
                if table is not None:
                    table = _add_row(table, record, line, offset, state)
                piece += (separator, line)
                offset += len(line)
                separator = b",\n"
                if len(piece) >= 2 * PIECE:  # not the whole text at once
                    size += write_piece(fd, piece)
                    piece = []
            size += write_piece(fd, [*piece, b"\n]}\n"])
        header = json.dumps({"kind": "header", "version": VERSION, "generation": generation}) + "\n"
        write_bytes_atomic(self.path, header.encode(), fsync=True)
        self.generation, self.base_bytes, self.journal_bytes = generation, size, len(header)
        if table is not None:
            save_rows(self.exp, generation, seq, table)
        elif self.rows:
            remove_rows(self.exp)

    def append(self, seq: int, trials: Iterable[dict[str, Any]], run: dict[str, Any]) -> int:
        """Append the changed ``trials`` and the run's fields as snapshot ``seq`` (fsynced);
        the number of bytes written. ``trials`` may be a generator: each record becomes its
        line's bytes at once, written ``PIECE`` lines at a time (a batch of 10,000 new trials
        held as dicts, then text, then bytes was tens of MB of the driver's peak). A crash
        half-way leaves lines of a snapshot whose ``driver-state.pkl`` was never written, as a
        torn single write did: a restore reads up to the last snapshot written
        (``adopt``), and a failed append rewrites the base at the next snapshot."""
        generation, self.generation = self.generation, None  # a failed write: compact next time
        self.appended_at = self.journal_bytes
        written = 0
        with full_storage_is_clear(self.path):
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)  # never created here
            try:
                piece: list[bytes] = []
                for t in trials:
                    line = {"kind": "trial", "seq": seq, "trial": _heavy_last(t)}
                    piece += (_encode(line).encode(), b"\n")
                    if len(piece) >= 2 * PIECE:
                        written += write_piece(fd, piece)
                        piece = []
                run_line = {
                    "kind": "run",
                    "seq": seq,
                    **{k: run[k] for k in RUN_FIELDS if k in run},
                }
                written += write_piece(
                    fd, [*piece, json.dumps(run_line, default=str).encode(), b"\n"]
                )
                os.fsync(fd)
            finally:
                os.close(fd)
        self.generation = generation
        self.journal_bytes += written
        return written


#: ``json.dumps(value, default=str)`` without a new encoder per trial record
_encode = json.JSONEncoder(default=str).encode
#: bytes of the old journal ``poll`` copies at a time
_COPY_CHUNK = 1 << 20
#: how ``append`` starts a trial's or the run's line, with its snapshot number
_SEQ = re.compile(rb'\{"kind": "(?:trial|run)", "seq": (\d+)[,}]')


def _heavy_last(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with ``metric_analysis`` last: a display reads each line up to it."""
    if "metric_analysis" not in record:
        return record
    record = dict(record)
    record["metric_analysis"] = record.pop("metric_analysis")
    return record


def _add_row(
    table: RowTable, record: dict[str, Any], line: bytes, offset: int, state: Path
) -> RowTable | None:
    """``table`` with the row of ``record`` added; None (no view) for a record of an odd shape:
    the view is only a cache, and the base is written all the same."""
    try:
        table.add(record, line, offset)
    except Exception as exc:
        log.warning("No row view for %s (%s); displays read the whole state.", state, exc)
        return None
    return table
