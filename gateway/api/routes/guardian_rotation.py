"""Guardian rotation of a moved passport (services/guardian_rotation.py, docs/gateway.md
"Guardian rotation of a moved passport").

- `POST /passports/{passport_id}/rotations` {signed_request: the new device key's
  `passport.rotate-request`} -> 201, the request: what guardians sign (action, body,
  expires), the threshold and the named guardian keys.
- `GET /passport-rotations/{rotation_id}` -> the same, with the guardians approved so far.
- `POST /holders/sessions/current/passport-rotations/{rotation_id}/approve` -> a guardian's
  own level-2 desk session signs the approval with the custodial passport key.
- `POST /holders/sessions/current/passport-rotations/approval` {passport_id, new_public_key,
  expires} -> {signed_request}: the same approval signed for a request another org's
  gateway holds (posted there to `.../approvals` below).
- `POST /passport-rotations/{rotation_id}/approvals` {guardian_passport_id, signed_request:
  the guardian device's `passport.rotate`} -> a guardian whose passport key is on a device.
- `POST /passport-rotations/{rotation_id}/submit` -> `Passport:RotateKey` again (it is
  carried at once when the k-th approval arrives; this retries one the ledger refused).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.deps import HolderDep, StateDep
from gateway.api.models.holder import SignedRequest
from gateway.api.models.holders import PASSPORT_ID
from gateway.services.guardian_rotation import guardian_rotations

router = APIRouter(tags=["guardian rotation"])
PassportId = Annotated[str, Path(pattern=PASSPORT_ID)]
RotationId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]


class RotationStartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    signed_request: SignedRequest


class ApprovalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    guardian_passport_id: str = Field(pattern=PASSPORT_ID)
    signed_request: SignedRequest


@router.post("/passports/{passport_id}/rotations", response_model=dict[str, Any],
             status_code=201)
async def start_rotation(passport_id: PassportId, body: RotationStartIn,
                         state: StateDep) -> dict[str, Any]:
    return await guardian_rotations(state).start(passport_id, body.signed_request.envelope())


@router.get("/passport-rotations/{rotation_id}", response_model=dict[str, Any])
async def get_rotation(rotation_id: RotationId, state: StateDep) -> dict[str, Any]:
    return guardian_rotations(state).view(rotation_id)


@router.post("/holders/sessions/current/passport-rotations/{rotation_id}/approve",
             response_model=dict[str, Any])
async def approve_at_desk(rotation_id: RotationId, state: StateDep,
                          holder: HolderDep) -> dict[str, Any]:
    return await guardian_rotations(state).approve_at_desk(holder, rotation_id)


class SignApprovalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    passport_id: str = Field(pattern=PASSPORT_ID)
    new_public_key: str = Field(max_length=64)
    expires: int = Field(ge=0, le=2**53)


@router.post("/holders/sessions/current/passport-rotations/approval",
             response_model=dict[str, Any])
async def sign_at_desk(body: SignApprovalIn, state: StateDep,
                       holder: HolderDep) -> dict[str, Any]:
    return {"signed_request": await guardian_rotations(state).sign_at_desk(
        holder, body.passport_id, body.new_public_key, body.expires)}


@router.post("/passport-rotations/{rotation_id}/approvals", response_model=dict[str, Any])
async def approve_signed(rotation_id: RotationId, body: ApprovalIn,
                         state: StateDep) -> dict[str, Any]:
    return await guardian_rotations(state).approve_signed(
        rotation_id, body.guardian_passport_id, body.signed_request.envelope())


@router.post("/passport-rotations/{rotation_id}/submit", response_model=dict[str, Any])
async def submit_rotation(rotation_id: RotationId, state: StateDep) -> dict[str, Any]:
    return await guardian_rotations(state).submit(rotation_id)
