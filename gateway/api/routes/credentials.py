"""Credential issue (doctors, school registrars), public record, revoke."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from gateway.api.body_limits import DOCUMENT_BODY_LIMIT
from gateway.api.deps import StaffDep, StateDep
from gateway.api.models.credentials import IssuedResponse, IssueRequest, RevokeRequest
from gateway.api.models.ledger_ids import path_id
from gateway.services import credentials as service

router = APIRouter(tags=["credentials"])

CredentialIdPath = Annotated[str, path_id("credential id")]


@router.post("/credentials", response_model=IssuedResponse, status_code=201,
             max_body_size=DOCUMENT_BODY_LIMIT)
async def issue_credential(state: StateDep, staff: StaffDep,
                           body: Annotated[IssueRequest, Body()]) -> IssuedResponse:
    """Issue a credential to an account (doctor@HospitalMSP: prescription, record;
    school_registrar@SchoolMSP: diploma, transcript). The response carries the canonical
    content and the salt once, for the holder; the gateway keeps neither."""
    issued = await service.issue(state, staff, body.type, body.subject_account,
                                 body.content.model_dump())
    return IssuedResponse(**issued.to_json())


@router.get("/credentials/{credential_id}", response_model=dict[str, Any])
async def get_credential(state: StateDep, credential_id: CredentialIdPath) -> dict[str, Any]:
    """The public record (type, issuer, subject account, salted hash, status, fills)."""
    return await service.get(state, credential_id)


@router.post("/credentials/{credential_id}/revoke", response_model=dict[str, Any])
async def revoke_credential(state: StateDep, staff: StaffDep, credential_id: CredentialIdPath,
                            body: RevokeRequest) -> dict[str, Any]:
    """Revoke (the issuing role of the issuer org)."""
    return await service.revoke(state, staff, credential_id, body.reason)
