"""Request bodies of grant create and revoke, and the access read."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .holder import SignedRequest
from .ledger_ids import LedgerId, Org, Pseudonym, Purpose, UnixTime

Scope = Literal["medical.prescription", "medical.record", "education.diploma",
                "education.transcript", "research.aggregate"]
CredentialType = Literal["prescription", "record", "diploma", "transcript"]
Role = Literal["registrar", "doctor", "pharmacist", "school_registrar", "researcher",
               "auditor", "admin", "gateway"]
MAX_GRANT_S = 366 * 24 * 3600


class CreateGrantRequest(BaseModel):
    """Either `signed_request` (a `grant.create` request the holder signed), or the terms
    with `account` for the unlocked holder session (header X-MIP-Holder-Session) to sign."""

    model_config = ConfigDict(extra="forbid")

    signed_request: SignedRequest | None = None
    account: Pseudonym | None = None
    grantee_org: Org | None = None
    grantee_role: Role | None = None
    scope: Scope | None = None
    credential_id: LedgerId | None = None
    credential_type: CredentialType | None = None
    ttl_s: Annotated[int, Field(ge=60, le=MAX_GRANT_S)] | None = None
    expires: UnixTime | None = None

    @model_validator(mode="after")
    def _one_form(self) -> CreateGrantRequest:
        terms = (self.account, self.grantee_org, self.scope)
        if self.signed_request is not None:
            if any(v is not None for v in (*terms, self.grantee_role, self.credential_id,
                                           self.credential_type, self.ttl_s, self.expires)):
                raise ValueError("send either signed_request or the terms, not both")
        elif any(v is None for v in terms):
            raise ValueError("send signed_request, or account, grantee_org and scope")
        elif (self.credential_id is None) == (self.credential_type is None):
            raise ValueError("give exactly one of credential_id and credential_type")
        elif self.ttl_s is not None and self.expires is not None:
            raise ValueError("give ttl_s or expires, not both")
        return self


class PreparePortraitRequest(BaseModel):
    """A `grant.portrait` request the holder signed with the account key: its body is the
    `grant.create` body to be (without `portrait_commitment`)."""

    model_config = ConfigDict(extra="forbid")

    signed_request: SignedRequest


class PreparedPortrait(BaseModel):
    portrait: str = Field(description="the sealed portrait (base64), for the holder to carry "
                          "to the grantee's counter")
    portrait_commitment: str
    grant_body: dict[str, Any] = Field(description="the `grant.create` body to sign: the "
                                       "terms with `portrait_commitment`")


class RevokeGrantRequest(BaseModel):
    """Either `signed_request` (`grant.revoke`) or `account` for the holder session."""

    model_config = ConfigDict(extra="forbid")

    signed_request: SignedRequest | None = None
    account: Pseudonym | None = None

    @model_validator(mode="after")
    def _one_form(self) -> RevokeGrantRequest:
        if (self.signed_request is None) == (self.account is None):
            raise ValueError("send exactly one of signed_request and account")
        return self


class AccessRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    credential_id: LedgerId
    scope: Scope
    purpose: Purpose


class AccessResponse(BaseModel):
    access_id: str
    credential_id: str
    type: str
    scope: str
    fields: dict[str, Any]
