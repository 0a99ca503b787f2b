"""The holder wallet's own reads (/wallet/), each authorised by a request signed on the
holder's device (services/wallet_views.py), and the desk's link of a device to a passport.

- `GET /wallet/passport` with a signed `passport.view` {passport_id, link?} in
  `X-MIP-Signed-Request` -> the passport's status, KYC level, provisional or not, guardians.
- `GET /wallet/accounts/{pseudonym}` with a signed `account.view` {account} -> the account's
  ledger record (institution, status, KYC level proven at opening).
- `GET /wallet/accounts` with a signed `account.find` {} -> the account the signing key
  speaks for (404 where none): the wallet rebuilds its account list from its passkey.
- `GET /wallet/config` -> the page's settings: the WebAuthn relying party id to use
  (`wallet_rp_id`; null: the page's own host) and this gateway's org.
- `POST /wallet/passport-link` {device_key} (level-2 holder session at the desk of the
  holder's enrolling org) -> the `passport.link_device` request the wallet keeps.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, StringConstraints

from gateway.api.deps import HolderDep, StateDep
from gateway.api.models.accounts import PSEUDONYM
from gateway.core.errors import Unauthenticated
from gateway.services import wallet_views as service
from gateway.services.holder_requests import SIGNED_REQUEST_HEADER, decode_header

router = APIRouter(tags=["wallet"])


class DeviceLinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device_key: Annotated[str, StringConstraints(min_length=40, max_length=64)]


def _signed(request: Request) -> dict[str, Any]:
    header = request.headers.get(SIGNED_REQUEST_HEADER)
    if not header:
        raise Unauthenticated(f"send the request signed on the device in {SIGNED_REQUEST_HEADER}",
                              code="signed_request_required")
    return decode_header(header)


@router.get("/wallet/passport", response_model=dict[str, Any])
async def view_passport(state: StateDep, request: Request) -> dict[str, Any]:
    """The holder's passport: status, KYC level, provisional (awaiting the consortium's
    screening), guardians. Signed `passport.view` by the device's passport key (with the
    desk's device link for a desk-enrolled holder)."""
    return await service.passport_view(state, _signed(request))


@router.get("/wallet/config", response_model=dict[str, Any])
async def wallet_config(state: StateDep) -> dict[str, Any]:
    """What the wallet page needs before its passkey is used: the relying party id shared by
    the consortium's gateways (null: the page's own host) and this gateway's org (null on
    an all-orgs gateway)."""
    return {"rp_id": state.settings.wallet_rp_id, "org": state.settings.org}


@router.get("/wallet/accounts", response_model=dict[str, Any])
async def find_account(state: StateDep, request: Request) -> dict[str, Any]:
    """The account a device key speaks for, for a signed `account.find` {} by that key (404
    `not_found` where none)."""
    return await service.account_find(state, _signed(request))


@router.get("/wallet/accounts/{pseudonym}", response_model=dict[str, Any])
async def view_account(state: StateDep, request: Request,
                       pseudonym: Annotated[str, Path(pattern=PSEUDONYM)]) -> dict[str, Any]:
    """The account's ledger record, for a signed `account.view` {account} by its key."""
    return await service.account_view(state, _signed(request), pseudonym)


@router.post("/wallet/passport-link", response_model=dict[str, Any], status_code=201)
async def link_device(state: StateDep, holder: HolderDep, body: DeviceLinkIn) -> dict[str, Any]:
    """The holder's level-2 desk session signs, with the passport key its vault holds, a
    `passport.link_device` for the device key the wallet shows: the wallet then reads its
    passport with its own signature. Where another org's gateway holds the keys: 409
    `custody_elsewhere` (link at the enrolling org's desk)."""
    holder.require_level(2)
    return service.link_for_device(holder.passport_key(), holder.pid, body.device_key,
                                   state.settings.channel)
