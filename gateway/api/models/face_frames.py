"""The face-capture request parts every flow shares: a challenge answer with its frames."""

from __future__ import annotations

import base64
import binascii

from pydantic import BaseModel, Field, PrivateAttr, field_validator, model_validator

from face_engine.liveness import POSES
from gateway.services.face_frames import gateway_time

from .image_budget import MAX_FRAME_BYTES, MAX_FRAMES, check_request_pixels

# base64 of MAX_FRAME_BYTES, checked before decoding so an oversized frame costs nothing.
_MAX_FRAME_B64 = 4 * ((MAX_FRAME_BYTES + 2) // 3)


class FrameIn(BaseModel):
    image: str = Field(description="base64 of one JPEG or PNG frame (at most 2 MiB decoded)",
                       min_length=4, max_length=_MAX_FRAME_B64)

    @field_validator("image")
    @classmethod
    def _base64(cls, value: str) -> str:
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("image must be standard base64") from None
        if not decoded or len(decoded) > MAX_FRAME_BYTES:
            raise ValueError(f"image must be 1 to {MAX_FRAME_BYTES} bytes")
        return value

    def decoded(self) -> bytes:
        return base64.b64decode(self.image)


class FaceAnswer(BaseModel):
    """The answer to a face challenge: frames in capture order, the first one frontal.

    Every frame is timed by the request's arrival (gateway/services/face_frames.py); a
    client's own timing fields (the former `offset_s`) are ignored."""

    challenge_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    frames: list[FrameIn] = Field(min_length=2, max_length=MAX_FRAMES)
    # Taken when the body is parsed, i.e. once the whole request has arrived.
    _arrived_at: float = PrivateAttr(default_factory=gateway_time)

    @model_validator(mode="after")
    def _pixel_budget(self) -> FaceAnswer:
        check_request_pixels(frame.decoded() for frame in self.frames)
        return self

    @property
    def arrived_at(self) -> float:
        return self._arrived_at

    def decoded(self) -> list[tuple[bytes, float]]:
        """(image, arrival time) per frame, in capture order."""
        return [(frame.decoded(), self._arrived_at) for frame in self.frames]


class ChallengeOut(BaseModel):
    """A face challenge: turn the head through `poses` in order, starting frontal."""

    challenge_id: str
    poses: list[str] = Field(description=f"each one of {', '.join(POSES)}")
    deadline_s: float = Field(description="seconds the person has from now")
