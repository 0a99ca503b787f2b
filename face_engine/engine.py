"""``FaceEngine``: the one entry point other MIP modules use.

It loads the verified models once and is safe to call from several threads at once (the
detector serialises on its own lock; onnxruntime sessions are thread-safe; everything
else is pure). Every public method takes untrusted image *bytes* and runs the input
checks of :mod:`face_engine.image_io` first; errors are the typed ones of
:mod:`face_engine.errors`. Nothing here logs images, landmarks or embeddings.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from face_engine.detect import YuNetDetector, select_single_face
from face_engine.embed import SFaceEmbedder, align_face
from face_engine.image_io import decode_image
from face_engine.models import ModelPaths, ensure_models
from face_engine.quality import DEFAULT_THRESHOLDS, Pose, QualityReport, QualityThresholds, assess
from face_engine.verify import DEFAULT_OPERATING_POINT, VerifyResult, cosine, decide

if TYPE_CHECKING:
    from insightface.app.common import Face

    from face_engine.liveness import Challenge, Frame, LivenessResult


@dataclass(frozen=True)
class FaceAnalysis:
    """One detected face: where it is, how good it is, and its aligned crop."""

    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in image pixels
    landmarks: np.ndarray = field(repr=False)  # (5, 2) float32, order as in detect.py
    det_score: float
    quality: QualityReport
    image_size: tuple[int, int]  # width, height after EXIF orientation
    aligned: np.ndarray = field(repr=False)  # 112x112x3 BGR crop the embedding is taken of

    @property
    def pose(self) -> Pose:
        return self.quality.pose

    def to_face(self) -> Face:
        """The same face as an insightface ``Face`` (bbox, kps, det_score)."""
        from insightface.app.common import Face

        return Face(bbox=np.array(self.box, dtype=np.float32), kps=self.landmarks.copy(),
                    det_score=self.det_score)

    def as_dict(self) -> dict[str, object]:
        """JSON-friendly summary (no pixels, no embedding)."""
        return {
            "box": [round(v, 1) for v in self.box],
            "det_score": round(self.det_score, 4),
            "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in self.landmarks],
            "image_size": list(self.image_size),
            "quality": self.quality.as_dict(),
        }


class FaceEngine:
    def __init__(self, model_paths: ModelPaths | None = None, *, threads: int = 2) -> None:
        paths = model_paths or ensure_models()
        self.model_paths = paths
        self._detector = YuNetDetector(paths.detector)
        self._embedder = SFaceEmbedder(paths.recognizer, threads=threads)

    # -- analysis -------------------------------------------------------------------------
    def analyze_image(self, image_bgr: np.ndarray,
                      thresholds: QualityThresholds = DEFAULT_THRESHOLDS) -> FaceAnalysis:
        """Like :meth:`analyze` for an already decoded BGR array."""
        faces = self._detector.detect(image_bgr)
        face = select_single_face(faces)
        kps = np.asarray(face.kps, dtype=np.float32)
        aligned = align_face(image_bgr, kps)
        box = tuple(float(v) for v in face.bbox)
        return FaceAnalysis(
            box=(box[0], box[1], box[2], box[3]),
            landmarks=kps,
            det_score=float(face.det_score),
            quality=assess(kps, aligned, thresholds),
            image_size=(int(image_bgr.shape[1]), int(image_bgr.shape[0])),
            aligned=aligned,
        )

    def analyze(self, image_bytes: bytes,
                thresholds: QualityThresholds = DEFAULT_THRESHOLDS) -> FaceAnalysis:
        """Decode, detect exactly one face and measure its quality (does not refuse on
        quality: inspect ``result.quality`` or call ``quality.raise_for_failure()``)."""
        return self.analyze_image(decode_image(image_bytes), thresholds)

    def detect_all(self, image_bytes: bytes) -> list[Face]:
        """Every face above the detector threshold, largest first (no single-face rule)."""
        return self._detector.detect(decode_image(image_bytes))

    # -- embeddings -----------------------------------------------------------------------
    def embed_face(self, analysis: FaceAnalysis, *, require_quality: bool = True) -> np.ndarray:
        """128-d L2-normalised float32 embedding of an analysed face."""
        if require_quality:
            analysis.quality.raise_for_failure()
        return self._embedder.embed_aligned(analysis.aligned)

    def embed_face_single_crop(self, analysis: FaceAnalysis) -> np.ndarray:
        """Single-crop embedding (no quality gate): cheaper, for comparisons among frames of
        one capture; scored against ``verify.single_crop_operating_point`` thresholds."""
        return self._embedder.embed_aligned_single(analysis.aligned)

    def embed_face_both(self, analysis: FaceAnalysis) -> tuple[np.ndarray, np.ndarray]:
        """(embedding, single-crop embedding) in one model run (no quality gate)."""
        return self._embedder.embed_aligned_both(analysis.aligned)

    def embed(self, image_bytes: bytes) -> np.ndarray:
        """Input checks, single-face detection, quality gate, then the embedding."""
        return self.embed_face(self.analyze(image_bytes))

    # -- verification ---------------------------------------------------------------------
    def verify(self, a_bytes: bytes, b_bytes: bytes,
               operating_point: str = DEFAULT_OPERATING_POINT) -> VerifyResult:
        """Do the two images show the same person at the named operating point?"""
        return decide(cosine(self.embed(a_bytes), self.embed(b_bytes)), operating_point)

    def verify_embedding(self, probe_bytes: bytes, reference: np.ndarray,
                         operating_point: str = DEFAULT_OPERATING_POINT) -> VerifyResult:
        """Compare a fresh image against a stored embedding."""
        return decide(cosine(self.embed(probe_bytes), reference), operating_point)

    # -- liveness -------------------------------------------------------------------------
    def check_liveness(self, challenge: Challenge, frames: Sequence[Frame],
                       *, now: float | None = None) -> LivenessResult:
        """Active liveness check of ``frames`` against ``challenge`` (see liveness.py)."""
        from face_engine.liveness import check

        return check(challenge, frames, engine=self, now=now)


_default_engine: FaceEngine | None = None
_default_lock = threading.Lock()


def load_default_engine() -> FaceEngine:
    """Process-wide engine, built on first use from :func:`ensure_models`."""
    global _default_engine
    with _default_lock:
        if _default_engine is None:
            _default_engine = FaceEngine()
        return _default_engine
