"""Admin operations: the pharmacy counter key, research datasets and their records."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from gateway.api.deps import StaffDep, StateDep
from gateway.services import counter_key

router = APIRouter(tags=["admin"])


class CounterKeyOut(BaseModel):
    key_id: str
    public_key_pem: str
    newly_registered: bool


@router.post("/admin/counter-key", response_model=CounterKeyOut)
async def register_counter_key(state: StateDep, staff: StaffDep) -> CounterKeyOut:
    """Register this gateway's counter key on the ledger (admin@PharmacyMSP; idempotent)."""
    return CounterKeyOut(**await counter_key.register(state, staff))
