"""A holder-signed request as sent by a holder who keeps their own keys."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from .ledger_ids import Base64


class SignedRequest(BaseModel):
    """`{action, body, nonce, expires, channel, signer, signature}` (docs/chaincode-
    transactions.md, "Holder requests"); Ed25519 by the account key. The contract checks it."""

    model_config = ConfigDict(extra="forbid")

    action: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    body: dict[str, Any]
    nonce: Annotated[str, StringConstraints(min_length=16, max_length=128)]
    expires: Annotated[int, Field(ge=0, le=2**53)]
    channel: Annotated[str, StringConstraints(min_length=1, max_length=250)]
    signer: Annotated[Base64, Field(max_length=64)]
    signature: Annotated[Base64, Field(max_length=128)]

    def envelope(self) -> dict[str, Any]:
        return self.model_dump()
