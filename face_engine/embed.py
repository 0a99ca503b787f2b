"""SFace embeddings: 112x112 similarity-aligned crop -> 128-d L2-normalised float32.

SFace (OpenCV model zoo, Apache-2.0) loads through ``insightface.model_zoo.get_model`` as
an ``ArcFaceONNX``; alignment is insightface's ``norm_crop`` (similarity transform of the 5
landmarks onto the ArcFace template). onnxruntime is limited to a fixed thread count so
that concurrent requests share the cores instead of oversubscribing them, and its graph
optimisation warnings are silenced (log severity 3 = errors only).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
from insightface.model_zoo import get_model
from insightface.utils.face_align import norm_crop

from face_engine.errors import ModelError

# norm_crop calls scikit-image's deprecated ``SimilarityTransform.estimate``; the result is
# unchanged, the FutureWarning on every call is noise. Targeted at that module only.
warnings.filterwarnings("ignore", category=FutureWarning, module="insightface.utils.face_align")

EMBEDDING_DIM = 128
ALIGNED_SIZE = 112


def align_face(image_bgr: np.ndarray, kps: np.ndarray) -> np.ndarray:
    """112x112 BGR crop, eyes/nose/mouth moved onto the ArcFace template."""
    crop: np.ndarray = norm_crop(image_bgr, landmark=np.asarray(kps, dtype=np.float32),
                                 image_size=ALIGNED_SIZE)
    return crop


def l2_normalise(vector: np.ndarray) -> np.ndarray:
    v = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(v))
    if not np.isfinite(norm) or norm == 0.0:
        raise ValueError("embedding has zero or non-finite norm")
    return (v / norm).astype(np.float32)


class SFaceEmbedder:
    """onnxruntime ``InferenceSession.run`` is thread-safe, so no lock is needed here."""

    def __init__(self, model_path: Path, threads: int = 2) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        model = get_model(str(model_path), providers=["CPUExecutionProvider"],
                          sess_options=options)
        if model is None or getattr(model, "taskname", None) != "recognition":
            raise ModelError(f"{model_path.name} did not load as a recognition model")
        out_dim = model.output_shape[-1]
        if out_dim != EMBEDDING_DIM or tuple(model.input_size) != (ALIGNED_SIZE, ALIGNED_SIZE):
            raise ModelError(
                f"{model_path.name}: expected {ALIGNED_SIZE}x{ALIGNED_SIZE} -> {EMBEDDING_DIM}-d, "
                f"got {model.input_size} -> {out_dim}"
            )
        self._model = model

    def embed_aligned(self, crop_bgr: np.ndarray) -> np.ndarray:
        """Embedding of one aligned crop, L2-normalised float32 of shape (128,)."""
        if crop_bgr.shape != (ALIGNED_SIZE, ALIGNED_SIZE, 3):
            raise ValueError(f"aligned crop must be {ALIGNED_SIZE}x{ALIGNED_SIZE}x3")
        feat = self._model.get_feat(crop_bgr)
        return l2_normalise(feat)

    def embed_batch(self, crops: list[np.ndarray]) -> np.ndarray:
        """(n, 128) L2-normalised embeddings of aligned crops (used by calibration)."""
        # SFace's graph has a fixed batch dimension of 1, so crops go one at a time.
        out = np.zeros((len(crops), EMBEDDING_DIM), dtype=np.float32)
        for i, crop in enumerate(crops):
            out[i] = self.embed_aligned(crop)
        return out
