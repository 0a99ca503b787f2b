"""Liveness of the service and whether the ledger answers."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from gateway.api.deps import StaffDep, StateDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    channel: str
    chaincode: str


class Me(BaseModel):
    org: str
    name: str
    role: str


@router.get("/health", response_model=Health)
async def health(state: StateDep) -> Health:
    return Health(status="ok", channel=state.settings.channel,
                  chaincode=state.settings.chaincode)


@router.get("/me", response_model=Me)
async def me(staff: StaffDep) -> Me:
    """Who the presented staff token belongs to."""
    return Me(org=staff.org, name=staff.name, role=staff.role)
