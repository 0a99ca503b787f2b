"""Dedup index at rest: encrypted round trip, compaction, wrong key, crash safety."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from face_engine.dedup import DedupIndex, FaceLikeDistribution, IndexCorrupt, IndexLocked
from face_engine.protect import WrongKey


@pytest.fixture
def keys() -> tuple[bytes, bytes]:
    return os.urandom(32), os.urandom(32)


@pytest.fixture
def faces() -> np.ndarray:
    rng = np.random.default_rng(21)
    return FaceLikeDistribution.parametric(128, rng).sample(300, rng)


def _fill(directory: Path, keys: tuple[bytes, bytes], faces: np.ndarray) -> None:
    with DedupIndex.open(directory, *keys, compact_every=10_000) as index:
        index.add_many([f"S{i}" for i in range(200)], faces[:200])
        index.compact()  # rows 0..199 in the snapshot
        for i in range(200, 300):
            index.add(f"L{i}", faces[i])  # rows 200..299 in the log
        index.remove("S5")
        index.remove("L250")


def test_round_trip_through_snapshot_and_log(tmp_path: Path, keys: tuple[bytes, bytes],
                                             faces: np.ndarray) -> None:
    _fill(tmp_path, keys, faces)
    with DedupIndex.open(tmp_path, *keys) as index:
        assert index.recovery.torn_bytes == 0 and index.recovery.replayed_records == 102
        assert len(index) == 298 and "S5" not in index and "L250" not in index
        assert index.search(faces[7], 0.999)[0][0] == "S7"
        assert index.search(faces[260], 0.999)[0][0] == "L260"
        assert not index.search(faces[5], 0.999)
        index.compact()
    with DedupIndex.open(tmp_path, *keys) as index:
        assert len(index) == 298 and index.recovery.replayed_records == 0
        assert index.search(faces[299], 0.999)[0][0] == "L299"
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["LOCK", "MANIFEST", "log-3.bin", "snapshot-3.bin"]


def test_wrong_key_is_refused(tmp_path: Path, keys: tuple[bytes, bytes],
                              faces: np.ndarray) -> None:
    _fill(tmp_path, keys, faces)
    with pytest.raises(WrongKey):
        DedupIndex.open(tmp_path, os.urandom(32), keys[1])


def test_second_writer_is_refused(tmp_path: Path, keys: tuple[bytes, bytes]) -> None:
    with DedupIndex.open(tmp_path, *keys), pytest.raises(IndexLocked):
        DedupIndex.open(tmp_path, *keys)


def _log(directory: Path) -> Path:
    return next(directory.glob("log-*.bin"))


@pytest.mark.parametrize("cut", [1, 7, 20])  # the last record (a removal) is ~40 B
def test_torn_last_append_is_dropped_and_reported(tmp_path: Path, keys: tuple[bytes, bytes],
                                                  faces: np.ndarray, cut: int) -> None:
    _fill(tmp_path, keys, faces)
    log = _log(tmp_path)
    log.write_bytes(log.read_bytes()[:-cut])  # crash in the middle of the last append
    with DedupIndex.open(tmp_path, *keys) as index:
        assert index.recovery.torn_bytes > 0 and index.recovery.replayed_records == 101
        # the last record (removal of L250) is lost, everything before it is intact
        assert "L250" in index and "S5" not in index and len(index) == 299
        index.add("AFTER", faces[0])  # appends after the truncated tail
    with DedupIndex.open(tmp_path, *keys) as index:
        assert index.recovery.torn_bytes == 0 and "AFTER" in index


def test_longer_tear_loses_only_the_tail(tmp_path: Path, keys: tuple[bytes, bytes],
                                         faces: np.ndarray) -> None:
    _fill(tmp_path, keys, faces)
    log = _log(tmp_path)
    log.write_bytes(log.read_bytes()[:-600])  # both removals and part of the last add
    with DedupIndex.open(tmp_path, *keys) as index:
        assert index.recovery.replayed_records == 99
        assert "L298" in index and "L299" not in index and "S5" in index


def test_garbage_tail_is_dropped(tmp_path: Path, keys: tuple[bytes, bytes],
                                 faces: np.ndarray) -> None:
    _fill(tmp_path, keys, faces)
    with open(_log(tmp_path), "ab") as handle:
        handle.write(b"\x00\x00\x02\x20" + b"\x00" * 544)  # zero-filled torn block
    with DedupIndex.open(tmp_path, *keys) as index:
        assert index.recovery.torn_bytes == 548 and len(index) == 298


def test_damage_inside_the_log_is_reported(tmp_path: Path, keys: tuple[bytes, bytes],
                                           faces: np.ndarray) -> None:
    _fill(tmp_path, keys, faces)
    log = _log(tmp_path)
    data = bytearray(log.read_bytes())
    data[40] ^= 0xFF  # inside the first record, 101 records follow
    log.write_bytes(bytes(data))
    with pytest.raises(IndexCorrupt):
        DedupIndex.open(tmp_path, *keys)


def test_damaged_or_truncated_snapshot_is_reported(tmp_path: Path, keys: tuple[bytes, bytes],
                                                   faces: np.ndarray) -> None:
    _fill(tmp_path, keys, faces)
    snap = next(tmp_path.glob("snapshot-*.bin"))
    good = snap.read_bytes()
    snap.write_bytes(good[:-10])
    with pytest.raises(IndexCorrupt):
        DedupIndex.open(tmp_path, *keys)
    damaged = bytearray(good)
    damaged[200] ^= 0x01
    snap.write_bytes(bytes(damaged))
    with pytest.raises(IndexCorrupt):
        DedupIndex.open(tmp_path, *keys)


def test_crash_during_compaction_keeps_the_old_generation(
        tmp_path: Path, keys: tuple[bytes, bytes], faces: np.ndarray) -> None:
    _fill(tmp_path, keys, faces)
    generation = next(tmp_path.glob("snapshot-*.bin")).name
    # a compaction that died before switching the manifest leaves these behind
    (tmp_path / "snapshot-99.bin.tmp").write_bytes(b"partial")
    (tmp_path / "snapshot-99.bin").write_bytes(b"unreferenced")
    with DedupIndex.open(tmp_path, *keys) as index:
        assert len(index) == 298
    assert not (tmp_path / "snapshot-99.bin").exists()
    assert (tmp_path / generation).exists()


def test_torn_batch_record_is_all_or_nothing(tmp_path: Path, keys: tuple[bytes, bytes],
                                             faces: np.ndarray) -> None:
    with DedupIndex.open(tmp_path, *keys) as index:
        index.add("FIRST", faces[0])
        index.add_many([f"B{i}" for i in range(1, 300)], faces[1:])
    log = _log(tmp_path)
    log.write_bytes(log.read_bytes()[:-5])
    with DedupIndex.open(tmp_path, *keys) as index:
        assert index.recovery.replayed_records == 1 and index.recovery.torn_bytes > 0
        assert len(index) == 1 and "FIRST" in index


def test_kek_rotation_rewrites_only_the_manifest(tmp_path: Path, keys: tuple[bytes, bytes],
                                                 faces: np.ndarray) -> None:
    _fill(tmp_path, keys, faces)
    snapshot = next(tmp_path.glob("snapshot-*.bin")).read_bytes()
    new_kek = os.urandom(32)
    with DedupIndex.open(tmp_path, *keys) as index:
        index.rewrap(new_kek)
    assert next(tmp_path.glob("snapshot-*.bin")).read_bytes() == snapshot
    with pytest.raises(WrongKey):
        DedupIndex.open(tmp_path, *keys)
    with DedupIndex.open(tmp_path, new_kek, keys[1]) as index:
        assert len(index) == 298


# --- format 1 (before face_engine.envelope): read once, rewritten as format 2 -------------
def _write_format_1(directory: Path, keys: tuple[bytes, bytes], faces: np.ndarray) -> None:
    """A directory exactly as the format-1 code wrote it: 200 rows in two snapshot chunks,
    then a log adding 100 and removing one, every unit ``len || nonce || AES-256-GCM``."""
    import base64
    import hmac
    import json
    import struct
    from hashlib import sha256

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from face_engine.dedup import sealed_files as sf
    from face_engine.protect.keyed_rotation import encode_context

    kek, transform = keys
    with DedupIndex.open(None, kek, transform) as memory:
        vectors = memory._to_domain(faces)
    data_key = AESGCM.generate_key(256)
    aead = AESGCM(data_key)

    def unit(plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        body = nonce + aead.encrypt(nonce, plaintext, aad)
        return struct.pack(">I", len(body)) + body

    directory.mkdir(exist_ok=True)
    header = struct.Struct(">8sQQII").pack(b"MIPDSNP1", 1, 200, 100, 2)
    snapshot = header + b"".join(
        unit(sf.encode_rows([f"S{i}" for i in range(k * 100, k * 100 + 100)],
                            vectors[k * 100: k * 100 + 100]),
             encode_context("mip/dedup-snapshot/v1", header, k)) for k in range(2))
    (directory / "snapshot-1.bin").write_bytes(snapshot)
    records = [sf.encode_add([f"L{i}" for i in range(200, 300)], vectors[200:300]),
               sf.encode_remove("S5")]
    (directory / "log-1.bin").write_bytes(b"".join(
        unit(record, encode_context("mip/dedup-log/v1", 1, seq))
        for seq, record in enumerate(records)))
    nonce = os.urandom(12)
    wrapped = nonce + AESGCM(kek).encrypt(nonce, data_key,
                                          encode_context("mip/dedup-data-key/v1", 128))
    (directory / "MANIFEST").write_text(json.dumps({
        "format": 1, "dim": 128, "generation": 1,
        "kek_id": hmac.new(kek, b"mip/kek-id/v1", sha256).hexdigest()[:16],
        "wrapped_key": base64.b64encode(wrapped).decode()}))


def test_format_1_directory_is_read_and_migrated(tmp_path: Path, keys: tuple[bytes, bytes],
                                                 faces: np.ndarray) -> None:
    import json

    _write_format_1(tmp_path, keys, faces)
    with DedupIndex.open(tmp_path, *keys) as index:
        assert index.recovery.replayed_records == 2
        assert len(index) == 299 and "S5" not in index
        assert index.search(faces[7], 0.999)[0][0] == "S7"
        assert index.search(faces[260], 0.999)[0][0] == "L260"
        index.add("new", faces[5])
    manifest = json.loads((tmp_path / "MANIFEST").read_text())
    assert manifest["format"] == 2 and manifest["generation"] == 2
    assert (tmp_path / "snapshot-2.bin").read_bytes()[:8] == b"MIPDSNP2"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "LOCK", "MANIFEST", "log-2.bin", "snapshot-2.bin"]
    with DedupIndex.open(tmp_path, *keys) as index:
        assert len(index) == 300 and index.recovery.replayed_records == 1
        assert index.search(faces[5], 0.999)[0][0] == "new"


def test_format_1_directory_wrong_key_or_damage(tmp_path: Path, keys: tuple[bytes, bytes],
                                                faces: np.ndarray) -> None:
    _write_format_1(tmp_path, keys, faces)
    with pytest.raises(WrongKey):
        DedupIndex.open(tmp_path, os.urandom(32), keys[1])
    snapshot = bytearray((tmp_path / "snapshot-1.bin").read_bytes())
    snapshot[-1] ^= 0x01
    (tmp_path / "snapshot-1.bin").write_bytes(bytes(snapshot))
    with pytest.raises(IndexCorrupt):
        DedupIndex.open(tmp_path, *keys)
    assert (tmp_path / "MANIFEST").read_text().count('"format": 1') == 1  # not migrated


def test_new_directory_seals_envelopes(tmp_path: Path, keys: tuple[bytes, bytes],
                                       faces: np.ndarray) -> None:
    import base64
    import json

    from face_engine import envelope

    _fill(tmp_path, keys, faces)
    manifest = json.loads((tmp_path / "MANIFEST").read_text())
    assert manifest["format"] == 2
    assert envelope.is_envelope(base64.b64decode(manifest["wrapped_key"]))
    log = (tmp_path / f"log-{manifest['generation']}.bin").read_bytes()
    assert envelope.is_envelope(log[4:])
