"""Pharmacy pickup: start (prescription + challenge), face frames, dispense one fill."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from gateway.api.body_limits import FRAMES_BODY_LIMIT, ONE_FRAME_BODY_LIMIT
from gateway.api.deps import StaffDep, StateDep
from gateway.api.models.image_budget import MAX_FRAME_BYTES, MAX_FRAMES
from gateway.api.models.ledger_ids import path_id
from gateway.api.models.pharmacy import (
    CreatePickup,
    Dispensed,
    FramesIn,
    FramesReceived,
    PickupCreated,
    PickupResult,
    PortraitIn,
    PortraitKept,
    StreamedFrameIn,
    VerdictIn,
)
from gateway.core.errors import InvalidRequest
from gateway.core.security import require_role
from gateway.services import pharmacy_portraits as portraits
from gateway.services.counter_key import PHARMACY
from gateway.services.pickup import FrameInput, pickup_service

router = APIRouter(tags=["pharmacy"])

PickupId = Annotated[str, path_id("pickup id")]
FrameIndex = Annotated[int, Path(ge=0, lt=MAX_FRAMES, description="0 = the frontal frame")]


def _image(image: bytes) -> bytes:
    if len(image) > MAX_FRAME_BYTES:
        raise InvalidRequest("a frame is larger than 2 MiB")
    return image


@router.post("/pharmacy/pickups", response_model=PickupCreated, status_code=201)
async def start_pickup(state: StateDep, staff: StaffDep, body: CreatePickup) -> PickupCreated:
    """pharmacist@PharmacyMSP: the prescription (if the holder granted it to this pharmacy)
    and a liveness challenge. 404 not_found, 403 no_grant, 423 locked, 409
    precondition_failed (used up, revoked, expired). With `portrait` (the sealed portrait
    the holder carries), it is checked first and kept for the verdict: a refused one is a
    typed error (`portrait_*`, 409; 422 malformed; 410 expired) and nothing is written."""
    portrait = None if body.portrait is None else portraits.decode(body.portrait)
    return PickupCreated(**await pickup_service(state).create(staff, body.prescription_id,
                                                              portrait))


@router.post("/pharmacy/portraits", response_model=PortraitKept, status_code=201)
async def deposit_portrait(state: StateDep, staff: StaffDep, body: PortraitIn) -> PortraitKept:
    """pharmacist@PharmacyMSP: hand in a holder's sealed portrait before the pickup; checked
    as at the pickup (typed `portrait_*` refusals, nothing kept), then kept sealed for the
    account's next pickup under that grant."""
    require_role(staff, ("pharmacist",), (PHARMACY,))
    kept = await portraits.pharmacy_portraits(state).deposit(staff.org,
                                                            portraits.decode(body.portrait))
    return PortraitKept(**kept)


@router.post("/pharmacy/pickups/{pickup_id}/frames", response_model=PickupResult,
             max_body_size=FRAMES_BODY_LIMIT)
async def pickup_frames(state: StateDep, staff: StaffDep, pickup_id: PickupId,
                        body: FramesIn) -> PickupResult:
    """The camera frames answering the challenge: `verified` or `refused` with a reason,
    never a score. 423 locked after too many refusals. One request has one arrival time, so
    this checks the poses and that the answer came before the deadline, not the pace of the
    turns (the streamed check below does)."""
    frames = [FrameInput(_image(frame.image_bytes), body.arrived_at) for frame in body.frames]
    result = await pickup_service(state).submit_frames(staff, pickup_id, body.challenge_id,
                                                       frames)
    return PickupResult(**result)


@router.put("/pharmacy/pickups/{pickup_id}/frames/{index}", response_model=FramesReceived,
            status_code=202, max_body_size=ONE_FRAME_BODY_LIMIT)
async def pickup_frame(state: StateDep, staff: StaffDep, pickup_id: PickupId,
                       index: FrameIndex, body: StreamedFrameIn) -> FramesReceived:
    """Streamed face check: frame `index` (0 = frontal), sent as soon as it is captured and
    analysed on arrival, so the verdict after the last frame is quick. Each index once; a
    frame's time is its arrival here, and frames must arrive in index order before the
    deadline. The first frame spends the challenge. A bad frame is not reported here (the verdict
    refuses it). 409 challenge_used when the frames went another way, 410 challenge_expired."""
    received = await pickup_service(state).add_frame(
        staff, pickup_id, body.challenge_id, index,
        FrameInput(_image(body.image_bytes), body.arrived_at))
    return FramesReceived(**received)


@router.post("/pharmacy/pickups/{pickup_id}/verdict", response_model=PickupResult)
async def pickup_verdict(state: StateDep, staff: StaffDep, pickup_id: PickupId,
                         body: VerdictIn) -> PickupResult:
    """Streamed face check: the decision over frames 0..frames-1, once every frame's upload
    has been answered. `verified` or `refused` with a reason, never a score."""
    result = await pickup_service(state).verdict(staff, pickup_id, body.challenge_id,
                                                 body.frames)
    return PickupResult(**result)


@router.post("/pharmacy/pickups/{pickup_id}/dispense", response_model=Dispensed)
async def dispense(state: StateDep, staff: StaffDep, pickup_id: PickupId) -> Dispensed:
    """One fill, through the contract (endorsed by the issuer org and PharmacyMSP). 409
    not_verified before a verified face check; 409 for a used-up prescription."""
    return Dispensed(**await pickup_service(state).dispense(staff, pickup_id))
