"""Why a live face check refused an answer, as a stable code, and whether it counts.

Shared by the pharmacy pickup (its verdict's `reason`) and the desk unlock (its lockout): a
lockout counts only what the person in front of the camera could have caused, a live face
that did not perform the challenge (`liveness_failed`: no motion, a wrong pose sequence, a
face that changes between frames, a flat picture) or one that does not match
(`face_mismatch`, decided by the caller). Everything else says nothing about who stands
there and is not counted: a frame without a face (`no_face`), with two (`multiple_faces`),
unreadable (`bad_image`), too poor (`quality_failed`), an answer after the deadline
(`challenge_expired`), or frames that did not arrive as the protocol wants (`bad_capture`:
too few or too many, sent twice, out of order, a broken camera or page).
"""

from __future__ import annotations

from face_engine.errors import DetectionError, FaceError, InputError, LivenessFailed

# The liveness check's own reasons (face_engine/liveness.py) that are evidence about the face.
LIVENESS_REFUSALS = frozenset({"no_motion", "sequence", "identity", "planar"})
# Its reasons that are about the frames' delivery, not the face.
DELIVERY_FAILURES = frozenset({"frame_count", "timing", "bad_challenge"})
COUNTED_REASONS = frozenset({"face_mismatch", "liveness_failed"})


def refusal_reason(exc: FaceError) -> str | None:
    """The refusal code of a face error; None for server-side failures. A frame the liveness
    check could not use is refused for that frame's own error."""
    if isinstance(exc, LivenessFailed):
        if exc.cause is not None:
            return refusal_reason(exc.cause)
        if exc.reason == "timeout":  # a frame or the answer came after the deadline
            return "challenge_expired"
        if exc.reason in DELIVERY_FAILURES:
            return "bad_capture"
        return "liveness_failed"
    if isinstance(exc, DetectionError) and exc.code in ("no_face", "multiple_faces"):
        return exc.code
    if exc.code.startswith("quality_"):
        return "quality_failed"
    if isinstance(exc, InputError):
        return "bad_image"
    return None


def counts(exc: FaceError) -> bool:
    """Whether a face error is a failure a lockout counts."""
    return refusal_reason(exc) in COUNTED_REASONS
