"""YuNet face detection, adapted to insightface ``Face`` objects.

``insightface.model_zoo.get_model`` mistakes YuNet for SCRFD, so YuNet runs through
OpenCV's ``cv2.FaceDetectorYN`` and its rows are turned into ``Face(bbox, kps, det_score)``.
YuNet's five landmarks come in the order insightface's ``norm_crop`` template expects:
the eye on the image's left (the subject's right eye), the eye on the image's right, the
nose tip, the mouth corner on the image's left, the mouth corner on the image's right
(checked on the astronaut portrait: x of point 0 < x of point 1, and likewise 3 < 4).

Thresholds (measured on this project's data, see the report in docs/face.md):

* ``SCORE_THRESHOLD = 0.8``: at 0.5 YuNet fired on 3 of 22 non-face images (texture, a
  cat, coins), at 0.8 on none, while every LFW dev face (2,320 images) still had its
  subject detected above 0.8.
* A second face counts as a competing subject when its score passes the same threshold
  and its box width is at least ``SECOND_FACE_MIN_RATIO = 0.4`` of the largest. People
  in the background of a selfie or an ID photo are much smaller than the subject; a face
  of comparable size (40 % or more) means two people are presenting themselves and we
  cannot know which one is enrolling, so we refuse instead of guessing.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from insightface.app.common import Face

from face_engine.errors import MultipleFaces, NoFace

SCORE_THRESHOLD = 0.8
NMS_THRESHOLD = 0.3
SECOND_FACE_MIN_RATIO = 0.4
# Detection runs on a copy whose long side is at most this; YuNet finds faces down to
# ~20 px, and a 20 MP photo at full size would cost seconds for no gain.
MAX_DETECT_SIDE = 1024


def _create_quietly(model_path: Path, score_threshold: float) -> cv2.FaceDetectorYN:
    """Create the detector with OpenCV's log level at ERROR, then restore the caller's.

    OpenCV 5 warns "Targets are not supported by the new graph engine" on every load.
    """
    log = cv2.utils.logging
    previous = log.getLogLevel()
    log.setLogLevel(log.LOG_LEVEL_ERROR)
    try:
        return cv2.FaceDetectorYN.create(
            str(model_path), "", (320, 320), score_threshold, NMS_THRESHOLD, 5000
        )
    finally:
        log.setLogLevel(previous)


class YuNetDetector:
    """Thread-safe wrapper: ``cv2.FaceDetectorYN`` keeps per-call state (input size)."""

    def __init__(self, model_path: Path, score_threshold: float = SCORE_THRESHOLD) -> None:
        self.score_threshold = score_threshold
        self._lock = threading.Lock()
        self._net = _create_quietly(model_path, score_threshold)

    def detect(self, image_bgr: np.ndarray) -> list[Face]:
        """All faces scoring at least the threshold, largest first."""
        # Imported here, not at the top: importing insightface pulls onnx and ml_dtypes
        # (~1.3 s), which every `mip` command would pay for without touching a face.
        from insightface.app.common import Face
        h, w = image_bgr.shape[:2]
        scale = min(1.0, MAX_DETECT_SIDE / max(h, w))
        work = image_bgr
        if scale < 1.0:
            work = cv2.resize(image_bgr, (round(w * scale), round(h * scale)),
                              interpolation=cv2.INTER_AREA)
        with self._lock:
            self._net.setInputSize((work.shape[1], work.shape[0]))
            _, rows = self._net.detect(work)
        faces: list[Face] = []
        if rows is None:
            return faces
        for row in np.asarray(rows, dtype=np.float32):
            score = float(row[14])
            if score < self.score_threshold:
                continue
            x, y, bw, bh = (float(v) / scale for v in row[:4])
            kps = (row[4:14].reshape(5, 2) / scale).astype(np.float32)
            faces.append(Face(bbox=np.array([x, y, x + bw, y + bh], dtype=np.float32),
                              kps=kps, det_score=score))
        faces.sort(key=lambda f: float(f.bbox[2] - f.bbox[0]), reverse=True)
        return faces


def competing_faces(faces: list[Face]) -> list[Face]:
    """Faces large enough (relative to the largest) to count as another subject."""
    if not faces:
        return []
    largest = float(faces[0].bbox[2] - faces[0].bbox[0])
    return [f for f in faces if float(f.bbox[2] - f.bbox[0]) >= SECOND_FACE_MIN_RATIO * largest]


def select_single_face(faces: list[Face]) -> Face:
    """Exactly one usable face, else :class:`NoFace` / :class:`MultipleFaces`."""
    if not faces:
        raise NoFace(f"no face found (detector score threshold {SCORE_THRESHOLD})")
    rivals = competing_faces(faces)
    if len(rivals) > 1:
        raise MultipleFaces(
            f"{len(rivals)} faces of comparable size found; exactly one person must be in "
            "the picture"
        )
    return faces[0]


def select_central_face(faces: list[Face], image_shape: tuple[int, ...]) -> Face:
    """The face whose centre is nearest the image centre (LFW protocol, for calibration)."""
    if not faces:
        raise NoFace("no face found")
    cy, cx = image_shape[0] / 2.0, image_shape[1] / 2.0

    def distance(face: Face) -> float:
        fx = float(face.bbox[0] + face.bbox[2]) / 2.0
        fy = float(face.bbox[1] + face.bbox[3]) / 2.0
        return (fx - cx) ** 2 + (fy - cy) ** 2

    return min(faces, key=distance)
