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
