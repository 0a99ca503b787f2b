"""Moving desk-custodied keys to the holder's device (level-2 holder session at the enrolling
org's desk; services/key_moves.py, docs/gateway.md "Moving desk keys to the device").

- `POST /accounts/{pseudonym}/move-terms` -> what the wallet signs for that account.
- `POST /accounts/{pseudonym}/move` {signed_request: the device's `account.rotate`} ->
  `Account:RotateKey` (the session signs the custodial half); the ledger's record.
- `POST /holders/sessions/current/passport/move-terms`, `.../passport/move` {signed_request:
  the device's `passport.move`} -> `Passport:MoveKey`; the ledger's record.
- `POST /holders/sessions/current/vault/retire` -> marks the vault retired once its secret
  controls nothing on the ledger (409 `custody_still_in_use` otherwise); ends the session.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from gateway.api.deps import HolderDep, StateDep
from gateway.api.models.accounts import PSEUDONYM, DeviceAccountIn
from gateway.services.key_moves import (
    move_account,
    move_passport,
    move_terms_account,
    move_terms_passport,
    retire_vault,
)

router = APIRouter(tags=["key moves"])
Pseudonym = Annotated[str, Path(pattern=PSEUDONYM)]


@router.post("/accounts/{pseudonym}/move-terms", response_model=dict[str, Any])
async def account_move_terms(pseudonym: Pseudonym, holder: HolderDep) -> dict[str, Any]:
    return await move_terms_account(holder, pseudonym)


@router.post("/accounts/{pseudonym}/move", response_model=dict[str, Any])
async def account_move(pseudonym: Pseudonym, body: DeviceAccountIn, state: StateDep,
                       holder: HolderDep) -> dict[str, Any]:
    return await move_account(state, holder, pseudonym, body.signed_request.envelope())


@router.post("/holders/sessions/current/passport/move-terms", response_model=dict[str, Any])
async def passport_move_terms(holder: HolderDep) -> dict[str, Any]:
    return await move_terms_passport(holder)


@router.post("/holders/sessions/current/passport/move", response_model=dict[str, Any])
async def passport_move(body: DeviceAccountIn, state: StateDep,
                        holder: HolderDep) -> dict[str, Any]:
    return await move_passport(state, holder, body.signed_request.envelope())


@router.post("/holders/sessions/current/vault/retire", response_model=dict[str, Any])
async def vault_retire(state: StateDep, holder: HolderDep) -> dict[str, Any]:
    return await retire_vault(state, holder)
