"""Dependencies declared once, as `Annotated` aliases routes use directly."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gateway.core.config import Settings
from gateway.core.errors import Unauthenticated
from gateway.core.security import StaffMember
from gateway.services.ledger import Ledger
from gateway.services.state import AppState
from gateway.store import Database


# The dependencies every request resolves are `async def`: FastAPI runs a plain `def`
# dependency on its threadpool, a thread hop (and a wait for a worker thread on a busy
# machine) per dependency per request, for work that is a dict lookup or one indexed SQLite
# read, which the services do on the event loop anyway (gateway/store/db.py).
async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.mip
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_settings(state: StateDep) -> Settings:
    return state.settings


async def get_db(state: StateDep) -> Database:
    return state.db


async def get_ledger(state: StateDep) -> Ledger:
    return state.ledger


SettingsDep = Annotated[Settings, Depends(get_settings)]
DbDep = Annotated[Database, Depends(get_db)]
LedgerDep = Annotated[Ledger, Depends(get_ledger)]

_bearer = HTTPBearer(auto_error=False, description="Staff token issued by `mip identity add`")


async def get_staff(
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> StaffMember:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("a staff bearer token is required")
    return state.staff.authenticate(credentials.credentials)


StaffDep = Annotated[StaffMember, Depends(get_staff)]


# --- holder sessions (desk unlock: gateway/services/holders.py) ------------------------------
from fastapi.security import APIKeyHeader  # noqa: E402

from gateway.core.errors import ApiError  # noqa: E402
from gateway.core.security import Desk  # noqa: E402
from gateway.services.holders import HolderSession, holder_service  # noqa: E402

HOLDER_SESSION_HEADER = "X-MIP-Holder-Session"
_holder_header = APIKeyHeader(
    name=HOLDER_SESSION_HEADER, auto_error=False,
    description="A holder session (POST /holders/sessions), with the staff token that "
                "started it")


BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
SessionIdDep = Annotated[str | None, Depends(_holder_header)]


def get_desk(state: StateDep, credentials: BearerDep) -> Desk:
    """The authenticated staff member and their token's digest (a holder session's binding);
    refused as `get_staff` refuses."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("a staff bearer token is required")
    return state.staff.desk(credentials.credentials)


DeskDep = Annotated[Desk, Depends(get_desk)]


def bearer_of(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer` header value, else None."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _desk_of(state: AppState, token: str | None) -> Desk | None:
    """The desk of a staff token, or None when absent or not accepted: a holder session
    named without a valid token of its desk is refused as unknown."""
    if not token:
        return None
    try:
        return state.staff.desk(token)
    except ApiError:
        return None


def holder_session_at(state: AppState, session_id: str | None, token: str | None,
                      *, unlocked: bool = True) -> HolderSession:
    """The holder session named by `session_id`, for the desk that started it only.

    No session id: 401 `holder_session_required`. An id with no valid staff token, another
    staff member's or another org's token (or another token of the same member), or an
    unknown id: 404 `holder_session_not_found`, the same refusal, so a stolen id is no
    credential and no oracle. Then 410 when expired, and (`unlocked`) 401
    `holder_session_required` while not yet unlocked. Routes check the level they need with
    `session.require_level(2)`."""
    if not session_id:
        raise ApiError("an unlocked holder session is required", code="holder_session_required",
                       status=401)
    session = holder_service(state).session_at(session_id, _desk_of(state, token))
    if unlocked and session.level < 1:
        raise ApiError("an unlocked holder session is required", code="holder_session_required",
                       status=401)
    return session


def _token(credentials: HTTPAuthorizationCredentials | None) -> str | None:
    return credentials.credentials if credentials is not None else None


def get_holder_session(state: StateDep, session_id: SessionIdDep,
                       credentials: BearerDep) -> HolderSession:
    """The unlocked holder session of the header, used with its desk's staff token."""
    return holder_session_at(state, session_id, _token(credentials))


def get_desk_session(state: StateDep, session_id: SessionIdDep,
                     credentials: BearerDep) -> HolderSession:
    """The holder session of the header at any level (to unlock or end it), its desk's own."""
    return holder_session_at(state, session_id, _token(credentials), unlocked=False)


HolderDep = Annotated[HolderSession, Depends(get_holder_session)]
DeskSessionDep = Annotated[HolderSession, Depends(get_desk_session)]
