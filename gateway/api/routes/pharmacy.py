"""Pharmacy pickup: start (prescription + challenge), face frames, dispense one fill."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from gateway.api.deps import StaffDep, StateDep
from gateway.api.models.ledger_ids import b64decode, path_id
from gateway.api.models.pharmacy import (
    MAX_FRAME_BYTES,
    CreatePickup,
    Dispensed,
    FramesIn,
    PickupCreated,
    PickupResult,
)
from gateway.core.errors import InvalidRequest
from gateway.services.pickup import FrameInput, pickup_service

router = APIRouter(tags=["pharmacy"])

PickupId = Annotated[str, path_id("pickup id")]



@router.post("/pharmacy/pickups", response_model=PickupCreated, status_code=201)
async def start_pickup(state: StateDep, staff: StaffDep, body: CreatePickup) -> PickupCreated:
    """pharmacist@PharmacyMSP: the prescription (if the holder granted it to this pharmacy)
    and a liveness challenge. 404 not_found, 403 no_grant, 423 locked, 409
    precondition_failed (used up, revoked, expired)."""
    return PickupCreated(**await pickup_service(state).create(staff, body.prescription_id))


@router.post("/pharmacy/pickups/{pickup_id}/frames", response_model=PickupResult)
async def pickup_frames(state: StateDep, staff: StaffDep, pickup_id: PickupId,
                        body: FramesIn) -> PickupResult:
    """The camera frames answering the challenge: `verified` or `refused` with a reason,
    never a score. 423 locked after too many refusals."""
    frames = []
    for frame in body.frames:
        image = b64decode(frame.image)
        if len(image) > MAX_FRAME_BYTES:
            raise InvalidRequest("a frame is larger than 2 MiB")
        frames.append(FrameInput(image, frame.offset_s))
    result = await pickup_service(state).submit_frames(staff, pickup_id, body.challenge_id,
                                                       frames)
    return PickupResult(**result)


@router.post("/pharmacy/pickups/{pickup_id}/dispense", response_model=Dispensed)
async def dispense(state: StateDep, staff: StaffDep, pickup_id: PickupId) -> Dispensed:
    """One fill, through the contract (endorsed by the issuer org and PharmacyMSP). 409
    not_verified before a verified face check; 409 for a used-up prescription."""
    return Dispensed(**await pickup_service(state).dispense(staff, pickup_id))
