"""TensorBoard's event-file format, encoded directly: TFRecords holding ``Event`` protobufs
with scalar, histogram and HParams summaries.

Why not through tensorboardX: importing any part of it imports torch when torch is installed
(about 2 s and 190 MB in the driver). The messages written here are the few fields
TensorBoard reads (field numbers from tensorboard's ``event.proto``, ``summary.proto``,
``plugins/hparams/*.proto``); ``tests/unit/test_loggers.py`` decodes them with tensorboardX.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterable, Mapping
from typing import Any

FILE_VERSION = "brain.Event:2"
_HPARAMS_TAGS = ("_hparams_/experiment", "_hparams_/session_start_info", "_hparams_/session_end_info")
_DATA_TYPE = {str: 1, bool: 2, float: 3}  # hparams DataType: STRING, BOOL, FLOAT64
_STATUS_SUCCESS, _STATUS_FAILURE = 1, 2


# -- protobuf wire format ------------------------------------------------------------------------------
def _varint(value: int) -> bytes:
    if 0 <= value < 128:  # most of them: tags, short lengths, small steps
        return _SMALL[value]
    value &= (1 << 64) - 1  # negative int64 as two's complement
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


#: the one-byte varints
_SMALL = [bytes((n,)) for n in range(128)]


def _tag(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _bytes(field: int, data: bytes) -> bytes:
    return _tag(field, 2) + _varint(len(data)) + data


def _text(field: int, text: str) -> bytes:
    return _bytes(field, text.encode())


def _double(field: int, value: float) -> bytes:
    return _tag(field, 1) + struct.pack("<d", value)


def _float(field: int, value: float) -> bytes:
    return _tag(field, 5) + struct.pack("<f", value)


def _int(field: int, value: int) -> bytes:
    return _tag(field, 0) + _varint(value)


# -- messages ------------------------------------------------------------------------------------------
def event(wall_time: float, step: int = 0, values: Iterable[bytes] = (), file_version: str = "") -> bytes:
    """An ``Event``: the file's version record, or a ``Summary`` of encoded ``values``."""
    head = _WALL_TIME + _PACK_DOUBLE(wall_time) + (_int(2, step) if step else b"")
    if file_version:
        return head + _text(3, file_version)
    summary = b"".join([part for v in values for part in (_VALUE, _varint(len(v)), v)])
    return head + _SUMMARY + _varint(len(summary)) + summary


#: the tags of the fields ``event`` writes (an Event's ``wall_time`` and ``summary``, a
#: Summary's ``value``)
_WALL_TIME, _SUMMARY, _VALUE = _tag(1, 1), _tag(5, 2), _tag(1, 2)
_PACK_DOUBLE = struct.Struct("<d").pack


def scalar(tag: str, value: float) -> bytes:
    """A ``Summary.Value`` holding a scalar (``simple_value``)."""
    head = _SCALAR_HEADS.get(tag)
    if head is None:
        head = _text(1, tag) + _SIMPLE_VALUE
        if len(_SCALAR_HEADS) < _MAX_HEADS:
            _SCALAR_HEADS[tag] = head
    return head + _PACK_FLOAT(value)


#: the bytes before a scalar's value, by tag (a run reports the same few keys again and again)
_SCALAR_HEADS: dict[str, bytes] = {}
_MAX_HEADS = 4096
_SIMPLE_VALUE = _tag(2, 5)
_PACK_FLOAT = struct.Struct("<f").pack


def histogram(tag: str, values: Any) -> bytes:
    """A ``Summary.Value`` holding a histogram of ``values`` (numbers; NaN/inf refused)."""
    import numpy as np

    array = np.asarray(values, dtype=float).ravel()
    if not np.isfinite(array).all():
        raise ValueError("the values hold NaN or infinity")
    counts, edges = np.histogram(array, bins="auto")
    histo = (_double(1, float(array.min())) + _double(2, float(array.max()))
             + _double(3, float(array.size)) + _double(4, float(array.sum()))
             + _double(5, float((array * array).sum()))
             + _bytes(6, struct.pack(f"<{len(counts)}d", *edges[1:]))
             + _bytes(7, struct.pack(f"<{len(counts)}d", *counts)))
    return _text(1, tag) + _bytes(5, histo)


def hparams(params: Mapping[str, Any], metric_tags: Iterable[str], failed: bool = False) -> list[bytes]:
    """The three ``Summary.Value``s of TensorBoard's HParams plugin (experiment, session start
    with the trial's ``params``, session end): what tensorboardX's ``hparams()`` writes."""
    infos = b"".join(_bytes(4, _text(1, k) + _int(4, _DATA_TYPE[_kind(v)])) for k, v in params.items())
    metrics = b"".join(_bytes(5, _bytes(1, _text(2, tag))) for tag in metric_tags)
    start = b"".join(_bytes(1, _text(1, k) + _bytes(2, _struct_value(v))) for k, v in params.items())
    end = _int(1, _STATUS_FAILURE if failed else _STATUS_SUCCESS)
    contents = (_bytes(2, infos + metrics), _bytes(3, start), _bytes(4, end))
    return [_text(1, tag) + _bytes(9, _bytes(1, _text(1, "hparams") + _bytes(2, content)))
            for tag, content in zip(_HPARAMS_TAGS, contents, strict=True)]


def _kind(value: Any) -> type:
    return bool if isinstance(value, bool) else str if isinstance(value, str) else float


def _struct_value(value: Any) -> bytes:
    """A ``google.protobuf.Value``: number, string or bool."""
    kind = _kind(value)
    if kind is bool:
        return _int(4, int(value))
    if kind is str:
        return _text(3, value)
    return _double(2, float(value))


# -- records ---------------------------------------------------------------------------------------------
def record(data: bytes) -> bytes:
    """One TFRecord: length, its masked CRC-32C, the data, its masked CRC-32C."""
    size = len(data)
    head = _HEADS.get(size)
    if head is None:
        header = _PACK_LENGTH(size)
        head = header + _PACK_CRC(_masked(header))
        if len(_HEADS) < _MAX_HEADS:
            _HEADS[size] = head
    return head + data + _PACK_CRC(_masked(data))


_PACK_LENGTH, _PACK_CRC = struct.Struct("<Q").pack, struct.Struct("<I").pack
#: a record's length and its CRC, by length (the events of a run have few lengths)
_HEADS: dict[int, bytes] = {}


def _masked(data: bytes) -> int:
    crc = _crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _make_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _make_table()


def _crc32c_python(data: bytes) -> int:
    crc, table = 0xFFFFFFFF, _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _make_tables() -> tuple[list[int], list[int]]:
    """CRC-32C four bytes at a time (slicing-by-4, each pair of tables merged into one of 16
    bits): with ``c`` the CRC xor the next four bytes (little-endian), the next CRC is
    ``low[c & 0xFFFF] ^ high[c >> 16]``."""
    t0 = _TABLE
    t1 = [(t0[i] >> 8) ^ t0[t0[i] & 0xFF] for i in range(256)]
    t2 = [(t1[i] >> 8) ^ t0[t1[i] & 0xFF] for i in range(256)]
    t3 = [(t2[i] >> 8) ^ t0[t2[i] & 0xFF] for i in range(256)]
    low = [t3[x & 0xFF] ^ t2[x >> 8] for x in range(1 << 16)]
    high = [t1[x & 0xFF] ^ t0[x >> 8] for x in range(1 << 16)]
    return low, high


_TABLES: list[list[int]] = []


def _crc32c_words(data: bytes) -> int:
    """``_crc32c_python`` four bytes a step (the driver encodes a record per result: a byte
    a step was a tenth of the driver's logging)."""
    if not _TABLES:
        _TABLES.extend(_make_tables())
    low, high = _TABLES
    crc, whole = 0xFFFFFFFF, len(data) & ~3
    for word in memoryview(data)[:whole].cast("I") if _LITTLE else _words(data, whole):
        crc ^= word
        crc = low[crc & 0xFFFF] ^ high[crc >> 16]
    table = _TABLE
    for byte in data[whole:]:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _words(data: bytes, whole: int) -> Iterable[int]:
    return (int.from_bytes(data[i : i + 4], "little") for i in range(0, whole, 4))


_LITTLE = sys.byteorder == "little"


try:  # the optional native package that tensorboardX uses too
    from crc32c import crc32c as _crc32c  # type: ignore[import-not-found]
except ImportError:
    _crc32c = _crc32c_words
