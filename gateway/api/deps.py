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
