"""Where a holder-signed request comes from: the client, or the unlocked holder session.

A holder who keeps their own keys sends the signed request (in the body, or for GET routes
in the `X-MIP-Signed-Request` header as base64url JSON). Otherwise the desk's unlocked
level-2 holder session (header `X-MIP-Holder-Session`, gateway/services/holders.py) signs
the same request with the named account's key.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from gateway.api.deps import HOLDER_SESSION_HEADER, get_holder_session
from gateway.core.errors import Unauthenticated
from gateway.services.holder_requests import SIGNED_REQUEST_HEADER, decode_header
from gateway.services.state import AppState


async def session_signed(request: Request, state: AppState, account: str, action: str,
                         body: dict[str, Any]) -> dict[str, Any]:
    """The request `action`/`body` signed by the holder session's key for `account`."""
    token = request.headers.get(HOLDER_SESSION_HEADER)
    if not token:
        raise Unauthenticated("send a signed request, or an unlocked holder session in "
                              f"{HOLDER_SESSION_HEADER}", code="holder_session_required")
    session = get_holder_session(state, token)
    session.require_level(2)
    # (A holder enrolled at another org: its gateway signs, for accounts at this org only.)
    return dict(await session.signed(account, action, body))


async def signed_for_get(request: Request, state: AppState, account: str, action: str
                         ) -> dict[str, Any]:
    """For GET routes: the header-borne signed request, else the session's."""
    header = request.headers.get(SIGNED_REQUEST_HEADER)
    if header:
        return decode_header(header)
    return await session_signed(request, state, account, action, {"account": account})
