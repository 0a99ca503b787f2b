"""Linkage proofs: a holder proves to one member org that two of their accounts are theirs.

- `POST /linkage/proofs` (level-2 holder session) -> a proof designated to `verifier_org`.
- `POST /linkage/verifications` (staff of the verifier org) -> checked with this gateway's
  private key of that org.
- `GET /linkage/verifiers/{org}` (anyone) -> the org's verifier key on the ledger.
- `POST /admin/linkage-key` (admin) -> register this gateway's key of the admin's org.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from gateway.api.deps import HolderDep, StaffDep, StateDep
from gateway.api.models.accounts import MSP_ID
from gateway.api.models.linkage import (
    ProveIn,
    ProveOut,
    RegisterKeyOut,
    VerifierKeyOut,
    VerifyIn,
    VerifyOut,
)
from gateway.services import linkage
from gateway.services.ledger_reads import public_reader

router = APIRouter(tags=["linkage"])


@router.post("/linkage/proofs", response_model=ProveOut, status_code=201)
async def create_proof(body: ProveIn, state: StateDep, holder: HolderDep) -> ProveOut:
    """Prove to one verifier org that two of the holder's open accounts are the holder's."""
    return ProveOut(**await linkage.prove_for_session(
        state, holder, body.account_a, body.account_b, body.verifier_org, body.ttl_s,
        body.nonce))


@router.post("/linkage/verifications", response_model=VerifyOut)
async def verify_proof(body: VerifyIn, state: StateDep, staff: StaffDep) -> VerifyOut:
    """Check a linkage proof designated to the caller's org (any staff role of that org)."""
    return VerifyOut(**await linkage.verify_as_staff(state, staff, body.proof, body.nonce))


@router.get("/linkage/verifiers/{org}", response_model=VerifierKeyOut)
async def get_verifier_key(org: Annotated[str, Path(pattern=MSP_ID)],
                           state: StateDep) -> VerifierKeyOut:
    """The org's linkage verifier key as registered on the ledger."""
    return VerifierKeyOut(**await linkage.verifier_record(public_reader(state), org))


@router.post("/admin/linkage-key", response_model=RegisterKeyOut, tags=["admin"])
async def register_linkage_key(state: StateDep, staff: StaffDep) -> RegisterKeyOut:
    """Register this gateway's linkage verifier key of the admin's org (idempotent)."""
    return RegisterKeyOut(**await linkage.register_key(state, staff))
