"""Request and response models of the accounts area."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .holder import SignedRequest

MSP_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
PSEUDONYM = r"^[0-9a-f]{64}$"


class OpenAccountIn(BaseModel):
    institution: str = Field(pattern=MSP_ID, description="the institution's MSP id")
    min_level: int = Field(default=2, ge=1, le=3,
                           description="KYC level the account proves (at most the holder's)")


class DeviceAccountIn(BaseModel):
    """The `account.open` request the holder's device signed over the desk's terms."""

    model_config = ConfigDict(extra="forbid")

    signed_request: SignedRequest


class AccountOut(BaseModel):
    pseudonym: str
    institution: str
    status: str
    opened: int


class AccountList(BaseModel):
    accounts: list[AccountOut]
