"""Request and response models of desk unlock, passports and vouching."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from .face_frames import ChallengeOut, FaceAnswer

PASSPORT_ID = r"^[0-9a-f]{64}$"


class HolderSessionOut(BaseModel):
    session_id: str = Field(description="send it as X-MIP-Holder-Session once unlocked")
    challenge: ChallengeOut


class UnlockIn(FaceAnswer):
    passport_id: str = Field(pattern=PASSPORT_ID)
    password: str | None = Field(default=None, min_length=1, max_length=1024,
                                 description="gives level 2 with the face")


class UnlockOut(BaseModel):
    session_id: str
    passport_id: str
    level: int = Field(description="1: face; 2: face and password")
    expires_in_s: float


class PassportOut(BaseModel):
    """The public passport record on the ledger (no keys beyond the public one)."""

    id: str
    public_key: str
    enrolling_org: str
    kyc_level: int
    status: str
    guardians: list[str]
    guardian_threshold: int
    vouches: int | None = None
    created: Any = None
    updated: Any = None


class VouchOut(BaseModel):
    vouchee: str
    vouchee_level: int
    vouches: int | None = None


class RecoveryStartIn(BaseModel):
    passport_id: str = Field(pattern=PASSPORT_ID)


class RecoveryOut(BaseModel):
    recovery_id: str
    passport_id: str
    challenge: ChallengeOut = Field(description="the holder answers it at finish")
    guardians: list[str] = Field(description="passport ids of the holder's guardians")
    threshold: int = Field(description="shares needed when the face matches (all when not)")
    expires_in_s: float


class RecoveryShareOut(BaseModel):
    recovery_id: str
    shares: int = Field(description="guardian shares given so far")
    threshold: int


class RecoveryFinishIn(FaceAnswer):
    new_password: str = Field(min_length=1, max_length=1024)


class RecoveryFinishOut(BaseModel):
    passport_id: str
    face_reenrolled: bool = Field(description="the live face became the new reference")
    shares: int


class RevokeIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)
    fraudulent: bool = False


class RevokeOut(BaseModel):
    passport_id: str
    status: str
    kyc_credentials_revoked: int
    flagged_vouches: list[str] = Field(default_factory=list)
    demoted: list[str] = Field(default_factory=list)
    # A fraudulent revocation proposed but not yet backed by a majority of orgs.
    fraud_pending: bool = False
    fraud_proposals: list[dict[str, str]] = Field(default_factory=list)
    # Revoked on the ledger by another org's proposal: the enrolling org's registrar
    # publishes the KYC revocation (by calling again).
    kyc_revocation_pending: bool = False
