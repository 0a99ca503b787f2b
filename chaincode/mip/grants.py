"""Grants: a holder's signed consent that an org (optionally one role) may read a scope.

The grant record (`mip.grant`, keyed by account and grant id) keeps the holder's whole signed
request, so the peer that releases content re-verifies the holder's signature at read time: a
grant record forged by a dishonest endorser releases nothing, because it carries no valid
signature by the account key on record. (A lone org's forged grant does not even commit: the
chaincode-level policy is a majority of orgs; this re-check is the second line.)

Closing an account ends its grants: every use of a grant (`find_grant`, behind
`Access:Request`, `Access:Read` and `Pharmacy:Dispense`) looks at the account's status at that
moment, so a grant made, or a read requested, before the close releases nothing after it.
The holder keeps the actions that only take away or look: listing and revoking the account's
grants, reading its access log.
"""

from __future__ import annotations

import json
import time
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from chaincode.mip.audit import record_access
from chaincode.mip.credentials import Account, check_id, load_account, load_credential, put_json
from chaincode.mip.errors import (
    AccessDenied,
    BadSignature,
    Conflict,
    InvalidRequest,
    NotFound,
    PreconditionFailed,
)
from chaincode.mip.holder_auth import (
    HolderRequest,
    parse_request,
    tx_unix_time,
    unb64,
    verify_holder_request,
    verify_read_request,
)
from chaincode.mip.passports import HOLDER_CARRIERS
from chaincode.mip.portraits import check_portrait_commitment
from chaincode.mip.scopes import Scope, credential_type, scope, scope_covers_type
from chaincode.mip.staff import MEMBER_ORGS, ROLES, caller, require_staff
from chaincode.shim import Context, Contract, create_composite_key, transaction

GRANT_OBJECT = "mip.grant"
# A grant is consent for a purpose, not a permanent key: holders renew it.
MAX_GRANT_S = 366 * 24 * 3600
_BODY_REQUIRED = {"account", "grant_id", "grantee_org", "scope", "expires"}
# portrait_commitment: the commitment of the portrait the grantee checks the holder's face
# against (chaincode/mip/portraits.py); the holder signs it here, so no org swaps the portrait.
_BODY_OPTIONAL = {"grantee_role", "credential_id", "credential_type", "portrait_commitment"}


def grant_key(account: str, grant_id: str) -> str:
    return create_composite_key(GRANT_OBJECT, [account, grant_id])


def body_account(raw: Any) -> str:
    """The account a holder request speaks for (read before the signature is checked, to find
    the key on record; the signature then covers it)."""
    body = raw.get("body") if isinstance(raw, dict) else None
    if not isinstance(body, dict):
        raise InvalidRequest("holder request must carry a body object")
    return check_id(body.get("account"), "body.account")


def verify_holder_read(ctx: Context, raw: Any, action: str, account: Account) -> HolderRequest:
    """Check a holder request for a read-only transaction signed by the account's key on
    record, without recording its nonce (holder_auth.verify_read_request says why that is
    safe for reads)."""
    return verify_read_request(ctx, raw, action, expected_signer=account.public_key)


def check_signature(request: HolderRequest) -> None:
    try:
        Ed25519PublicKey.from_public_bytes(request.signer).verify(
            request.signature, request.signed_bytes()
        )
    except InvalidSignature as exc:
        raise BadSignature("holder signature does not verify") from exc


def parse_grant_body(body: dict[str, Any]) -> dict[str, Any]:
    missing = _BODY_REQUIRED - body.keys()
    extra = body.keys() - _BODY_REQUIRED - _BODY_OPTIONAL
    if missing or extra:
        raise InvalidRequest(
            f"grant body fields wrong (missing {sorted(missing)}, unexpected {sorted(extra)})"
        )
    check_id(body["grant_id"], "grant_id")
    if body["grantee_org"] not in MEMBER_ORGS:
        raise InvalidRequest(f"grantee_org must be one of {sorted(MEMBER_ORGS)}")
    role = body.get("grantee_role")
    if role is not None and role not in ROLES:
        raise InvalidRequest(f"grantee_role must be one of {sorted(ROLES)}")
    scope_ = scope(body["scope"])
    expires = body["expires"]
    if not isinstance(expires, int) or isinstance(expires, bool):
        raise InvalidRequest("expires must be an integer (unix seconds)")
    has_id, has_type = "credential_id" in body, "credential_type" in body
    if has_id == has_type:
        raise InvalidRequest("give exactly one of credential_id and credential_type")
    if has_type:
        ctype = credential_type(body["credential_type"])
        if not scope_covers_type(scope_, ctype.name):
            raise InvalidRequest(f"scope {scope_.name} does not cover type {ctype.name}")
    else:
        check_id(body["credential_id"], "credential_id")
    terms: dict[str, Any] = {
        "account": body["account"],
        "grant_id": body["grant_id"],
        "grantee_org": body["grantee_org"],
        "grantee_role": role,
        "scope": scope_.name,
        "credential_id": body.get("credential_id"),
        "credential_type": body.get("credential_type"),
        "expires": expires,
    }
    # Only when given, so grants without a portrait keep their record (and its bytes).
    if "portrait_commitment" in body:
        terms["portrait_commitment"] = check_portrait_commitment(body["portrait_commitment"])
    return terms


def grant_is_live(grant: dict[str, Any], now: int) -> bool:
    return grant["status"] == "active" and grant["expires"] > now


def account_keys(account: Account) -> set[bytes]:
    """The account's key and the keys it moved away from (Account:RotateKey): a grant a
    retired key signed was made while that key was the account's (Grant:Create checks the key
    on record, and a move and a grant reading the same record cannot both commit: MVCC), so
    it stays the holder's consent until the holder revokes it with the current key."""
    retired = account.record.get("retired_keys", [])
    return {account.public_key, *(unb64(k, "retired key") for k in retired)}


def verify_stored_grant(grant: dict[str, Any], account: Account) -> None:
    """Re-check the holder's signature kept in the grant record (see the module docstring)."""
    request = parse_request(grant["request"])
    if request.action != "grant.create" or request.signer not in account_keys(account):
        raise BadSignature("grant was not signed by the account key on record")
    check_signature(request)
    stored = {k: grant[k] for k in (*_GRANT_TERMS, "portrait_commitment") if k in grant}
    if parse_grant_body(request.body) != stored:
        raise BadSignature("grant record differs from what the holder signed")


_GRANT_TERMS = ("account", "grant_id", "grantee_org", "grantee_role", "scope", "credential_id",
                "credential_type", "expires")


async def list_grants(ctx: Context, account: str) -> list[dict[str, Any]]:
    grants = []
    async for _key, value in ctx.stub.get_state_by_partial_composite_key(GRANT_OBJECT, [account]):
        grants.append(dict(json.loads(value)))
    return grants


async def find_grant(
    ctx: Context,
    credential: dict[str, Any],
    scope_: Scope,
    org: str,
    role: str | None,
    now: int,
) -> dict[str, Any] | None:
    """A live, holder-signed grant to (org, role) for `scope_` covering `credential`.

    AccessDenied if the subject account is closed: its grants ended with it.
    """
    account = await load_account(ctx, credential["subject_account"])
    if account.status != "open":
        raise AccessDenied("the holder closed this account: its grants have ended")
    for grant in await list_grants(ctx, account.pseudonym):
        if not grant_is_live(grant, now) or grant["scope"] != scope_.name:
            continue
        if grant["grantee_org"] != org:
            continue
        if grant["grantee_role"] is not None and grant["grantee_role"] != role:
            continue
        if grant["credential_id"] is not None:
            if grant["credential_id"] != credential["id"]:
                continue
        elif grant["credential_type"] != credential["type"]:
            continue
        verify_stored_grant(grant, account)
        return grant
    return None


class GrantContract(Contract):
    """Holder-signed grants: create, revoke, list."""

    name = "Grant"

    @transaction()
    async def Create(self, ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
        """Holder-signed ("grant.create") by the subject account's key."""
        require_staff(ctx, HOLDER_CARRIERS)
        account = await load_account(ctx, body_account(request))
        await account.require_usable(ctx)
        verified = await verify_holder_request(ctx, request, "grant.create",
                                               expected_signer=account.public_key)
        terms = parse_grant_body(verified.body)
        now = tx_unix_time(ctx)
        if not now < terms["expires"] <= now + MAX_GRANT_S:
            raise InvalidRequest(f"grant expiry must be in the future, at most {MAX_GRANT_S} s")
        if terms["credential_type"] is not None:
            issuer_org = credential_type(terms["credential_type"]).issuer_org
            if issuer_org != account.institution:
                # Credentials are bound to the account at their issuer: this would cover none.
                raise InvalidRequest(f"an account at {account.institution} holds no "
                                     f"{terms['credential_type']} credentials")
        if terms["credential_id"] is not None:
            credential = await load_credential(ctx, terms["credential_id"])
            if credential["subject_account"] != account.pseudonym:
                raise InvalidRequest("the credential belongs to another account")
            if not scope_covers_type(scope(terms["scope"]), credential["type"]):
                raise InvalidRequest(f"scope {terms['scope']} does not cover this credential")
        key = grant_key(account.pseudonym, terms["grant_id"])
        if await ctx.stub.get_state(key) is not None:
            raise Conflict("grant id already used for this account")
        grant = {**terms, "status": "active", "created": now, "updated": now,
                 "request": request}
        await put_json(ctx, key, grant)
        await record_access(ctx, account=account.pseudonym, action="grant.create",
                            credential_id=terms["credential_id"], scope=terms["scope"],
                            purpose=f"grant to {terms['grantee_org']}",
                            grant_id=terms["grant_id"])
        return grant

    @transaction()
    async def Revoke(self, ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
        """Holder-signed ("grant.revoke", {account, grant_id}); effective at once."""
        require_staff(ctx, HOLDER_CARRIERS)
        account = await load_account(ctx, body_account(request))
        verified = await verify_holder_request(ctx, request, "grant.revoke",
                                               expected_signer=account.public_key)
        if set(verified.body) != {"account", "grant_id"}:
            raise InvalidRequest("body must be {\"account\", \"grant_id\"}")
        key = grant_key(account.pseudonym, check_id(verified.body["grant_id"], "grant_id"))
        raw = await ctx.stub.get_state(key)
        if raw is None:
            raise NotFound("no such grant")
        grant = dict(json.loads(raw))
        if grant["status"] != "active":
            raise PreconditionFailed(f"grant is {grant['status']}")
        now = tx_unix_time(ctx)
        grant.update(status="revoked", updated=now, revoked=now)
        await put_json(ctx, key, grant)
        await record_access(ctx, account=account.pseudonym, action="grant.revoke",
                            credential_id=grant["credential_id"], scope=grant["scope"],
                            purpose="holder revoked grant", grant_id=grant["grant_id"])
        return grant

    @transaction(read_only=True)
    async def List(self, ctx: Context, request: dict[str, Any]) -> list[dict[str, Any]]:
        """Holder-signed ("grant.list", {account}): the account's grants, live or not."""
        require_staff(ctx, HOLDER_CARRIERS)
        account = await load_account(ctx, body_account(request))
        verify_holder_read(ctx, request, "grant.list", account)
        grants = await list_grants(ctx, account.pseudonym)
        now = tx_unix_time(ctx)
        for grant in grants:
            # A closed account's grants are all dead, though their records stay as they were.
            grant["live"] = account.status == "open" and grant_is_live(grant, now)
        return sorted(grants, key=lambda g: (g["created"], g["grant_id"]))

    @transaction(read_only=True)
    async def Get(self, ctx: Context, account: str, grant_id: str) -> dict[str, Any]:
        """One grant's terms, for staff of its grantee org: what the holder signed (the
        portrait commitment included), re-verified against the account key on record, and
        whether it is live now. Any other org is refused: a grant is the holder's business
        and its grantee's."""
        key = grant_key(check_id(account, "account"), check_id(grant_id, "grant_id"))
        raw = await ctx.stub.get_state(key)
        if raw is None:
            raise NotFound("no such grant")
        grant = dict(json.loads(raw))
        if caller(ctx).msp_id != grant["grantee_org"]:
            raise AccessDenied("only the grantee org reads a grant")
        holder = await load_account(ctx, account)
        verify_stored_grant(grant, holder)
        # An evaluate's timestamp is the client's choice, so the peer's clock counts too.
        now = max(tx_unix_time(ctx), int(time.time()))
        grant.pop("request")
        grant["live"] = holder.status == "open" and grant_is_live(grant, now)
        return grant
