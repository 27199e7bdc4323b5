"""The background compaction of the driver's trial state (``merge_base``): a new base from the
old base and the journal's lines, streamed, with the displays' row view carried forward.
Called by ``storage.journal_writer.JournalWriter`` (the one writer of these files).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from hpctune.errors import ExperimentStateError, UnsafeFileError
from hpctune.storage.atomic import full_storage_is_clear, replacing, write_all
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.journal import FORMAT, MAX_STATE_BYTES, RUN_FIELDS, VERSION, journal_path
from hpctune.storage.trial_rows import carry_rows

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
        size, offsets, lengths, moved = 0, array("q"), array("q"), array("q")
        with (
            full_storage_is_clear(exp.state_path),
            replacing(exp.state_path, fsync=True) as (fd, _),
        ):
            piece = [json.dumps(top, default=str)[:-1].encode() + b', "trials": [\n']
            offset, separator = len(piece[0]), b""
            for index, (record, from_journal) in enumerate(_merged_records(base, journal, latest)):
                offset += len(separator)
                offsets.append(offset)
                lengths.append(len(record))
                offset += len(record)
                if from_journal:
                    moved.append(index)
                piece += (separator, record)
                separator = b",\n"
                if len(piece) >= 2 * PIECE:
                    size += write_piece(fd, piece)
                    piece = []
            size += write_piece(fd, [*piece, b"\n]}\n"])
    if rows:
        with _open_regular(exp.state_path) as written:
            carry_rows(
                exp,
                continues,
                int(head.get("seq", 0)),
                generation,
                upto_seq,
                _WrittenLines(written, offsets, lengths),
                moved,
                offsets,
                lengths,
            )
    return size


class _WrittenLines(Sequence):
    """The records of a base just written, each read back from the file when asked for (the
    row view reads those that changed, or each once when it is built anew)."""

    def __init__(self, f: BinaryIO, offsets: array, lengths: array):
        self.f, self.offsets, self.lengths = f, offsets, lengths

    def __len__(self) -> int:
        return len(self.offsets)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return _read_at(self.f, self.offsets[index], self.lengths[index])


def _journal_index(
    journal: BinaryIO, continues: str, upto_seq: int, run: dict[str, Any], path: Path
) -> dict[bytes, int]:
    """Where each trial's latest record is in the journal (its offset and length
    as one int, a fifth of a tuple's memory at 100,000 trials), for the
    lines up to snapshot ``upto_seq``, in the order trials first appear; ``run`` is updated
    with the run lines. Only complete lines count (the driver may be appending one)."""
    header = journal.readline()
    if not header.endswith(b"\n") or str(json.loads(header).get("generation")) != continues:
        raise ExperimentStateError(f"{path} is not the journal of generation {continues}.")
    latest: dict[bytes, int] = {}
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
            latest[_trial_key(line[body:-1])] = (start + body) << _LENGTH_BITS | len(
                line
            ) - 1 - body
        elif line.strip():
            record = json.loads(line)
            if int(record.get("seq", 0)) > upto_seq:
                break
            run.update({k: record[k] for k in RUN_FIELDS if k in record})
    return latest


def _merged_records(
    base: BinaryIO, journal: BinaryIO, latest: dict[bytes, int]
) -> Iterator[tuple[bytes, bool]]:
    """The trial records of the merged base, in order, each with whether the journal gave it:
    the old base's, each replaced by its latest journal record (taken out of ``latest``), then
    the journal's new trials."""
    for line in base:
        line = line.rstrip(b"\n")
        if line == b"]}":
            break
        line = line[:-1] if line.endswith(b",") else line
        if line:
            where = latest.pop(_trial_key(line), None)
            yield (line, False) if where is None else (_read_where(journal, where), True)
    for where in latest.values():
        yield _read_where(journal, where), True


#: ``_journal_index``'s int: the offset above these bits, the length in them
_LENGTH_BITS = 40


def _read_where(f: BinaryIO, where: int) -> bytes:
    return _read_at(f, where >> _LENGTH_BITS, where & ((1 << _LENGTH_BITS) - 1))


def _read_at(f: BinaryIO, offset: int, length: int) -> bytes:
    return os.pread(f.fileno(), length, offset)


def write_piece(fd: int, parts: list[bytes]) -> int:
    """Write ``parts`` to ``fd`` as one piece; the number of bytes written."""
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
PIECE = 512


def _trial_key(line: bytes) -> bytes:
    """A trial record line's id, as its JSON text (every line starts with it)."""
    match = _TRIAL_ID.match(line)
    return match.group(1) if match else json.dumps(json.loads(line)["trial_id"]).encode()
