"""`DedupIndex.references`: the enrolled faces in the model's own space (the keyed rotation
undone), for the org's gallery in the consortium-wide private screening."""

from __future__ import annotations

import os

import numpy as np

from face_engine.dedup.index import DedupIndex


def test_references_are_the_unit_embeddings_of_the_live_passports() -> None:
    index = DedupIndex.open(None, os.urandom(32), os.urandom(32))
    assert index.references()[0] == [] and index.references()[1].shape == (0, 128)
    rng = np.random.default_rng(7)
    faces = rng.normal(size=(4, 128))
    ids = [c * 64 for c in "abcd"]
    index.add_many(ids, faces)
    index.remove(ids[1])
    got_ids, refs = index.references()
    assert got_ids == [ids[0], ids[2], ids[3]]
    expected = faces[[0, 2, 3]] / np.linalg.norm(faces[[0, 2, 3]], axis=1)[:, None]
    assert np.abs(refs - expected).max() < 1e-6
    # A second index (another key) stores other vectors but gives the same references.
    other = DedupIndex.open(None, os.urandom(32), os.urandom(32))
    other.add_many(ids, faces)
    assert np.abs(other.references()[1][[0, 2, 3]] - expected).max() < 1e-6
