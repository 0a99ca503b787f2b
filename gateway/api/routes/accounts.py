"""Holder accounts (level-2 holder session): open, list, close.

- `POST /accounts` {institution, min_level?} -> the new account (pseudonym, institution).
- `GET /accounts` -> the holder's accounts, from the encrypted directory.
- `DELETE /accounts/{pseudonym}` -> `Account:Close`.
- `POST /accounts/device-terms`, `POST /accounts/device`: an account whose key is on the
  holder's device (services/device_accounts.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from gateway.api.deps import HolderDep, StateDep
from gateway.api.models.accounts import (
    PSEUDONYM,
    AccountList,
    AccountOut,
    DeviceAccountIn,
    OpenAccountIn,
)
from gateway.services.accounts import close_account, open_account
from gateway.services.device_accounts import device_terms, open_device_account
from gateway.services.holders import AccountEntry

router = APIRouter(tags=["accounts"])


def _out(entry: AccountEntry) -> AccountOut:
    return AccountOut(pseudonym=entry.pseudonym, institution=entry.institution,
                      status=entry.status, opened=entry.opened)


@router.post("/accounts", response_model=AccountOut, status_code=201)
async def create_account(body: OpenAccountIn, state: StateDep, holder: HolderDep) -> AccountOut:
    """Open an unlinkable account at an institution, proving the holder's KYC level."""
    entry, _record = await open_account(state, holder, body.institution, body.min_level)
    return _out(entry)


@router.get("/accounts", response_model=AccountList)
async def list_accounts(holder: HolderDep) -> AccountList:
    holder.require_level(2)
    return AccountList(accounts=[_out(a) for a in holder.accounts()])


@router.delete("/accounts/{pseudonym}", status_code=204)
async def delete_account(pseudonym: Annotated[str, Path(pattern=PSEUDONYM)], state: StateDep,
                         holder: HolderDep) -> Response:
    await close_account(state, holder, pseudonym)
    return Response(status_code=204)


@router.post("/accounts/device-terms", response_model=dict[str, Any], status_code=201)
async def device_account_terms(body: OpenAccountIn, state: StateDep, holder: HolderDep
                               ) -> dict[str, Any]:
    """For a holder pairing their wallet (/wallet/) at the desk: the `account.open` body of a
    new account, for their device to sign with a key of its own."""
    return await device_terms(state, holder, body.institution, body.min_level)


@router.post("/accounts/device", response_model=dict[str, Any], status_code=201)
async def open_device_held_account(body: DeviceAccountIn, state: StateDep, holder: HolderDep
                                   ) -> dict[str, Any]:
    """`Account:Open` with the device-signed `account.open` of terms this session issued;
    the session's KYC wallet presents for the device's key. Returns the ledger's record."""
    return await open_device_account(state, holder, body.signed_request.envelope())
