"""Credential check: anyone handed content and salt checks them against the ledger.

No token is needed: `Credential:Verify` is open to any channel client, the answer reveals
only whether the presented content is what was issued (plus the public type, issuer and
status), and an employer should not need an account with the gateway to check a diploma.
"""

from __future__ import annotations

from fastapi import APIRouter

from gateway.api.body_limits import DOCUMENT_BODY_LIMIT
from gateway.api.deps import StateDep
from gateway.api.models.credentials import CheckRequest, CheckResponse
from gateway.api.models.ledger_ids import b64decode
from gateway.services import credentials as service

router = APIRouter(tags=["checks"])


@router.post("/checks", response_model=CheckResponse, max_body_size=DOCUMENT_BODY_LIMIT)
async def check_credential(state: StateDep, body: CheckRequest) -> CheckResponse:
    content = (body.content.encode() if isinstance(body.content, str)
               else service.canonical_content(body.content))
    result = await service.check(state, body.credential_id, content, b64decode(body.salt))
    return CheckResponse(**result)
