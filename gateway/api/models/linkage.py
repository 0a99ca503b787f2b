"""Request and response models of linkage proofs (gateway/services/linkage.py)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from gateway.services.linkage import DEFAULT_TTL_S, MAX_PROOF_TTL_S, MIN_TTL_S

from .ledger_ids import Org, Pseudonym

Nonce = Field(default=None, min_length=16, max_length=128,
              description="a challenge the verifier gave the holder (16 to 128 characters)")


class ProveIn(BaseModel):
    account_a: Pseudonym
    account_b: Pseudonym
    verifier_org: Org = Field(description="the one member org that will be able to check it")
    ttl_s: int = Field(default=DEFAULT_TTL_S, ge=MIN_TTL_S, le=MAX_PROOF_TTL_S,
                       description="seconds the proof stays valid, from the gateway's clock")
    nonce: str | None = Nonce


class LinkageProofBody(BaseModel):
    verifier_id: str
    pseudonym_a: str
    pseudonym_b: str
    nonce: str
    expires: int
    tag: str


class ProveOut(BaseModel):
    proof: LinkageProofBody = Field(description="give it to the verifier org, and no one else")
    verifier_org: str
    verifier_public_key: str = Field(description="the org's key on the ledger (base64 X25519)")


class VerifyIn(BaseModel):
    proof: dict[str, Any] = Field(description="the proof as the holder gave it")
    nonce: str | None = Nonce


class LinkedAccountOut(BaseModel):
    pseudonym: str
    institution: str


class VerifyOut(BaseModel):
    linked: bool = Field(description="always true: a proof that does not hold is an error")
    verifier_id: str
    nonce: str
    expires: int
    accounts: list[LinkedAccountOut]


class VerifierKeyOut(BaseModel):
    org: str
    public_key: str
    verifier_id: str
    registered: int | None = None


class RegisterKeyOut(BaseModel):
    org: str
    verifier_id: str
    public_key: str
    newly_registered: bool
