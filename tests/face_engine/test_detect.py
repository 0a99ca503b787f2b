from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from face_engine.detect import SCORE_THRESHOLD
from face_engine.engine import FaceEngine
from face_engine.errors import MultipleFaces, NoFace
from face_engine.image_io import encode_png


def test_astronaut_one_face(engine: FaceEngine, astronaut_bytes: bytes) -> None:
    a = engine.analyze(astronaut_bytes)
    assert a.det_score >= SCORE_THRESHOLD
    x1, y1, x2, y2 = a.box
    assert 150 < x1 < x2 < 300 and 40 < y1 < y2 < 200
    # Landmark order expected by norm_crop: image-left eye first, nose between the eyes.
    lm = a.landmarks
    assert lm[0, 0] < lm[2, 0] < lm[1, 0]
    assert lm[3, 0] < lm[4, 0]
    assert max(lm[0, 1], lm[1, 1]) < lm[2, 1] < min(lm[3, 1], lm[4, 1])
    assert a.aligned.shape == (112, 112, 3)


def test_nonface_images_have_no_face(engine: FaceEngine, nonface_dir: Path) -> None:
    files = sorted(nonface_dir.iterdir())
    assert len(files) >= 10
    for f in files:
        with pytest.raises(NoFace):
            engine.analyze(f.read_bytes())


def test_two_faces_side_by_side(engine: FaceEngine, astronaut_bgr: np.ndarray) -> None:
    face = astronaut_bgr[20:260, 120:330]
    composite = np.hstack([face, cv2.flip(face, 1)])
    with pytest.raises(MultipleFaces) as exc:
        engine.analyze(encode_png(composite))
    assert exc.value.code == "multiple_faces"
    assert len(engine.detect_all(encode_png(composite))) == 2


def test_small_background_face_is_tolerated(engine: FaceEngine,
                                            astronaut_bgr: np.ndarray) -> None:
    # A second face at ~30 % of the subject's size (a passer-by) is not a rival subject.
    canvas = astronaut_bgr.copy()
    small = cv2.resize(astronaut_bgr[40:200, 150:300], (45, 48), interpolation=cv2.INTER_AREA)
    canvas[400:448, 420:465] = small
    assert len(engine.detect_all(encode_png(canvas))) in (1, 2)
    a = engine.analyze(encode_png(canvas))
    assert a.box[0] < 300


def test_astronaut_fixture_is_the_shared_image(astronaut_bgr: np.ndarray,
                                               shared_dir: Path) -> None:
    # The fixture's scikit-image copy stands in for ../shared/data/astronaut.png: same pixels.
    shared = cv2.imread(str(shared_dir / "data" / "astronaut.png"), cv2.IMREAD_COLOR)
    if shared is None:
        pytest.skip("../shared/data/astronaut.png is not there")
    assert np.array_equal(shared, astronaut_bgr)
