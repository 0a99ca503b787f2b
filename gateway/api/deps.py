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


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.mip
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_settings(state: StateDep) -> Settings:
    return state.settings


def get_db(state: StateDep) -> Database:
    return state.db


def get_ledger(state: StateDep) -> Ledger:
    return state.ledger


SettingsDep = Annotated[Settings, Depends(get_settings)]
DbDep = Annotated[Database, Depends(get_db)]
LedgerDep = Annotated[Ledger, Depends(get_ledger)]

_bearer = HTTPBearer(auto_error=False, description="Staff token issued by `mip identity add`")


def get_staff(
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
from gateway.services.holders import HolderSession, holder_service  # noqa: E402

HOLDER_SESSION_HEADER = "X-MIP-Holder-Session"
_holder_header = APIKeyHeader(
    name=HOLDER_SESSION_HEADER, auto_error=False,
    description="An unlocked holder session (POST /holders/sessions/{id}/unlock)")


def get_holder_session(
    state: StateDep, session_id: Annotated[str | None, Depends(_holder_header)],
) -> HolderSession:
    """The unlocked holder session named by the header (401 when absent, unknown or not yet
    unlocked; 410 when expired). Routes check the level they need with
    `session.require_level(2)`."""
    session = holder_service(state).session(session_id) if session_id else None
    if session is None or session.level < 1:
        raise ApiError("an unlocked holder session is required", code="holder_session_required",
                       status=401)
    return session


HolderDep = Annotated[HolderSession, Depends(get_holder_session)]
