"""Audit views: the holder's own access log, an auditor's log of their org."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from gateway.api.deps import StaffDep, StateDep
from gateway.api.holder_signing import signed_for_get
from gateway.api.models.ledger_ids import Pseudonym
from gateway.core.errors import InvalidRequest
from gateway.services import audit as service

router = APIRouter(tags=["audit"])

Unix = Annotated[int, Query(ge=0, le=2**53)]


@router.get("/audit/holder", response_model=list[dict[str, Any]])
async def holder_audit(state: StateDep, request: Request,
                       account: Annotated[Pseudonym, Query()]) -> list[dict[str, Any]]:
    """Every access to the account's data, in time order (signed `access.log` request in
    X-MIP-Signed-Request, or the holder session)."""
    signed = await signed_for_get(request, state, account, "access.log")
    return await service.holder_log(state, signed, account)


@router.get("/audit/org", response_model=list[dict[str, Any]])
async def org_audit(state: StateDep, staff: StaffDep, start: Unix, end: Unix
                    ) -> list[dict[str, Any]]:
    """The auditor's own org's access records with start <= time < end (role auditor)."""
    if start > end:
        raise InvalidRequest("start must not be after end")
    return await service.org_log(state, staff, start, end)
