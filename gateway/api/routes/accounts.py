"""Holder accounts (level-2 holder session): open, list, close.

- `POST /accounts` {institution, min_level?} -> the new account (pseudonym, institution).
- `GET /accounts` -> the holder's accounts, from the encrypted directory.
- `DELETE /accounts/{pseudonym}` -> `Account:Close`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from gateway.api.deps import HolderDep, StateDep
from gateway.api.models.accounts import PSEUDONYM, AccountList, AccountOut, OpenAccountIn
from gateway.services.accounts import close_account, open_account
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
