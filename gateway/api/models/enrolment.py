"""Request and response models of the enrolment area."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from .face_frames import ChallengeOut
from .holders import PASSPORT_ID


class EnrolmentCreated(BaseModel):
    session_id: str = Field(description="send it as X-MIP-Enrolment-Session (never in a URL), "
                            "with the token of the registrar who opened it")
    challenge: ChallengeOut
    expires_in_s: float


class EnrolmentState(BaseModel):
    session_id: str
    status: str = Field(description="open, in_review, refused, finishing, finished or expired")
    face_checked: bool
    password_set: bool
    guardians: int
    guardian_threshold: int
    passport_id: str | None
    expires_in_s: float
    screening: str | None = Field(
        default=None, description="the consortium-wide screening, run in the background "
        "(docs/face.md 5.4): pending, clear, in_review (candidates: see review_id), reviewed "
        "(a different person), refused (the same person), failed (see screening_error; "
        "retryable) or abandoned (the gateway restarted: start again); null where this "
        "gateway runs none")
    screening_error: str | None = Field(
        default=None, description="why a failed screening failed (e.g. screening_unavailable: "
        "an org's gateway did not answer in time)")
    screening_retryable: bool = False
    review_id: str | None = Field(default=None,
                                  description="the review the screening sent the session to")


class ScreeningRetried(BaseModel):
    screening: str = Field(description="pending: the new attempt runs in the background")
    attempt: int


class PasswordIn(BaseModel):
    password: str = Field(min_length=1, max_length=1024,
                          description="at least 10 characters; never stored")


class GuardiansIn(BaseModel):
    guardians: list[Annotated[str, Field(pattern=PASSPORT_ID)]] = Field(
        default_factory=list, max_length=10, description="passport ids of existing holders")
    threshold: int = Field(ge=0, le=10, description="shares needed to recover (0: none)")

    model_config = {"json_schema_extra": {"examples": [{"guardians": [], "threshold": 0}]}}


class GuardianShareOut(BaseModel):
    guardian_passport_id: str
    sealed_share: str = Field(description="JSON of the SLIP-39 share sealed to the guardian")


class EnrolmentFinished(BaseModel):
    passport_id: str
    kyc_level: int
    guardian_shares: int
    shares: list[GuardianShareOut]

