"""Request and response models of the inter-gateway custody API (gateway/services/custody.py)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from .accounts import PSEUDONYM
from .holders import PASSPORT_ID

HANDLE = r"^[0-9a-f]{64}$"


class CustodyUnlockIn(BaseModel):
    passport_id: str = Field(pattern=PASSPORT_ID)
    embedding: str = Field(max_length=4096,
                           description="the live face's embedding: base64 of float32 LE")
    password: str | None = Field(default=None, min_length=1, max_length=1024)


class CustodyAccountOut(BaseModel):
    pseudonym: str
    institution: str
    index: int
    status: str
    opened: int


class CustodySessionOut(BaseModel):
    handle: str
    level: int
    kyc_level: int | None
    accounts: list[CustodyAccountOut]
    expires_in_s: float


class HandleIn(BaseModel):
    handle: str = Field(pattern=HANDLE)


class PrepareAccountIn(HandleIn):
    pseudonym: str = Field(pattern=PSEUDONYM)
    institution: str = Field(max_length=64)
    min_level: int = Field(ge=1, le=3)
    face_commitment: str = Field(max_length=256)


class PreparedAccountOut(BaseModel):
    request: dict[str, Any]
    presentation: dict[str, Any]


class SyncAccountIn(HandleIn):
    pseudonym: str = Field(pattern=PSEUDONYM)


class SignIn(HandleIn):
    account: str = Field(pattern=PSEUDONYM)
    action: str = Field(max_length=64)
    body: dict[str, Any]


class PassportSignIn(HandleIn):
    action: str = Field(max_length=64)
    body: dict[str, Any]


class SignedOut(BaseModel):
    request: dict[str, Any]


# --- guardian recovery at another org's desk (gateway/services/recovery_relay.py) ----------
class RecoveryStartIn(BaseModel):
    passport_id: str = Field(pattern=PASSPORT_ID)


class CustodyRecoveryOut(BaseModel):
    handle: str
    passport_id: str
    guardians: list[str]
    threshold: int
    expires_in_s: float


class GuardianIn(HandleIn):
    guardian: str = Field(pattern=PASSPORT_ID)


class SealedShareOut(BaseModel):
    sealed: str


class MnemonicIn(GuardianIn):
    mnemonic: str = Field(min_length=1, max_length=1024)


class SharesOut(BaseModel):
    shares: int
    threshold: int


class RecoveryFinishCustodyIn(HandleIn):
    embedding: str = Field(max_length=4096,
                           description="the live face's embedding: base64 of float32 LE")
    new_password: str = Field(min_length=1, max_length=1024)


class RecoveryFinishCustodyOut(BaseModel):
    passport_id: str
    face_reenrolled: bool
    shares: int


class GuardianShareIn(HandleIn):
    """At the guardian's custodian: give the share of the guardian whose custody session is
    `handle` to the recovery `recovery` held by `custodian`."""

    custodian: str = Field(max_length=64)
    recovery: str = Field(pattern=HANDLE)


class LinkageProofIn(HandleIn):
    account: str = Field(pattern=PSEUDONYM, description="the holder's account at the caller")
    other_account: str = Field(pattern=PSEUDONYM, description="another account of the holder")
    ttl_s: int = Field(ge=1, le=86400)
    nonce: str | None = Field(default=None, min_length=16, max_length=128)


class LinkageProofOut(BaseModel):
    proof: dict[str, Any]
    verifier_org: str
    verifier_public_key: str


class ProfileAddIn(HandleIn):
    kind: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
    source: str = Field(max_length=64, description="the caller's MSP id")
    data: str = Field(max_length=1_400_000, description="base64 of the record's bytes")
    metadata: dict[str, str] = Field(default_factory=dict, max_length=32)


class ProfileKeyCustodyOut(BaseModel):
    public_key: str
