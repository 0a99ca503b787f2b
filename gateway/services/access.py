"""Reads of private content by a grantee: `Access:Request` (submit), then `Access:Read`.

The request commits the audit record before anything is released; the read is an evaluate
on a peer of the issuer org, made by the same staff identity, which returns only the granted
scope's fields. The gateway passes the fields through and keeps nothing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from gateway.core.errors import ApiError
from gateway.core.security import StaffMember
from gateway.fabric import Contract

from .ledger_reads import credential_record, json_object
from .prepared_submit import PreparedSubmit

if TYPE_CHECKING:
    from .state import AppState

log = logging.getLogger("mip.gateway.access")


def prepare_request(contract: Contract, credential_id: str, scope: str,
                    purpose: str) -> PreparedSubmit:
    """`Access:Request` endorsed now, for `request_and_read(..., prepared=)` once the
    caller's checks pass (prepared_submit.py); nothing is written until then."""
    return PreparedSubmit(contract, "Access:Request", [credential_id, scope, purpose])


async def request_and_read(contract: Contract, credential_id: str, issuer_org: str,
                           scope: str, purpose: str,
                           prepared: PreparedSubmit | None = None) -> dict[str, Any]:
    """Both steps as `contract`'s identity; returns `{access_id, credential_id, type, scope,
    fields}`. `prepared`: the same request from `prepare_request`, already endorsing."""
    args = [credential_id, scope, purpose]
    if prepared is None:
        access_id = (await contract.submit("Access:Request", args)).decode()
    else:
        if prepared.contract is not contract or prepared.args != args:
            raise ValueError("the prepared access request is another one")
        access_id = (await prepared.submit()).decode()
    released = json_object(await contract.evaluate("Access:Read", [access_id],
                                                   endorsing_orgs=[issuer_org]))
    fields = released.get("fields")
    if not isinstance(fields, dict):
        raise ApiError("unexpected answer from the ledger", code="ledger_answer", status=502)
    return {"access_id": access_id, "credential_id": credential_id,
            "type": str(released.get("type")), "scope": str(released.get("scope")),
            "fields": fields}


async def read(state: AppState, member: StaffMember, credential_id: str, scope: str,
               purpose: str) -> dict[str, Any]:
    record = await credential_record(state, credential_id)
    result = await request_and_read(state.ledger.for_staff(member), credential_id,
                                    str(record["issuer_org"]), scope, purpose)
    log.info("access %s: %s read %s (%s)", result["access_id"], member.org, credential_id,
             scope)
    return result
