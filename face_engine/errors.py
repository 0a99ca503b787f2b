"""Typed errors of the face engine.

Every error carries a stable machine-readable ``code`` (what API clients and the CLI
branch on) and a human message. Messages name the measure, its value and the limit where
that helps the user retake a photo, but never contain image data or embeddings.
"""

from __future__ import annotations


class FaceError(Exception):
    """Base of every face-engine error; ``code`` is stable across releases."""

    code: str = "face_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


# --- input -----------------------------------------------------------------------------
class InputError(FaceError):
    """The bytes handed in are not an image we accept."""

    code = "invalid_input"


class UnsupportedFormat(InputError):
    code = "unsupported_format"


class ImageCorrupt(InputError):
    code = "image_corrupt"


class ImageTooLarge(InputError):
    code = "image_too_large"


class ImageTooSmall(InputError):
    code = "image_too_small"


# --- detection -------------------------------------------------------------------------
class DetectionError(FaceError):
    code = "detection_failed"


class NoFace(DetectionError):
    code = "no_face"


class MultipleFaces(DetectionError):
    code = "multiple_faces"


# --- quality ---------------------------------------------------------------------------
class QualityError(FaceError):
    """A face was found but is not good enough to enrol or verify with."""

    code = "quality_failed"

    def __init__(self, message: str, *, measure: str, value: float, limit: str) -> None:
        super().__init__(message)
        self.measure = measure
        self.value = value
        self.limit = limit


class QualityTooSmall(QualityError):
    code = "quality_too_small"


class QualityBlurry(QualityError):
    code = "quality_blurry"


class QualityExposure(QualityError):
    code = "quality_exposure"


class QualityPose(QualityError):
    code = "quality_pose"


# --- liveness --------------------------------------------------------------------------
class LivenessFailed(FaceError):
    """Raised by callers that want an exception instead of a ``LivenessResult``."""

    code = "liveness_failed"

    def __init__(self, message: str, *, reason: str, cause: FaceError | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        # The typed error of a frame the check could not use (reason `frame_rejected`): a
        # flow tells a bad capture (no face, two faces, an unreadable image) from a failed
        # liveness by it.
        self.cause = cause


# --- models and configuration ----------------------------------------------------------
class ModelError(FaceError):
    code = "model_error"


class ModelMissing(ModelError):
    code = "model_missing"


class ModelAltered(ModelError):
    code = "model_altered"


class ModelFetchFailed(ModelError):
    code = "model_fetch_failed"


class CalibrationError(FaceError):
    code = "calibration_invalid"


class UnknownOperatingPoint(FaceError):
    code = "unknown_operating_point"
