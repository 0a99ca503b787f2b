"""The custody API: another member org's gateway acting for a custodial holder of this org
(gateway/services/custody.py; docs/gateway.md, "Holders at another org's desk").

Every route is for gateways, not people: the caller is the org whose service identity signed
the request (gateway/core/peer_auth.py), and a session answers its own caller only. Session
handles travel in the body (never in a path an access log keeps).

- `POST /custody/unlocks` {passport_id, embedding, password?} -> a custody session.
- `POST /custody/sessions/accounts` {handle, pseudonym, institution, min_level,
  face_commitment} -> the signed `account.open` and the KYC presentation (caller's org only).
- `POST /custody/sessions/accounts/sync` {handle, pseudonym} -> the directory entry, once
  the ledger shows it.
- `POST /custody/sessions/signatures` {handle, account, action, body} -> a holder request
  signed by the key of an account at the caller's org.
- `POST /custody/sessions/passport-signatures` {handle, action, body} -> `passport.vouch`.
- `POST /custody/sessions/end` {handle} -> 204.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from gateway.api.deps import StateDep
from gateway.api.models.custody import (
    CustodyAccountOut,
    CustodySessionOut,
    CustodyUnlockIn,
    HandleIn,
    PassportSignIn,
    PrepareAccountIn,
    PreparedAccountOut,
    SignedOut,
    SignIn,
    SyncAccountIn,
)
from gateway.services.custody import custody_service, decode_embedding, session_out

router = APIRouter(prefix="/custody", tags=["custody"])


async def calling_org(request: Request, state: StateDep) -> str:
    """The member org whose gateway signed this request for this gateway, now (401
    `peer_unauthenticated` otherwise)."""
    body = await request.body()
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return custody_service(state).authenticate(request.headers, request.method, path, body)


CallerDep = Annotated[str, Depends(calling_org)]


@router.post("/unlocks", response_model=CustodySessionOut, status_code=201)
async def unlock(body: CustodyUnlockIn, state: StateDep, caller: CallerDep) -> CustodySessionOut:
    service = custody_service(state)
    session = await service.unlock(caller, body.passport_id, decode_embedding(body.embedding),
                                   body.password)
    return CustodySessionOut.model_validate(session_out(session))


@router.post("/sessions/accounts", response_model=PreparedAccountOut, status_code=201)
async def prepare_account(body: PrepareAccountIn, state: StateDep,
                          caller: CallerDep) -> PreparedAccountOut:
    service = custody_service(state)
    session = service.session(caller, body.handle)
    request, presentation = await service.prepare_account(
        session, body.pseudonym, body.institution, body.min_level, body.face_commitment)
    return PreparedAccountOut(request=request, presentation=presentation)


@router.post("/sessions/accounts/sync", response_model=CustodyAccountOut)
async def sync_account(body: SyncAccountIn, state: StateDep,
                       caller: CallerDep) -> CustodyAccountOut:
    service = custody_service(state)
    entry = await service.sync_account(service.session(caller, body.handle), body.pseudonym)
    return CustodyAccountOut.model_validate(entry.to_dict())


@router.post("/sessions/signatures", response_model=SignedOut)
async def sign(body: SignIn, state: StateDep, caller: CallerDep) -> SignedOut:
    service = custody_service(state)
    session = service.session(caller, body.handle)
    return SignedOut(request=service.sign(session, body.account, body.action, body.body))


@router.post("/sessions/passport-signatures", response_model=SignedOut)
async def passport_sign(body: PassportSignIn, state: StateDep, caller: CallerDep) -> SignedOut:
    service = custody_service(state)
    session = service.session(caller, body.handle)
    return SignedOut(request=service.passport_sign(session, body.action, body.body))


@router.post("/sessions/end", status_code=204)
async def end(body: HandleIn, state: StateDep, caller: CallerDep) -> Response:
    custody_service(state).end(caller, body.handle)
    return Response(status_code=204)
