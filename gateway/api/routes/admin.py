"""Admin operations: the pharmacy counter key, research datasets and their records."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel

from gateway.api.body_limits import DATASET_BODY_LIMIT
from gateway.api.deps import StaffDep, StateDep
from gateway.api.models.ledger_ids import path_id
from gateway.api.models.research import AddRecords, RecordsAdded, RegisterDataset, ResearcherIn
from gateway.services import counter_key, portrait_keys
from gateway.services.research import research_service

router = APIRouter(tags=["admin"])


class CounterKeyOut(BaseModel):
    key_id: str
    public_key_pem: str
    newly_registered: bool


@router.post("/admin/counter-key", response_model=CounterKeyOut)
async def register_counter_key(state: StateDep, staff: StaffDep) -> CounterKeyOut:
    """Register this gateway's counter key on the ledger (admin@PharmacyMSP; idempotent)."""
    return CounterKeyOut(**await counter_key.register(state, staff))


class PortraitKeysOut(BaseModel):
    org: str
    signing_key: str
    signing_key_id: str
    sealing_key: str
    sealing_key_id: str
    newly_registered: bool


@router.post("/admin/portrait-keys", response_model=PortraitKeysOut)
async def register_portrait_keys(state: StateDep, staff: StaffDep) -> PortraitKeysOut:
    """Register this gateway's portrait signing and sealing keys of the admin's org on the
    ledger (`Portrait:RegisterKeys`; idempotent)."""
    return PortraitKeysOut(**await portrait_keys.register(state, staff))


class CounterKeyRevoked(BaseModel):
    key_id: str
    org: str
    status: str
    registered: int
    revoked: int


@router.post("/admin/counter-key/{key_id}/revoke", response_model=CounterKeyRevoked)
async def revoke_counter_key(state: StateDep, staff: StaffDep,
                             key_id: Annotated[str, path_id("counter key id")]
                             ) -> CounterKeyRevoked:
    """Revoke a counter's key on the ledger (admin@PharmacyMSP): attestations it signs are
    refused from then on. Final; 409 if already revoked, 404 if never registered."""
    record = await counter_key.revoke(state, staff, key_id)
    return CounterKeyRevoked(**{k: record[k] for k in CounterKeyRevoked.model_fields})


@router.post("/admin/datasets", response_model=dict[str, Any], status_code=201)
async def register_dataset(state: StateDep, staff: StaffDep, body: RegisterDataset
                           ) -> dict[str, Any]:
    """Register a research dataset and its privacy budget on the ledger (admin)."""
    return await research_service(state).register(staff, body.dataset_id, body.total_epsilon,
                                                  body.columns)


@router.post("/admin/datasets/{dataset_id}/records", response_model=RecordsAdded,
             max_body_size=DATASET_BODY_LIMIT)
async def add_records(state: StateDep, staff: StaffDep,
                      dataset_id: Annotated[str, path_id("dataset id")],
                      body: AddRecords) -> RecordsAdded:
    """Load de-identified rows (admin of the dataset's owner org)."""
    return RecordsAdded(added=research_service(state).add_records(
        staff, dataset_id, [dict(r) for r in body.records]))


@router.post("/admin/datasets/{dataset_id}/researchers", response_model=dict[str, Any],
             status_code=201)
async def admit_researcher(state: StateDep, staff: StaffDep,
                           dataset_id: Annotated[str, path_id("dataset id")],
                           body: ResearcherIn) -> dict[str, Any]:
    """Admit a researcher (any org) to spend the dataset's budget (admin of the owner org)."""
    return await research_service(state).admission(staff, dataset_id, body.org, body.user,
                                                   body.researcher_id, admit=True)


@router.post("/admin/datasets/{dataset_id}/researchers/dismiss", response_model=dict[str, Any])
async def dismiss_researcher(state: StateDep, staff: StaffDep,
                             dataset_id: Annotated[str, path_id("dataset id")],
                             body: ResearcherIn) -> dict[str, Any]:
    """End a researcher's admission (admin of the owner org)."""
    return await research_service(state).admission(staff, dataset_id, body.org, body.user,
                                                   body.researcher_id, admit=False)
