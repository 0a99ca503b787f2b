"""SFace embeddings: 112x112 similarity-aligned crop -> 128-d L2-normalised float32.

The embedding of a face is, by default, *flip-averaged*: the aligned crop and its
horizontal mirror go through SFace together as one batch of 2, each output is
L2-normalised, and the normalised mean is the embedding. On the LFW dev pairs this lifts
TAR at FAR 1e-3 and lowers the EER (figures in docs/face.md, section 7); the
single-crop embedding stays available (``flip_average=False``) for comparison, but its
scores are on a different scale, so it must not be mixed with references or thresholds
calibrated for the flip-averaged one.

SFace (OpenCV model zoo, Apache-2.0) ships with a batch dimension fixed at 1 and with its
weights listed as graph *inputs* as well as initializers. The model file is never
modified: its verified bytes are parsed in memory, the batch dimension of the graph's
input and output is made symbolic (SFace's only shape-dependent op is a Flatten, which
keeps the batch axis) and the weights are dropped from the input list so that
onnxruntime may treat them as constants (batch-norm folding, constant folding). The
session is built from those bytes. Outputs equal the unmodified graph's to float32
rounding (tested).

Preprocessing is that of OpenCV's ``FaceRecognizerSF`` (and of insightface's
``ArcFaceONNX``, which detects SFace's in-graph normalisation): BGR -> RGB, float32,
0..255, NCHW; the graph subtracts the mean and scales itself. Alignment is insightface's
``norm_crop`` (similarity transform of the 5 landmarks onto the ArcFace template).
onnxruntime is limited to a fixed thread count so that concurrent requests share the
cores instead of oversubscribing them, and its pool threads do not spin while they wait;
log severity 3 = errors only.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import cv2
import numpy as np

from face_engine.errors import ModelError
from face_engine.models import MODEL_SHA256

# norm_crop calls scikit-image's deprecated ``SimilarityTransform.estimate``; the result is
# unchanged, the FutureWarning on every call is noise. Targeted at that module only.
warnings.filterwarnings("ignore", category=FutureWarning, module="insightface.utils.face_align")

EMBEDDING_DIM = 128
ALIGNED_SIZE = 112
# onnxruntime's switch for busy-waiting intra-op pool threads (on by default).
SPINNING_CONFIG_KEY = "session.intra_op.allow_spinning"
# Crops per onnxruntime call in ``embed_batch`` (each crop counts twice when flip-averaged).
BATCH_CROPS = 16


def align_face(image_bgr: np.ndarray, kps: np.ndarray) -> np.ndarray:
    """112x112 BGR crop, eyes/nose/mouth moved onto the ArcFace template."""
    # insightface, onnx and onnxruntime are imported where used: together ~1.5 s at import,
    # which every `mip` command paid though most never touch a face.
    from insightface.utils.face_align import norm_crop

    crop: np.ndarray = norm_crop(image_bgr, landmark=np.asarray(kps, dtype=np.float32),
                                 image_size=ALIGNED_SIZE)
    return crop


def l2_normalise(vector: np.ndarray) -> np.ndarray:
    v = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(v))
    if not np.isfinite(norm) or norm == 0.0:
        raise ValueError("embedding has zero or non-finite norm")
    return (v / norm).astype(np.float32)


def _normalise_rows(feats: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(feats, axis=1, keepdims=True)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0.0):
        raise ValueError("embedding has zero or non-finite norm")
    out: np.ndarray = (feats / norms).astype(np.float32)
    return out


def batchable_model_bytes(model_bytes: bytes) -> bytes:
    """The SFace graph with a symbolic batch dimension and its weights as constants.

    Works on an in-memory copy; raises :class:`ModelError` if the graph is not the
    expected single-input, single-output N x 3 x 112 x 112 -> N x 128 network.
    """
    import onnx

    try:
        model = onnx.load_model_from_string(model_bytes)
    except Exception as exc:  # onnx raises DecodeError and others; all mean "not a model"
        raise ModelError(f"recognition model does not parse: {type(exc).__name__}") from exc
    graph = model.graph
    weights = {init.name for init in graph.initializer}
    data_inputs = [i for i in graph.input if i.name not in weights]
    if len(data_inputs) != 1 or len(graph.output) != 1:
        raise ModelError("recognition model must have exactly one data input and one output")
    del graph.input[:]
    graph.input.extend(data_inputs)
    for value in (graph.input[0], graph.output[0]):
        dims = value.type.tensor_type.shape.dim
        if not dims or (dims[0].HasField("dim_value") and dims[0].dim_value != 1):
            raise ModelError(f"recognition model {value.name}: unexpected batch dimension")
        dims[0].Clear()
        dims[0].dim_param = "batch"
    return model.SerializeToString()


class SFaceEmbedder:
    """onnxruntime ``InferenceSession.run`` is thread-safe, so no lock is needed here."""

    def __init__(self, model_path: Path, threads: int = 2, *, flip_average: bool = True) -> None:
        model_bytes = model_path.read_bytes()
        # The bytes parsed here are the bytes checked: no gap between verification and use.
        pinned = MODEL_SHA256.get(model_path.name)
        if pinned is not None and hashlib.sha256(model_bytes).hexdigest() != pinned:
            raise ModelError(f"{model_path.name} does not match its pinned SHA-256")
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Pool threads sleep between operators instead of spinning: on a gateway's few cores
        # shared with other face jobs, the ledger peers and the web server, a spinning
        # thread burns the core another job is waiting for (docs/face.md, "Performance").
        options.add_session_config_entry(SPINNING_CONFIG_KEY, "0")
        try:
            session = ort.InferenceSession(batchable_model_bytes(model_bytes), options,
                                           providers=["CPUExecutionProvider"])
        except ModelError:
            raise
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ModelError(f"{model_path.name} did not load: {type(exc).__name__}") from exc
        inp, out = session.get_inputs()[0], session.get_outputs()[0]
        if list(inp.shape[1:]) != [3, ALIGNED_SIZE, ALIGNED_SIZE] or out.shape[-1] != EMBEDDING_DIM:
            raise ModelError(
                f"{model_path.name}: expected 3x{ALIGNED_SIZE}x{ALIGNED_SIZE} -> "
                f"{EMBEDDING_DIM}-d, got {inp.shape} -> {out.shape}"
            )
        self._session = session
        self._input_name = inp.name
        self._output_name = out.name
        self.flip_average = flip_average

    def _features(self, crops: list[np.ndarray]) -> np.ndarray:
        """Raw SFace outputs (n, 128) of n aligned BGR crops, in one onnxruntime call."""
        blob = cv2.dnn.blobFromImages(crops, 1.0, (ALIGNED_SIZE, ALIGNED_SIZE),
                                      (0.0, 0.0, 0.0), swapRB=True, crop=False)
        feats: np.ndarray = self._session.run(
            [self._output_name], {self._input_name: np.ascontiguousarray(blob, np.float32)})[0]
        return feats

    def _embed_many(self, crops: list[np.ndarray]) -> np.ndarray:
        for crop in crops:
            if crop.shape != (ALIGNED_SIZE, ALIGNED_SIZE, 3):
                raise ValueError(f"aligned crop must be {ALIGNED_SIZE}x{ALIGNED_SIZE}x3")
        if not self.flip_average:
            return _normalise_rows(self._features(crops))
        n = len(crops)
        mirrored = [np.ascontiguousarray(c[:, ::-1]) for c in crops]
        feats = _normalise_rows(self._features(crops + mirrored))
        return _normalise_rows(feats[:n] + feats[n:])

    def embed_aligned(self, crop_bgr: np.ndarray) -> np.ndarray:
        """Embedding of one aligned crop, L2-normalised float32 of shape (128,).

        Flip-averaged: the crop and its mirror image are one batch of 2."""
        return self._embed_many([crop_bgr])[0]

    def embed_aligned_single(self, crop_bgr: np.ndarray) -> np.ndarray:
        """The single-crop embedding (no mirror): half the cost, its own calibration
        (``verify.SINGLE_CROP_CALIBRATION_PATH``); never compare it with a flip-averaged one."""
        if crop_bgr.shape != (ALIGNED_SIZE, ALIGNED_SIZE, 3):
            raise ValueError(f"aligned crop must be {ALIGNED_SIZE}x{ALIGNED_SIZE}x3")
        return _normalise_rows(self._features([crop_bgr]))[0]

    def embed_aligned_both(self, crop_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(embedding, single-crop embedding) of one crop from the one batch of 2 that the
        flip-averaged embedding runs anyway: the crop's own row is the single-crop one."""
        if not self.flip_average:
            single = self.embed_aligned_single(crop_bgr)
            return single, single
        if crop_bgr.shape != (ALIGNED_SIZE, ALIGNED_SIZE, 3):
            raise ValueError(f"aligned crop must be {ALIGNED_SIZE}x{ALIGNED_SIZE}x3")
        feats = _normalise_rows(self._features([crop_bgr, np.ascontiguousarray(crop_bgr[:, ::-1])]))
        return _normalise_rows(feats[:1] + feats[1:])[0], feats[0]

    def embed_batch(self, crops: list[np.ndarray]) -> np.ndarray:
        """(n, 128) L2-normalised embeddings of aligned crops (used by calibration)."""
        out = np.zeros((len(crops), EMBEDDING_DIM), dtype=np.float32)
        for start in range(0, len(crops), BATCH_CROPS):
            chunk = crops[start: start + BATCH_CROPS]
            out[start: start + len(chunk)] = self._embed_many(chunk)
        return out
