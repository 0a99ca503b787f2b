"""Request and response models of the smart-profile area."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

LABEL = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
RECORD_ID = r"^[0-9a-f]{32}$"


class ProfileRecordIn(BaseModel):
    kind: str = Field(pattern=LABEL, description="e.g. fitness.daily")
    source: str = Field(pattern=LABEL, description="the app or institution it came from")
    data: str = Field(max_length=1_400_000, description="base64 of the record's bytes")
    metadata: dict[str, str] = Field(default_factory=dict, max_length=32)


class ProfileRecordOut(BaseModel):
    record_id: str
    kind: str
    source: str
    created: int
    size: int
    metadata: dict[str, Any]
    owned: bool


class ProfileRecordList(BaseModel):
    records: list[ProfileRecordOut]


class ProfileRecordData(BaseModel):
    record_id: str
    data: str = Field(description="base64")


class ProfileKeyOut(BaseModel):
    public_key: str = Field(description="base64 X25519 key others share records to")


class ShareIn(BaseModel):
    grantee_public_key: str = Field(min_length=44, max_length=44,
                                    description="base64 X25519 profile key of the grantee")
