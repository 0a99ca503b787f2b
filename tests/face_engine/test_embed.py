"""SFace embedder: in-memory batchable graph, single-pass and flip-averaged embeddings."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from insightface.model_zoo import get_model

from face_engine.embed import (
    ALIGNED_SIZE,
    EMBEDDING_DIM,
    SPINNING_CONFIG_KEY,
    SFaceEmbedder,
    align_face,
    batchable_model_bytes,
    l2_normalise,
)
from face_engine.engine import FaceEngine
from face_engine.errors import ModelError
from face_engine.models import RECOGNIZER_FILE, ModelPaths


@pytest.fixture(scope="module")
def sface_path(model_paths: ModelPaths) -> Path:
    return model_paths.recognizer


@pytest.fixture(scope="module")
def crops(engine: FaceEngine, astronaut_bgr: np.ndarray,
          stranger_bytes: bytes) -> list[np.ndarray]:
    # Two people from installed packages (no ../shared needed), each also smaller and darker.
    stranger = cv2.imdecode(np.frombuffer(stranger_bytes, np.uint8), cv2.IMREAD_COLOR)
    assert stranger is not None
    out = []
    for image in (astronaut_bgr, stranger):
        for variant in (image, cv2.resize(image, None, fx=0.8, fy=0.8),
                        cv2.convertScaleAbs(image, alpha=0.8)):
            out.append(engine.analyze_image(variant).aligned)
    return out


@pytest.fixture(scope="module")
def single(sface_path: Path) -> SFaceEmbedder:
    return SFaceEmbedder(sface_path, flip_average=False)


@pytest.fixture(scope="module")
def flipped(sface_path: Path) -> SFaceEmbedder:
    return SFaceEmbedder(sface_path)


def test_batchable_graph_matches_the_model_file(sface_path: Path) -> None:
    original = ort.InferenceSession(str(sface_path), providers=["CPUExecutionProvider"])
    assert original.get_inputs()[0].shape[0] == 1  # the shipped graph: batch fixed at 1
    batched = ort.InferenceSession(batchable_model_bytes(sface_path.read_bytes()),
                                   providers=["CPUExecutionProvider"])
    assert isinstance(batched.get_inputs()[0].shape[0], str)
    x = np.random.default_rng(3).uniform(0, 255, (3, 3, 112, 112)).astype(np.float32)
    name = original.get_inputs()[0].name
    one_by_one = np.concatenate([original.run(None, {name: x[i: i + 1]})[0] for i in range(3)])
    together = batched.run(None, {name: x})[0]
    assert together.shape == (3, EMBEDDING_DIM)
    np.testing.assert_allclose(together, one_by_one, rtol=0, atol=1e-4 * np.abs(one_by_one).max())


def test_single_pass_preprocessing_unchanged(single: SFaceEmbedder, sface_path: Path,
                                             crops: list[np.ndarray]) -> None:
    # insightface's ArcFaceONNX on the unmodified file is what calibrations before the
    # flip-averaged embedding used; the single-pass path must reproduce it.
    reference = get_model(str(sface_path), providers=["CPUExecutionProvider"])
    for crop in crops:
        expected = l2_normalise(reference.get_feat(crop))
        assert float(np.dot(single.embed_aligned(crop), expected)) > 1 - 1e-5


def test_flip_average_is_the_mean_of_crop_and_mirror(single: SFaceEmbedder,
                                                     flipped: SFaceEmbedder,
                                                     crops: list[np.ndarray]) -> None:
    for crop in crops:
        mirror = np.ascontiguousarray(crop[:, ::-1])
        expected = l2_normalise(single.embed_aligned(crop) + single.embed_aligned(mirror))
        got = flipped.embed_aligned(crop)
        assert got.shape == (EMBEDDING_DIM,) and got.dtype == np.float32
        assert abs(float(np.linalg.norm(got)) - 1.0) < 1e-5
        assert float(np.dot(got, expected)) > 1 - 1e-5
        # the mirror image of a face has the same flip-averaged embedding...
        assert float(np.dot(flipped.embed_aligned(mirror), got)) > 1 - 1e-5
        # ...which the single-pass embedding does not have (so the test above can fail)
        assert float(np.dot(single.embed_aligned(mirror), single.embed_aligned(crop))) < 0.9999


def test_embed_batch_equals_one_at_a_time(single: SFaceEmbedder, flipped: SFaceEmbedder,
                                          crops: list[np.ndarray]) -> None:
    for embedder in (single, flipped):
        batch = embedder.embed_batch(crops)
        assert batch.shape == (len(crops), EMBEDDING_DIM)
        for row, crop in zip(batch, crops, strict=True):
            assert float(np.dot(row, embedder.embed_aligned(crop))) > 1 - 1e-5
    assert flipped.embed_batch([]).shape == (0, EMBEDDING_DIM)


def test_both_embeddings_from_one_run(single: SFaceEmbedder, flipped: SFaceEmbedder,
                                      crops: list[np.ndarray]) -> None:
    for crop in crops:
        averaged, alone = flipped.embed_aligned_both(crop)
        assert float(np.dot(averaged, flipped.embed_aligned(crop))) > 1 - 1e-5
        assert float(np.dot(alone, single.embed_aligned(crop))) > 1 - 1e-5
        assert float(np.dot(flipped.embed_aligned_single(crop), alone)) > 1 - 1e-5
        assert float(np.dot(averaged, alone)) < 0.9999  # two different embeddings
        same, same2 = single.embed_aligned_both(crop)
        assert float(np.dot(same, same2)) > 1 - 1e-6
    with pytest.raises(ValueError, match="aligned crop"):
        flipped.embed_aligned_both(np.zeros((ALIGNED_SIZE, 1, 3), np.uint8))
    with pytest.raises(ValueError, match="aligned crop"):
        flipped.embed_aligned_single(np.zeros((ALIGNED_SIZE, 1, 3), np.uint8))


def test_engine_uses_flip_average(engine: FaceEngine, flipped: SFaceEmbedder,
                                  astronaut_bgr: np.ndarray) -> None:
    analysis = engine.analyze_image(astronaut_bgr)
    got = engine.embed_face(analysis, require_quality=False)
    assert float(np.dot(got, flipped.embed_aligned(analysis.aligned))) > 1 - 1e-5


def test_bad_crop_shape(flipped: SFaceEmbedder, astronaut_bgr: np.ndarray) -> None:
    with pytest.raises(ValueError, match="aligned crop"):
        flipped.embed_aligned(np.zeros((ALIGNED_SIZE, ALIGNED_SIZE - 1, 3), np.uint8))
    kps = np.array([[38.3, 51.7], [73.5, 51.5], [56.0, 71.7], [41.5, 92.4], [70.7, 92.2]],
                   dtype=np.float32)
    assert align_face(astronaut_bgr, kps).shape == (ALIGNED_SIZE, ALIGNED_SIZE, 3)


def test_altered_model_is_refused(sface_path: Path, tmp_path: Path) -> None:
    data = bytearray(sface_path.read_bytes())
    data[len(data) // 2] ^= 0x01
    altered = tmp_path / RECOGNIZER_FILE
    altered.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="SHA-256"):
        SFaceEmbedder(altered)


def test_not_a_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError):
        batchable_model_bytes(b"\x00not an onnx graph" * 10)
    garbage = tmp_path / "other.onnx"
    garbage.write_bytes(b"\x08\x07garbage")
    with pytest.raises(ModelError):
        SFaceEmbedder(garbage)


def test_pool_threads_do_not_spin(flipped: SFaceEmbedder) -> None:
    # Busy-waiting pool threads take the cores other face jobs and the ledger need
    # (docs/face.md, "Performance"); the option must reach the session itself.
    options = flipped._session.get_session_options()
    assert options.get_session_config_entry(SPINNING_CONFIG_KEY) == "0"
    assert options.intra_op_num_threads == 2
