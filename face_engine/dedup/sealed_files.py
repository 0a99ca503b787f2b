"""At-rest format of the dedup index: sealed snapshot + append log.

Directory layout::

    MANIFEST            JSON, replaced atomically: format, generation, wrapped data key,
                        KEK id
    snapshot-<g>.bin    all live rows at generation g, chunked, each chunk sealed
    log-<g>.bin         rows added / removed since snapshot g, one sealed record each
    LOCK                advisory lock held by the one writer

Every sealed unit is ``len(4) || envelope`` (``face_engine.envelope`` under the index's data
key, purpose "snapshot chunk" or "log record") with the context naming the file kind,
generation and position (chunk index and count, or record sequence number), so chunks and
records cannot be reordered, dropped from the middle or moved between files undetected.
Format 1 (manifest ``"format": 1``, snapshot magic ``MIPDSNP1``), written before the
envelope module, sealed units as ``len(4) || nonce(12) || AES-256-GCM(data key, plaintext,
context)``; ``legacy=True`` reads it (``face_engine.envelope_legacy``) and the index
rewrites such a directory in format 2 as soon as it opens it.

Snapshots and the manifest are written to a temporary name, fsync'd and renamed, so a
crash leaves either the old or the new file, never half of one. The log is appended and
fsync'd per record; a crash can only tear its last record, which ``read_log`` detects and
reports (and the index truncates away).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from face_engine import envelope, envelope_legacy
from face_engine.dedup.errors import IndexCorrupt
from face_engine.protect.keyed_rotation import encode_context

SNAPSHOT_MAGIC = b"MIPDSNP2"
LEGACY_SNAPSHOT_MAGIC = b"MIPDSNP1"
SNAPSHOT_PURPOSE = "mip/dedup/snapshot-chunk"
LOG_PURPOSE = "mip/dedup/log-record"
_HEADER = struct.Struct(">8sQQII")  # magic, generation, rows, chunk rows, chunks
_LEN = struct.Struct(">I")
OP_ADD = 1
OP_REMOVE = 2
MAX_SEALED = 1 << 30


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def seal(key: envelope.Key, plaintext: bytes, purpose: str, context: bytes) -> bytes:
    body = key.seal(plaintext, purpose=purpose, context=context)
    return _LEN.pack(len(body)) + body


def _open_sealed(key: envelope.Key, body: bytes, purpose: str, context: bytes,
                 legacy: bool) -> bytes:
    """The unit's plaintext; ``envelope.EnvelopeError`` when it does not authenticate."""
    if legacy:
        return envelope_legacy.open_aes_gcm_prefixed(key.raw_bytes(), body, context)
    return key.open(body, purpose=purpose, context=context)


# --- rows <-> bytes ----------------------------------------------------------------------
def encode_rows(ids: list[str], vectors: np.ndarray) -> bytes:
    out = bytearray(struct.pack(">I", len(ids)))
    for pid in ids:
        raw = pid.encode("utf-8")
        out += struct.pack(">H", len(raw)) + raw
    out += np.ascontiguousarray(vectors, dtype="<f4").tobytes()
    return bytes(out)


def decode_rows(data: bytes, dim: int) -> tuple[list[str], np.ndarray]:
    try:
        (count,) = struct.unpack_from(">I", data, 0)
        offset, ids = 4, []
        for _ in range(count):
            (length,) = struct.unpack_from(">H", data, offset)
            ids.append(data[offset + 2: offset + 2 + length].decode("utf-8"))
            offset += 2 + length
        expected = count * dim * 4
        if len(data) - offset != expected:
            raise IndexCorrupt("sealed rows have the wrong size")
        vectors = np.frombuffer(data, dtype="<f4", count=count * dim, offset=offset)
    except (struct.error, UnicodeDecodeError) as exc:
        raise IndexCorrupt("sealed rows are malformed") from exc
    return ids, vectors.reshape(count, dim).astype(np.float32)


# --- snapshot ----------------------------------------------------------------------------
def _snapshot_aad(header: bytes, index: int) -> bytes:
    return encode_context("mip/dedup-snapshot/v1", header, index)


def write_snapshot(path: Path, key: envelope.Key, generation: int,
                   chunks: Iterator[tuple[list[str], np.ndarray]], rows: int,
                   chunk_rows: int) -> None:
    """Write ``rows`` rows delivered as chunks of at most ``chunk_rows`` rows."""
    n_chunks = (rows + chunk_rows - 1) // chunk_rows
    header = _HEADER.pack(SNAPSHOT_MAGIC, generation, rows, chunk_rows, n_chunks)
    tmp = path.with_name(path.name + ".tmp")
    written_rows = written_chunks = 0
    with open(tmp, "wb") as handle:
        handle.write(header)
        for ids, vectors in chunks:
            handle.write(seal(key, encode_rows(ids, vectors), SNAPSHOT_PURPOSE,
                              _snapshot_aad(header, written_chunks)))
            written_rows += len(ids)
            written_chunks += 1
        handle.flush()
        os.fsync(handle.fileno())
    if written_rows != rows or written_chunks != n_chunks:
        tmp.unlink()
        raise ValueError("snapshot chunks do not add up to the announced rows")
    os.replace(tmp, path)
    fsync_dir(path.parent)


def read_snapshot(path: Path, key: envelope.Key, generation: int, dim: int, *,
                  legacy: bool = False) -> Iterator[tuple[list[str], np.ndarray]]:
    with open(path, "rb") as handle:
        header = handle.read(_HEADER.size)
        if len(header) != _HEADER.size:
            raise IndexCorrupt("snapshot header is truncated")
        magic, gen, rows, _chunk_rows, n_chunks = _HEADER.unpack(header)
        if magic != (LEGACY_SNAPSHOT_MAGIC if legacy else SNAPSHOT_MAGIC) \
                or gen != generation:
            raise IndexCorrupt("snapshot header does not match the manifest")
        seen = 0
        for index in range(n_chunks):
            raw_len = handle.read(_LEN.size)
            if len(raw_len) != _LEN.size:
                raise IndexCorrupt("snapshot is truncated")
            (length,) = _LEN.unpack(raw_len)
            body = handle.read(length)
            if length > MAX_SEALED or len(body) != length:
                raise IndexCorrupt("snapshot is truncated")
            try:
                plain = _open_sealed(key, body, SNAPSHOT_PURPOSE, _snapshot_aad(header, index),
                                     legacy)
            except envelope.EnvelopeError as exc:
                raise IndexCorrupt("snapshot chunk failed authentication") from exc
            ids, vectors = decode_rows(plain, dim)
            seen += len(ids)
            yield ids, vectors
        if seen != rows or handle.read(1):
            raise IndexCorrupt("snapshot row count or length does not match its header")


# --- append log --------------------------------------------------------------------------
@dataclass(frozen=True)
class LogRecord:
    op: int  # OP_ADD (one or more rows) or OP_REMOVE
    passport_ids: list[str]
    vectors: np.ndarray | None  # (len(passport_ids), dim) for OP_ADD


@dataclass(frozen=True)
class LogReadResult:
    records: list[LogRecord]
    good_length: int  # bytes of the file holding authenticated records
    torn_bytes: int  # bytes after them that belong to a torn (crashed) last append


def log_aad(generation: int, sequence: int) -> bytes:
    return encode_context("mip/dedup-log/v1", generation, sequence)


def encode_add(passport_ids: list[str], vectors: np.ndarray) -> bytes:
    """One record adding these rows; it is applied whole or (torn) not at all."""
    return bytes([OP_ADD]) + encode_rows(passport_ids, vectors)


def encode_remove(passport_id: str) -> bytes:
    raw = passport_id.encode("utf-8")
    return struct.pack(">BH", OP_REMOVE, len(raw)) + raw


def _decode_record(plain: bytes, dim: int) -> LogRecord:
    if plain[:1] == bytes([OP_ADD]):
        ids, vectors = decode_rows(plain[1:], dim)
        return LogRecord(OP_ADD, ids, vectors)
    try:
        op, length = struct.unpack_from(">BH", plain, 0)
        pid = plain[3: 3 + length].decode("utf-8")
    except (struct.error, UnicodeDecodeError) as exc:
        raise IndexCorrupt("log record is malformed") from exc
    if op == OP_REMOVE and len(plain) == 3 + length:
        return LogRecord(op, [pid], None)
    raise IndexCorrupt("log record is malformed")


def read_log(path: Path, key: envelope.Key, generation: int, dim: int, *,
             legacy: bool = False) -> LogReadResult:
    """Authenticated records in order. A bad record that ends the file is a torn append
    (reported through ``torn_bytes``); a bad record followed by more data is corruption."""
    data = path.read_bytes() if path.exists() else b""
    records: list[LogRecord] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < _LEN.size:
            break
        (length,) = _LEN.unpack_from(data, offset)
        end = offset + _LEN.size + length
        if length > MAX_SEALED or end > len(data):
            break  # length field says the record runs past the end: torn
        body = data[offset + _LEN.size: end]
        try:
            plain = _open_sealed(key, body, LOG_PURPOSE, log_aad(generation, len(records)),
                                 legacy)
        except envelope.EnvelopeError as exc:
            if end == len(data):
                break  # the last record, e.g. a torn write the filesystem padded
            raise IndexCorrupt(f"log record {len(records)} failed authentication") from exc
        records.append(_decode_record(plain, dim))
        offset = end
    return LogReadResult(records, offset, len(data) - offset)
