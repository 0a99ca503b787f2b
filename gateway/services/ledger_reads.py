"""Small ledger helpers shared by the credential, grant, access and pickup services.

Public reads (`Credential:Get`, `Credential:Verify`, `Account:Get`) are "any member" calls: the
gateway makes them with its own service identity, so they need no staff token and leave no
trace in anyone's name. Holder-signed requests are carried by the same identity of the
account's institution.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from gateway.core.errors import ApiError
from gateway.fabric import Contract

if TYPE_CHECKING:
    from .state import AppState


def json_object(raw: bytes) -> dict[str, Any]:
    """A contract answer that must be a JSON object."""
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ApiError("unexpected answer from the ledger", code="ledger_answer", status=502)
    return value


def json_list(raw: bytes) -> list[dict[str, Any]]:
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ApiError("unexpected answer from the ledger", code="ledger_answer", status=502)
    return value


def public_reader(state: AppState) -> Contract:
    """The gateway's own service identity (of its org; on an all-orgs gateway, of the
    network's first org), for public reads."""
    return state.ledger.carrier(state.ledger.reader_org())


async def credential_record(state: AppState, credential_id: str) -> dict[str, Any]:
    """`Credential:Get`: the public record, with `fills` for a prescription."""
    return json_object(await public_reader(state).evaluate("Credential:Get", [credential_id]))


async def account_record(state: AppState, pseudonym: str) -> dict[str, Any]:
    """`Account:Get`: the account's public record (institution, status, level)."""
    return json_object(await public_reader(state).evaluate("Account:Get", [pseudonym]))
