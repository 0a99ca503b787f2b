"""Audited reads of private content, in two steps, and the audit listings.

1. `Access:Request` (submit) checks the caller's grant (or that it is the issuer's own staff)
   and commits an access record; its id is returned.
2. `Access:Read` (evaluate, on a peer of the issuer org) checks that record is committed, is
   the caller's, is younger than READ_WINDOW_S, that the grant still holds (a revocation is
   effective at once, and so is closing the account) and that the holder's stored signature
   verifies, then returns only the scope's fields. Content never enters a submit's response,
   so never a block.
"""

from __future__ import annotations

import time
from typing import Any

from chaincode.mip.audit import list_access, list_org_access, load_access, record_access
from chaincode.mip.credentials import (
    load_account,
    load_credential,
    read_private,
    require_active,
)
from chaincode.mip.errors import AccessDenied, Expired, InvalidRequest, NotFound
from chaincode.mip.grants import body_account, find_grant, verify_holder_read
from chaincode.mip.holder_auth import tx_unix_time
from chaincode.mip.passports import HOLDER_CARRIERS
from chaincode.mip.scopes import CREDENTIAL_TYPES, Scope, project, scope
from chaincode.mip.staff import caller, require_staff
from chaincode.shim import Context, Contract, transaction

READ_WINDOW_S = 300
MAX_PURPOSE = 256


def issuer_staff(credential: dict[str, Any], org: str, role: str | None) -> bool:
    """The issuing org's own staff of the issuing role read without a grant."""
    ctype = CREDENTIAL_TYPES[credential["type"]]
    return org == credential["issuer_org"] and role == ctype.issuer_role


def readable_scope(name: Any, credential: dict[str, Any]) -> Scope:
    scope_ = scope(name)
    if scope_.cred_type is None:
        raise InvalidRequest(f"scope {scope_.name} releases no credential content")
    if scope_.cred_type != credential["type"]:
        raise InvalidRequest(f"scope {scope_.name} does not apply to a {credential['type']}")
    return scope_


async def authorise_read(
    ctx: Context, credential: dict[str, Any], scope_: Scope, now: int
) -> str | None:
    """Raise AccessDenied unless the caller may read; return the grant id used (if any)."""
    who = caller(ctx)
    if issuer_staff(credential, who.msp_id, who.role):
        return None
    grant = await find_grant(ctx, credential, scope_, who.msp_id, who.role, now)
    if grant is None:
        raise AccessDenied("no live grant from the holder covers this credential and scope")
    return str(grant["grant_id"])


class AccessContract(Contract):
    """Request and read private content; list access records."""

    name = "Access"

    @transaction()
    async def Request(
        self, ctx: Context, credential_id: str, scope: str, purpose: str
    ) -> str:
        """Check the caller's grant, commit an access record, return its id."""
        if not isinstance(purpose, str) or not 0 < len(purpose) <= MAX_PURPOSE:
            raise InvalidRequest(f"purpose must be 1 to {MAX_PURPOSE} characters")
        credential = await load_credential(ctx, credential_id)
        scope_ = readable_scope(scope, credential)
        require_active(credential)
        grant_id = await authorise_read(ctx, credential, scope_, tx_unix_time(ctx))
        record = await record_access(ctx, account=credential["subject_account"],
                                     action="read", credential_id=credential["id"],
                                     scope=scope_.name, purpose=purpose, grant_id=grant_id)
        return str(record["access_id"])

    @transaction(read_only=True)
    async def Read(self, ctx: Context, access_id: str) -> dict[str, Any]:
        """Evaluate on a peer of the issuer org: the scope's fields of the content."""
        record = await load_access(ctx, access_id)
        if record is None or record["action"] != "read":
            raise NotFound("no committed read request with this id")
        who = caller(ctx)
        if record["client_id"] != who.client_id or record["org"] != who.msp_id:
            raise AccessDenied("this read request belongs to another client")
        # An evaluate's timestamp is the client's choice, so the peer's clock counts too.
        now = max(tx_unix_time(ctx), int(time.time()))
        if now - record["time"] > READ_WINDOW_S:
            raise Expired(f"read request is older than {READ_WINDOW_S} s; request again")
        credential = await load_credential(ctx, record["credential_id"])
        require_active(credential)
        scope_ = readable_scope(record["scope"], credential)
        grant_id = await authorise_read(ctx, credential, scope_, now)
        if grant_id != record["grant_id"] and record["grant_id"] is not None:
            # The grant this request was made under is gone (revoked/expired); another live
            # grant would need its own audited request.
            raise AccessDenied("the grant of this read request no longer holds")
        content = await read_private(ctx, credential)
        return {"credential_id": credential["id"], "type": credential["type"],
                "scope": scope_.name, "fields": project(scope_, content)}

    @transaction(read_only=True)
    async def HolderLog(self, ctx: Context, request: dict[str, Any]) -> list[dict[str, Any]]:
        """Holder-signed ("access.log", {account}): every access record of that account."""
        require_staff(ctx, HOLDER_CARRIERS)
        account = await load_account(ctx, body_account(request))
        verify_holder_read(ctx, request, "access.log", account)
        return await list_access(ctx, account.pseudonym)

    @transaction(read_only=True)
    async def AuditorLog(self, ctx: Context, start: int, end: int) -> list[dict[str, Any]]:
        """An auditor's view: its own org's accesses with start <= time < end."""
        staff = require_staff(ctx, {"auditor"})
        if not isinstance(start, int) or not isinstance(end, int) or start > end:
            raise InvalidRequest("start and end must be integers with start <= end")
        return [r for r in await list_org_access(ctx, staff.msp_id)
                if start <= r["time"] < end]

