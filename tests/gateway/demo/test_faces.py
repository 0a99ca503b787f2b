from __future__ import annotations

import pytest

from face_engine.engine import FaceEngine
from face_engine.image_io import decode_image
from face_engine.verify import cosine, operating_point
from gateway.demo.faces import UnknownPortrait, demo_portrait, portrait_info, portrait_names


def test_portraits_decode_and_carry_provenance() -> None:
    assert portrait_names() == ("astronaut", "grace_hopper")
    for name in portrait_names():
        img = decode_image(demo_portrait(name))
        assert img.ndim == 3 and min(img.shape[:2]) >= 256
        info = portrait_info(name)
        assert "public domain" in info.licence.lower() and info.source and info.subject


def test_unknown_portrait_is_a_typed_error() -> None:
    with pytest.raises(UnknownPortrait):
        demo_portrait("lfw_someone")
    with pytest.raises(UnknownPortrait):
        portrait_info("")


def test_portraits_are_two_different_good_faces(demo_engine: FaceEngine) -> None:
    embs = []
    for name in portrait_names():
        analysis = demo_engine.analyze(demo_portrait(name))
        assert analysis.quality.passed
        embs.append(demo_engine.embed_face(analysis))
    assert cosine(embs[0], embs[1]) < operating_point("far_1e-3").threshold
