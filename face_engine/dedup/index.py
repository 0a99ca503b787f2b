"""Duplicate search over every enrolled passport ("one person, one passport").

Vectors live in a dedicated dedup domain: each embedding is multiplied by one secret
global orthogonal matrix G (derived from the transform key, label "dedup-domain"), so
what is indexed, held in memory and written to disk is never the raw embedding, and the
protected references of ``face_engine.protect`` (per-holder, per-institution rotations)
cannot be matched against it. Inner products are preserved, so the calibrated cosine
thresholds apply unchanged.

Search is exact: a faiss ``IndexFlatIP`` range search (all rows with score >= threshold).
Measured at 1M rows on 2 cores it is about 23 ms p50 (scripts/bench_face.py), so no
approximate index (and no recall loss) is needed at the target scale.

Removal marks the row dead (its slot no longer maps to a passport) and the row is
physically dropped at the next compaction, so revocation is O(1) and never rewrites 1M rows.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hmac
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import faiss
import numpy as np

from face_engine import envelope, envelope_legacy
from face_engine.dedup import sealed_files as sf
from face_engine.dedup.errors import (
    DuplicatePassportId,
    IndexCorrupt,
    IndexLocked,
    InvalidPassportId,
)
from face_engine.protect.errors import InvalidEmbedding, WrongKey
from face_engine.protect.key_inputs import as_key_deriver, as_key_wrapper
from face_engine.protect.keyed_rotation import (
    KeyDeriver,
    derive_with,
    encode_context,
    haar_orthogonal,
)

MANIFEST_FORMAT = 2
LEGACY_MANIFEST_FORMAT = 1  # before face_engine.envelope: read, then rewritten as format 2
DATA_KEY_PURPOSE = "mip/dedup/data-key"
LOG_BATCH_ROWS = 65_536
COMPACT_LOG_BYTES = 256 << 20  # replaying a longer log would slow every open
_MAX_ID_BYTES = 256


@dataclass(frozen=True)
class RecoveryReport:
    """What opening the index found at the end of the append log."""

    torn_bytes: int  # bytes of a torn last append that were discarded (0 = clean)
    replayed_records: int


@dataclass(frozen=True)
class EnrolmentDecision:
    added: bool  # False: blocked for manual review
    matches: list[tuple[str, float]] = field(default_factory=list)


def _check_passport_id(passport_id: str) -> None:
    if not isinstance(passport_id, str) or not passport_id:
        raise InvalidPassportId("passport id must be a non-empty string")
    if len(passport_id.encode("utf-8")) > _MAX_ID_BYTES:
        raise InvalidPassportId(f"passport id is longer than {_MAX_ID_BYTES} bytes")


class DedupIndex:
    """Encrypted, persistent 1:N index of enrolled passports' faces.

    Open with ``DedupIndex.open(directory, kek, transform_key)``; ``directory=None`` gives
    a memory-only index (tests, benchmarks). One writer per directory (advisory lock).
    ``kek`` and ``transform_key`` are bytes, or held elsewhere (``envelope.KeyWrapper``,
    ``KeyDeriver``: the gateway's PKCS#11 token)."""

    def __init__(self, *, kek: bytes | envelope.KeyWrapper,
                 transform_key: bytes | KeyDeriver, dim: int,
                 directory: Path | None, compact_every: int) -> None:
        self._dim = dim
        self._kek = as_key_wrapper("kek", kek)
        self._kek_id = self._kek.fingerprint
        self._domain = haar_orthogonal(
            derive_with(as_key_deriver("transform_key", transform_key), "dedup-domain", 1),
            dim)
        self._domain32 = self._domain.astype(np.float32)
        self._directory = directory
        self._compact_every = compact_every
        self._lock = threading.RLock()
        self._faiss = faiss.IndexFlatIP(dim)
        self._slot_ids: list[str | None] = []  # faiss row -> passport id (None = removed)
        self._slot_of: dict[str, int] = {}
        self._dead = 0
        self._generation = 0
        self._data_key: envelope.Key | None = None
        self._wrapped = b""  # the data key wrapped under the KEK, as the manifest holds it
        self._legacy = False  # the files on disk are format 1 (until the migration)
        self._log: IO[bytes] | None = None
        self._log_records = 0
        self._log_bytes = 0
        self._lock_handle: IO[bytes] | None = None
        self.recovery = RecoveryReport(0, 0)

    # --- opening -----------------------------------------------------------------------
    @classmethod
    def open(cls, directory: Path | str | None, kek: bytes | envelope.KeyWrapper,
             transform_key: bytes | KeyDeriver, *,
             dim: int = 128, compact_every: int = 100_000) -> DedupIndex:
        """Open (creating if absent) the index in ``directory``; wrong KEK -> ``WrongKey``,
        damaged files -> ``IndexCorrupt``; a torn last log append is dropped and reported
        in ``index.recovery``."""
        index = cls(kek=kek, transform_key=transform_key, dim=dim,
                    directory=Path(directory) if directory is not None else None,
                    compact_every=compact_every)
        if index._directory is not None:
            try:
                index._load()
            except BaseException:
                index.close()
                raise
        return index

    def _manifest_path(self) -> Path:
        assert self._directory is not None
        return self._directory / "MANIFEST"

    def _file(self, kind: str, generation: int) -> Path:
        assert self._directory is not None
        return self._directory / f"{kind}-{generation}.bin"

    def _wrap_aad(self) -> bytes:
        return encode_context("mip/dedup-data-key/v1", self._dim)

    def _load(self) -> None:
        directory = self._directory
        assert directory is not None
        directory.mkdir(parents=True, exist_ok=True)
        self._lock_handle = open(directory / "LOCK", "ab")  # held: the lock lasts while open
        try:
            fcntl.flock(self._lock_handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise IndexLocked(f"{directory} is open in another process") from exc
        manifest_path = self._manifest_path()
        if not manifest_path.exists():
            new_key = envelope.Key.generate()
            self._data_key = new_key
            self._generation = 1
            sf.write_snapshot(self._file("snapshot", 1), new_key, 1, iter(()), 0, 1)
            self._write_manifest(self._wrap(self._kek, new_key))
            self._open_log(truncate_to=0)
            return
        manifest = self._read_manifest(manifest_path)
        self._generation = int(manifest["generation"])
        data_key = self._data_key
        assert data_key is not None
        for ids, vectors in sf.read_snapshot(self._file("snapshot", self._generation),
                                             data_key, self._generation, self._dim,
                                             legacy=self._legacy):
            self._append_rows(ids, vectors)
        result = sf.read_log(self._file("log", self._generation), data_key,
                             self._generation, self._dim, legacy=self._legacy)
        for record in result.records:
            for pid in record.passport_ids:
                self._drop(pid)
            if record.op == sf.OP_ADD:
                assert record.vectors is not None
                self._append_rows(record.passport_ids, record.vectors)
        self._log_records = len(result.records)
        self._log_bytes = result.good_length
        self.recovery = RecoveryReport(result.torn_bytes, len(result.records))
        self._open_log(truncate_to=result.good_length)
        self._remove_stale_files()
        if self._legacy:
            # Migration: a new generation in format 2 (same data key, wrapped as an
            # envelope); until its manifest is written the format-1 files stay the index.
            self.compact()

    def _read_manifest(self, path: Path) -> dict[str, Any]:
        try:
            manifest = json.loads(path.read_text("utf-8"))
            ok = (isinstance(manifest, dict)
                  and manifest.get("format") in (MANIFEST_FORMAT, LEGACY_MANIFEST_FORMAT)
                  and manifest.get("dim") == self._dim
                  and isinstance(manifest.get("generation"), int))
        except (ValueError, UnicodeDecodeError) as exc:
            raise IndexCorrupt("manifest is not valid JSON") from exc
        if not ok:
            raise IndexCorrupt("manifest does not describe a compatible index")
        if not hmac.compare_digest(str(manifest.get("kek_id")), self._kek_id):
            raise WrongKey("the index was sealed under a different key-encryption key")
        try:
            wrapped = base64.b64decode(manifest["wrapped_key"], validate=True)
            if manifest["format"] == LEGACY_MANIFEST_FORMAT:
                if not isinstance(self._kek, envelope.Key):
                    # format 1 predates held keys: only its KEK's bytes open it
                    raise WrongKey("a format-1 index opens only with its KEK's bytes")
                data_key = envelope.Key(envelope_legacy.open_aes_gcm_prefixed(
                    self._kek.raw_bytes(), wrapped, self._wrap_aad()))
                wrapped = self._wrap(self._kek, data_key)  # what the next manifest holds
            else:
                data_key = self._kek.unwrap(wrapped, purpose=DATA_KEY_PURPOSE,
                                            context=self._wrap_aad())
        except (envelope.EnvelopeError, ValueError, KeyError) as exc:
            raise IndexCorrupt("index data key failed authentication") from exc
        self._data_key, self._wrapped = data_key, wrapped
        self._legacy = manifest["format"] == LEGACY_MANIFEST_FORMAT
        return manifest

    def _wrap(self, kek: envelope.KeyWrapper, data_key: envelope.Key) -> bytes:
        return kek.wrap(data_key, purpose=DATA_KEY_PURPOSE, context=self._wrap_aad())

    def _write_manifest(self, wrapped: bytes) -> None:
        self._wrapped = wrapped
        body = {"format": MANIFEST_FORMAT, "dim": self._dim, "generation": self._generation,
                "kek_id": self._kek_id, "wrapped_key": base64.b64encode(wrapped).decode()}
        sf.atomic_write(self._manifest_path(), json.dumps(body).encode("utf-8"))

    def _open_log(self, truncate_to: int) -> None:
        path = self._file("log", self._generation)
        with open(path, "ab") as handle:
            handle.truncate(truncate_to)  # drop a torn tail before appending after it
            handle.flush()
            os.fsync(handle.fileno())
        self._log = open(path, "ab")  # kept open for appends

    def _remove_stale_files(self) -> None:
        assert self._directory is not None
        keep = {f"snapshot-{self._generation}.bin", f"log-{self._generation}.bin",
                "MANIFEST", "LOCK"}
        for path in self._directory.iterdir():
            if path.name not in keep and (path.name.startswith(("snapshot-", "log-"))
                                          or path.name.endswith(".tmp")):
                path.unlink()

    # --- in-memory rows ----------------------------------------------------------------
    def _append_rows(self, ids: list[str], vectors: np.ndarray) -> None:
        if not ids:
            return
        start = len(self._slot_ids)
        self._faiss.add(np.ascontiguousarray(vectors, dtype=np.float32))
        for offset, pid in enumerate(ids):
            if pid in self._slot_of:
                raise IndexCorrupt("a passport id appears twice in the stored index")
            self._slot_of[pid] = start + offset
        self._slot_ids.extend(ids)

    def _drop(self, passport_id: str) -> bool:
        slot = self._slot_of.pop(passport_id, None)
        if slot is None:
            return False
        self._slot_ids[slot] = None
        self._dead += 1
        return True

    def _to_domain(self, embeddings: np.ndarray) -> np.ndarray:
        batch = np.asarray(embeddings)
        if batch.ndim != 2 or batch.shape[1] != self._dim:
            raise InvalidEmbedding(f"embeddings must have shape (n, {self._dim})")
        if not np.issubdtype(batch.dtype, np.number) or not np.all(np.isfinite(batch)):
            raise InvalidEmbedding("embeddings must be finite numbers")
        out = np.empty(batch.shape, dtype=np.float32)
        for start in range(0, len(batch), LOG_BATCH_ROWS):  # bounded temporaries
            part = batch[start: start + LOG_BATCH_ROWS]
            norms = np.sqrt(np.einsum("ij,ij->i", part, part))[:, None]
            if np.any(norms == 0):
                raise InvalidEmbedding("embedding has zero norm")
            out[start: start + len(part)] = (part / norms) @ self._domain.T
        return out

    # --- public API --------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, passport_id: object) -> bool:
        return passport_id in self._slot_of

    def add(self, passport_id: str, embedding: np.ndarray) -> None:
        self.add_many([passport_id], np.asarray(embedding)[None, :])

    def add_many(self, passport_ids: list[str], embeddings: np.ndarray) -> None:
        """Add references: one sealed log record per ``LOG_BATCH_ROWS`` rows, one fsync.
        Each record is all-or-nothing; a crash mid-batch keeps a prefix of whole records."""
        for pid in passport_ids:
            _check_passport_id(pid)
        if len(set(passport_ids)) != len(passport_ids):
            raise DuplicatePassportId("the batch names a passport id twice")
        vectors = self._to_domain(embeddings)
        if len(vectors) != len(passport_ids):
            raise ValueError("one embedding per passport id")
        with self._lock:
            clash = next((pid for pid in passport_ids if pid in self._slot_of), None)
            if clash is not None:
                raise DuplicatePassportId("passport id is already enrolled")
            self._append_log([sf.encode_add(list(passport_ids[i: i + LOG_BATCH_ROWS]),
                                            vectors[i: i + LOG_BATCH_ROWS])
                              for i in range(0, len(passport_ids), LOG_BATCH_ROWS)])
            self._append_rows(list(passport_ids), vectors)
            self._maybe_compact()

    def remove(self, passport_id: str) -> bool:
        """Revoke a passport's face; False when it was not enrolled."""
        _check_passport_id(passport_id)
        with self._lock:
            if passport_id not in self._slot_of:
                return False
            self._append_log([sf.encode_remove(passport_id)])
            self._drop(passport_id)
            self._maybe_compact()
            return True

    def references(self) -> tuple[list[str], np.ndarray]:
        """The enrolled passports' ids and their unit embeddings in the model's own space
        (the keyed rotation undone: it is orthogonal), for this org's gallery in the
        consortium-wide private screening (face_engine/dedup/private_screening.py), which
        encodes them as CKKS plaintexts in this process; they leave it never."""
        with self._lock:
            live = [(row, pid) for row, pid in enumerate(self._slot_ids) if pid is not None]
            if not live:
                return [], np.zeros((0, self._dim), dtype=np.float32)
            stored = self._faiss.reconstruct_n(0, self._faiss.ntotal)
        rows = np.asarray([row for row, _ in live])
        raw = stored[rows].astype(np.float64) @ self._domain
        return [pid for _, pid in live], raw.astype(np.float32)

    def search(self, embedding: np.ndarray, threshold: float) -> list[tuple[str, float]]:
        """Every enrolled passport whose face scores >= threshold (cosine), best first."""
        query = self._to_domain(np.asarray(embedding)[None, :])
        with self._lock:
            # faiss range search keeps scores strictly above the radius for inner product;
            # nudge it down one float step so ``>= threshold`` holds exactly.
            radius = float(np.nextafter(np.float32(threshold), np.float32(-np.inf)))
            lims, scores, rows = self._faiss.range_search(query, radius)
            hits = [(self._slot_ids[int(row)], float(score))
                    for row, score in zip(rows[lims[0]: lims[1]], scores[lims[0]: lims[1]],
                                          strict=True)]
        found = [(pid, score) for pid, score in hits if pid is not None and score >= threshold]
        return sorted(found, key=lambda hit: -hit[1])

    def enrol(self, passport_id: str, embedding: np.ndarray, threshold: float,
              cleared: frozenset[str] = frozenset()) -> EnrolmentDecision:
        """Screen a new enrolment: add it only when no enrolled face scores >= threshold
        (except the passports in ``cleared``: candidates a review found to be other people);
        otherwise leave the index unchanged and return the matches for review."""
        with self._lock:
            matches = [m for m in self.search(embedding, threshold) if m[0] not in cleared]
            if matches:
                return EnrolmentDecision(added=False, matches=matches)
            self.add(passport_id, embedding)
            return EnrolmentDecision(added=True)

    # --- persistence -------------------------------------------------------------------
    def _append_log(self, records: list[bytes]) -> None:
        if self._log is None:
            return
        data_key = self._data_key
        assert data_key is not None and not self._legacy
        blob = bytearray()
        for record in records:
            blob += sf.seal(data_key, record, sf.LOG_PURPOSE,
                            sf.log_aad(self._generation, self._log_records))
            self._log_records += 1
        self._log_bytes += len(blob)
        self._log.write(blob)
        self._log.flush()
        os.fsync(self._log.fileno())

    def _maybe_compact(self) -> None:
        if self._log is not None and (self._log_records >= self._compact_every
                                      or self._log_bytes >= COMPACT_LOG_BYTES):
            self.compact()
        elif self._log is None and self._dead > max(1024, len(self._slot_ids) // 4):
            self._rebuild_memory()

    def _live_chunks(self, chunk_rows: int) -> Iterator[tuple[list[str], np.ndarray]]:
        total = len(self._slot_ids)
        ids: list[str] = []
        parts: list[np.ndarray] = []
        for start in range(0, total, chunk_rows):
            block = self._faiss.reconstruct_n(start, min(chunk_rows, total - start))
            live = [i for i in range(len(block)) if self._slot_ids[start + i] is not None]
            ids.extend(str(self._slot_ids[start + i]) for i in live)
            parts.append(block[live])
            while len(ids) >= chunk_rows:
                stacked = np.concatenate(parts)
                yield ids[:chunk_rows], stacked[:chunk_rows]
                ids, parts = ids[chunk_rows:], [stacked[chunk_rows:]]
        if ids:
            yield ids, np.concatenate(parts)

    def _rebuild_memory(self) -> None:
        fresh = faiss.IndexFlatIP(self._dim)
        ids: list[str] = []
        for chunk_ids, vectors in self._live_chunks(65_536):
            fresh.add(vectors)
            ids.extend(chunk_ids)
        self._faiss, self._slot_ids = fresh, list(ids)
        self._slot_of = {pid: i for i, pid in enumerate(ids)}
        self._dead = 0

    def compact(self, chunk_rows: int = 65_536) -> None:
        """Write a new snapshot generation holding the live rows and start an empty log.
        The manifest switch is the commit point; a crash before it keeps the old state."""
        with self._lock:
            if self._directory is None or self._data_key is None:
                self._rebuild_memory()
                return
            generation = self._generation + 1
            sf.write_snapshot(self._file("snapshot", generation), self._data_key, generation,
                              self._live_chunks(chunk_rows), len(self._slot_of), chunk_rows)
            sf.atomic_write(self._file("log", generation), b"")
            if self._log is not None:
                self._log.close()
            self._generation = generation
            self._write_manifest(self._wrapped)
            self._legacy = False
            self._log_records = 0
            self._log_bytes = 0
            self._open_log(truncate_to=0)
            self._remove_stale_files()
            self._rebuild_memory()

    def rewrap(self, new_kek: bytes | envelope.KeyWrapper) -> None:
        """KEK rotation: re-wrap the index data key under ``new_kek`` (only the manifest is
        rewritten, atomically); reopen with ``new_kek`` afterwards."""
        wrapper = as_key_wrapper("new_kek", new_kek)
        with self._lock:
            if self._directory is None:
                return
            data_key = self._kek.unwrap(self._wrapped, purpose=DATA_KEY_PURPOSE,
                                        context=self._wrap_aad())
            self._kek = wrapper
            self._kek_id = wrapper.fingerprint
            self._write_manifest(self._wrap(self._kek, data_key))

    def close(self) -> None:
        with self._lock:
            if self._log is not None:
                self._log.close()
                self._log = None
            if self._lock_handle is not None:
                with contextlib.suppress(OSError):
                    fcntl.flock(self._lock_handle.fileno(), fcntl.LOCK_UN)
                self._lock_handle.close()
                self._lock_handle = None

    def __enter__(self) -> DedupIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
