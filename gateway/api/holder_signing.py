"""Where a holder-signed request comes from: the client, or the unlocked holder session.

A holder who keeps their own keys sends the signed request (in the body, or for GET routes
in the `X-MIP-Signed-Request` header as base64url JSON). Otherwise the desk's unlocked
level-2 holder session (header `X-MIP-Holder-Session`, with the staff token of the desk that
started it: gateway/services/holders.py) signs the same request with the named account's key.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from gateway.api.deps import HOLDER_SESSION_HEADER, bearer_of, holder_session_at
from gateway.core.errors import Unauthenticated
from gateway.services.holder_requests import SIGNED_REQUEST_HEADER, decode_header
from gateway.services.holders import HolderSession
from gateway.services.state import AppState


def signing_session(request: Request, state: AppState) -> HolderSession:
    """The request's level-2 holder session, its own desk's (deps.holder_session_at). Found
    before any work for the request, so a refused one costs and changes nothing."""
    session_id = request.headers.get(HOLDER_SESSION_HEADER)
    if not session_id:
        raise Unauthenticated("send a signed request, or an unlocked holder session in "
                              f"{HOLDER_SESSION_HEADER}", code="holder_session_required")
    session = holder_session_at(state, session_id,
                                bearer_of(request.headers.get("authorization")))
    session.require_level(2)
    return session


async def session_signed(request: Request, state: AppState, account: str, action: str,
                         body: dict[str, Any]) -> dict[str, Any]:
    """The request `action`/`body` signed by the holder session's key for `account`."""
    session = signing_session(request, state)
    # (A holder enrolled at another org: its gateway signs, for accounts at this org only.)
    return dict(await session.signed(account, action, body))


async def signed_for_get(request: Request, state: AppState, account: str, action: str
                         ) -> dict[str, Any]:
    """For GET routes: the header-borne signed request, else the session's."""
    header = request.headers.get(SIGNED_REQUEST_HEADER)
    if header:
        return decode_header(header)
    return await session_signed(request, state, account, action, {"account": account})
