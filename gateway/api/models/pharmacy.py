"""Bodies of the pharmacy pickup API (the counter page calls it)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from .ledger_ids import Base64, LedgerId

MAX_FRAMES = 12
MAX_FRAME_BYTES = 2 * 1024 * 1024
# Base64 of at most MAX_FRAME_BYTES: checked before anything is decoded.
MAX_FRAME_CHARS = (MAX_FRAME_BYTES + 2) // 3 * 4


class CreatePickup(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prescription_id: LedgerId


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
    model_config = ConfigDict(extra="forbid")

    image: Annotated[Base64, Field(min_length=4, max_length=MAX_FRAME_CHARS,
                                   description="base64 JPEG or PNG, at most 2 MiB")]
    offset_s: Annotated[float, Field(ge=0, le=600, allow_inf_nan=False,
                                     description="seconds since the challenge was received")]


class FramesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    challenge_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    frames: Annotated[list[FrameIn], Field(min_length=1, max_length=MAX_FRAMES)]


class StreamedFrameIn(FrameIn):
    """One frame of a streamed face check, sent as soon as it is captured."""

    challenge_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class FramesReceived(BaseModel):
    frames_received: int = Field(description="frames of this check analysed so far")


class VerdictIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    challenge_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    frames: Annotated[int, Field(ge=1, le=MAX_FRAMES,
                                 description="how many frames were sent (indexes 0..frames-1)")]


class PickupResult(BaseModel):
    """`verified`, or `refused` with one reason: liveness_failed, face_mismatch, no_face,
    multiple_faces, quality_failed, bad_image, challenge_expired, no_reference."""

    result: Literal["verified", "refused"]
    reason: str | None = None


class Dispensed(BaseModel):
    dispensed: bool
    fills_used: int
    fills_allowed: int
