"""Bodies of the pharmacy pickup API (the counter page calls it)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    model_validator,
)

from gateway.services.face_frames import gateway_time

from .image_budget import MAX_FRAME_CHARS, MAX_FRAMES, check_request_pixels
from .ledger_ids import Base64, LedgerId, b64decode

# A sealed portrait is at most face_engine.portrait.MAX_SEALED_BYTES (16 KiB): base64 of it.
PortraitB64 = Annotated[str, StringConstraints(min_length=1, max_length=22_000)]


class CreatePickup(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prescription_id: LedgerId
    portrait: PortraitB64 | None = Field(
        default=None, description="the sealed portrait the holder carries (base64, as the "
        "grant's response gave it): matched against at an org's own gateway serving an "
        "account another org enrolled")


class PortraitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    portrait: PortraitB64


class PortraitKept(BaseModel):
    account: str
    grant_id: str
    expires: int


class PrescriptionSummary(BaseModel):
    drug: str | None
    strength: str | None
    quantity: int | None


class ChallengeOut(BaseModel):
    challenge_id: str
    poses: list[str] = Field(description="the head turns to ask for, in order")
    expires_in_s: float


class PickupCreated(BaseModel):
    pickup_id: str
    prescription: PrescriptionSummary
    challenge: ChallengeOut


class FrameIn(BaseModel):
    """One frame. No client time: a frame is timed by its request's arrival at the gateway
    (gateway/services/face_frames.py); an `offset_s` field is refused like any unknown one."""

    model_config = ConfigDict(extra="forbid")

    image: Annotated[Base64, Field(min_length=4, max_length=MAX_FRAME_CHARS,
                                   description="base64 JPEG or PNG, at most 2 MiB")]
    _image_bytes: bytes | None = PrivateAttr(default=None)

    @property
    def image_bytes(self) -> bytes:
        """The decoded image, decoded once (the pixel budget and the route both need it)."""
        if self._image_bytes is None:
            self._image_bytes = b64decode(self.image)
        return self._image_bytes


class _Arrived(BaseModel):
    # Taken when the body is parsed, i.e. once the whole request has arrived.
    _arrived_at: float = PrivateAttr(default_factory=gateway_time)

    @property
    def arrived_at(self) -> float:
        return self._arrived_at


class FramesIn(_Arrived):
    """All frames in one request: they share its arrival time, so the pace of the turns is
    not checked (only that the answer arrived before the deadline)."""

    model_config = ConfigDict(extra="forbid")

    challenge_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    frames: Annotated[list[FrameIn], Field(min_length=1, max_length=MAX_FRAMES)]

    @model_validator(mode="after")
    def _pixel_budget(self) -> FramesIn:
        check_request_pixels(frame.image_bytes for frame in self.frames)
        return self


class StreamedFrameIn(FrameIn, _Arrived):
    """One frame of a streamed face check, sent as soon as it is captured; timed by its
    arrival, so frames that truly come too late or out of order are refused."""

    challenge_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]

    @model_validator(mode="after")
    def _pixel_budget(self) -> StreamedFrameIn:
        check_request_pixels([self.image_bytes])
        return self


class FramesReceived(BaseModel):
    frames_received: int = Field(description="frames of this check analysed so far")


class VerdictIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    challenge_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    frames: Annotated[int, Field(ge=1, le=MAX_FRAMES,
                                 description="how many frames were sent (indexes 0..frames-1)")]


class PickupResult(BaseModel):
    """`verified`, or `refused` with one reason: liveness_failed, face_mismatch, no_face,
    multiple_faces, quality_failed, bad_image, bad_capture, challenge_expired, no_reference (only
    face_mismatch and liveness_failed count towards the lockout of the prescription at this
    pharmacist's counter)."""

    result: Literal["verified", "refused"]
    reason: str | None = None


class Dispensed(BaseModel):
    dispensed: bool
    fills_used: int
    fills_allowed: int
