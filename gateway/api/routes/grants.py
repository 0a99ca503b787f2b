"""Grants (holder-signed: create, list, revoke) and grantees' reads of private content."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from gateway.api.deps import StaffDep, StateDep
from gateway.api.holder_signing import session_signed, signed_for_get, signing_session
from gateway.api.models.grants import (
    AccessRequest,
    AccessResponse,
    CreateGrantRequest,
    PreparedPortrait,
    PreparePortraitRequest,
    RevokeGrantRequest,
)
from gateway.api.models.ledger_ids import Pseudonym, path_id
from gateway.services import access as access_service
from gateway.services import grants as service
from gateway.services import portrait_issue

router = APIRouter(tags=["grants"])

DEFAULT_GRANT_TTL_S = 30 * 24 * 3600


def grant_terms(body: CreateGrantRequest) -> dict[str, Any]:
    """The `grant.create` body for the session form (the contract's exact fields)."""
    terms: dict[str, Any] = {
        "account": body.account, "grant_id": service.new_grant_id(),
        "grantee_org": body.grantee_org, "scope": body.scope,
        "expires": body.expires if body.expires is not None
        else int(time.time()) + (body.ttl_s or DEFAULT_GRANT_TTL_S)}
    for name in ("grantee_role", "credential_id", "credential_type"):
        value = getattr(body, name)
        if value is not None:
            terms[name] = value
    return terms


@router.post("/grants", response_model=dict[str, Any], status_code=201)
async def create_grant(state: StateDep, request: Request, body: CreateGrantRequest
                       ) -> dict[str, Any]:
    """Grant an org (optionally one role) a scope on one credential or a credential type.

    With the holder session, a grant of the pickup scope to an org that registered portrait
    keys carries a portrait made here from the account's reference: its commitment is in
    the signed grant, and the sealed portrait (base64) is in the answer's `portrait`, for the
    holder to carry to the counter. A holder who signs on their own device prepares it first
    (`POST /grants/portraits`)."""
    if body.signed_request is not None:
        signed = body.signed_request.envelope()
        return await service.create(state, signed)
    assert body.account is not None  # the model's validator guarantees it
    signing_session(request, state)  # refused before the portrait is made
    terms = grant_terms(body)
    issued = await portrait_issue.portrait_for_grant(state, terms)
    if issued is not None:
        terms["portrait_commitment"] = issued.commitment
    signed = await session_signed(request, state, body.account, "grant.create", terms)
    grant = await service.create(state, signed)
    if issued is not None:
        grant["portrait"] = issued.sealed_b64
    return grant


@router.post("/grants/portraits", response_model=PreparedPortrait)
async def prepare_portrait(state: StateDep, body: PreparePortraitRequest) -> PreparedPortrait:
    """For a holder who signs on their own device: the sealed portrait for the grant terms of
    a `grant.portrait` request signed with the account key (checked against the key on the
    ledger), and the `grant.create` body to sign with its commitment. At the gateway of the
    account's institution; 409 `no_portrait` where none is made."""
    return PreparedPortrait(**await portrait_issue.prepare(state, body.signed_request.envelope()))


@router.get("/grants", response_model=list[dict[str, Any]])
async def list_grants(state: StateDep, request: Request,
                      account: Annotated[Pseudonym, Query()]) -> list[dict[str, Any]]:
    """The account's grants, live or not (signed `grant.list` in X-MIP-Signed-Request, or
    the holder session)."""
    signed = await signed_for_get(request, state, account, "grant.list")
    return await service.list_grants(state, signed, account)


@router.post("/grants/{grant_id}/revoke", response_model=dict[str, Any])
async def revoke_grant(state: StateDep, request: Request,
                       grant_id: Annotated[str, path_id("grant id")],
                       body: RevokeGrantRequest) -> dict[str, Any]:
    if body.signed_request is not None:
        signed = body.signed_request.envelope()
        account = str(signed["body"].get("account"))
    else:
        assert body.account is not None
        account = body.account
        signed = await session_signed(request, state, account, "grant.revoke",
                                      {"account": account, "grant_id": grant_id})
    return await service.revoke(state, signed, account, grant_id)


@router.post("/access", response_model=AccessResponse)
async def read_credential(state: StateDep, staff: StaffDep, body: AccessRequest
                          ) -> AccessResponse:
    """A grantee's read: the audit record is committed first, then only the scope's fields
    are returned (a pharmacy sees the prescription, never a diagnosis)."""
    result = await access_service.read(state, staff, body.credential_id, body.scope,
                                       body.purpose)
    return AccessResponse(**result)
