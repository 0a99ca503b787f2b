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
