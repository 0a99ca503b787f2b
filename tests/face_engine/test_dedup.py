"""Duplicate search: add / search / remove / screening, in memory and on disk."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from face_engine.dedup import (
    DedupIndex,
    DuplicatePassportId,
    FaceLikeDistribution,
    InvalidPassportId,
    mated_sample,
)
from face_engine.protect import InvalidEmbedding

THRESHOLD = 0.42  # FAR 1e-4 operating point


@pytest.fixture
def faces() -> np.ndarray:
    rng = np.random.default_rng(11)
    return FaceLikeDistribution.parametric(128, rng).sample(2000, rng)


def _ids(n: int) -> list[str]:
    return [f"P{i:06d}" for i in range(n)]


@pytest.mark.parametrize("on_disk", [False, True])
def test_add_search_remove(tmp_path: Path, faces: np.ndarray, on_disk: bool) -> None:
    rng = np.random.default_rng(5)
    with DedupIndex.open(tmp_path / "idx" if on_disk else None, os.urandom(32),
                         os.urandom(32)) as index:
        index.add_many(_ids(len(faces)), faces)
        assert len(index) == len(faces) and "P000010" in index
        probe = mated_sample(faces[10], 0.6, rng)[0]
        hits = index.search(probe, THRESHOLD)
        assert hits and hits[0][0] == "P000010"
        assert hits[0][1] == pytest.approx(0.6, abs=1e-4)
        scores = [s for _, s in hits]
        assert scores == sorted(scores, reverse=True) and min(scores) >= THRESHOLD
        # brute force agrees with the index (exact search)
        raw = faces @ (probe / np.linalg.norm(probe))
        assert {f"P{i:06d}" for i in np.flatnonzero(raw >= THRESHOLD)} == {p for p, _ in hits}
        assert index.remove("P000010")
        assert not index.remove("P000010")
        assert "P000010" not in {p for p, _ in index.search(probe, THRESHOLD)}
        index.add("P000010", faces[10])  # re-enrolment after revocation
        assert index.search(probe, THRESHOLD)[0][0] == "P000010"


def test_enrolment_screening_blocks_duplicates(faces: np.ndarray) -> None:
    rng = np.random.default_rng(6)
    index = DedupIndex.open(None, os.urandom(32), os.urandom(32))
    index.add_many(_ids(100), faces[:100])
    blocked = index.enrol("NEW-1", mated_sample(faces[3], 0.55, rng)[0], THRESHOLD)
    assert not blocked.added and blocked.matches[0][0] == "P000003"
    assert "NEW-1" not in index
    fresh = index.enrol("NEW-2", mated_sample(faces[150], 0.99, rng)[0], THRESHOLD)
    assert fresh.added and "NEW-2" in index


def test_indexed_vectors_are_not_raw_embeddings(tmp_path: Path, faces: np.ndarray) -> None:
    index = DedupIndex.open(tmp_path, os.urandom(32), os.urandom(32))
    index.add_many(_ids(50), faces[:50])
    stored = index._faiss.reconstruct_n(0, 50)  # what the in-memory index holds
    assert np.abs(np.sum(stored * faces[:50], axis=1)).max() < 0.5
    index.compact()
    blob = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.suffix == ".bin")
    assert faces[0].astype("<f4").tobytes()[:16] not in blob
    assert stored[0].astype("<f4").tobytes()[:16] not in blob
    assert b"P000001" not in blob  # passport ids are encrypted too
    index.close()


def test_bad_input(faces: np.ndarray) -> None:
    index = DedupIndex.open(None, os.urandom(32), os.urandom(32))
    index.add("A", faces[0])
    with pytest.raises(DuplicatePassportId):
        index.add("A", faces[1])
    with pytest.raises(InvalidPassportId):
        index.add("", faces[1])
    with pytest.raises(InvalidEmbedding):
        index.add("B", np.zeros(128))
    with pytest.raises(InvalidEmbedding):
        index.search(np.ones(7), THRESHOLD)


def test_memory_index_compacts_dead_rows(faces: np.ndarray) -> None:
    index = DedupIndex.open(None, os.urandom(32), os.urandom(32))
    index.add_many(_ids(2000), faces)
    for pid in _ids(1500):
        index.remove(pid)
    assert index._faiss.ntotal < 2000 and len(index) == 500
    assert index.search(faces[1999], 0.99)[0][0] == "P001999"


def test_concurrent_enrolments_of_one_person_admit_one(faces: np.ndarray) -> None:
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(9)
    index = DedupIndex.open(None, os.urandom(32), os.urandom(32))
    index.add_many(_ids(500), faces[:500])
    person = faces[1500]  # not enrolled yet
    # photos at 0.9 to the person are at ~0.81 to each other: all duplicates of one another
    photos = mated_sample(np.repeat(person[None, :], 16, axis=0), 0.9, rng)
    with ThreadPoolExecutor(max_workers=8) as pool:
        decisions = list(pool.map(lambda k: index.enrol(f"NEW-{k}", photos[k], THRESHOLD),
                                  range(16)))
    assert sum(d.added for d in decisions) == 1
    assert len(index) == 501
