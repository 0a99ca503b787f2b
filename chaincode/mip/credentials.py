"""Credentials: medical and education documents held privately, hashed publicly.

Content and salt arrive only as transient data and are stored only in the issuer's private data
collection (`medical` for hospitals, `education` for schools). The public record
(`mip.credential`) holds id, type, issuer org, subject account, the salted hash
sha256(salt || canonical content) in hex, status and timestamps, so anyone the holder gives
content and salt can check them against the ledger without reading private data.

Two transactions issue a credential, because the content may reach the issuer org's peers only
while public records must be endorsed by a majority of orgs (chaincode/protocol/deployment.py):
`Issue` writes the public record (salted hash, status) under the majority, with no transient
data; `Store` then writes content and salt to the collection, endorsed by the issuer org alone,
and only if they hash to the public record. Erasure is the same in reverse: `Erase` (majority)
makes the record a tombstone, `Purge` (issuer org) drops the content. A prescription's fill
counter (`mip.fills`) needs the issuer org and PharmacyMSP (`AND`).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

from chaincode.mip.accounts import require_current
from chaincode.mip.audit import record_access
from chaincode.mip.errors import (
    AccessDenied,
    Conflict,
    InvalidRequest,
    NotFound,
    PreconditionFailed,
)
from chaincode.mip.holder_auth import tx_unix_time, unb64, verify_holder_request
from chaincode.mip.passports import HOLDER_CARRIERS
from chaincode.mip.scopes import (
    COLLECTION_MEMBERS,
    MAX_FILLS,
    CredentialType,
    credential_type,
    validate_content,
)
from chaincode.mip.staff import PHARMACY, caller, require_staff
from chaincode.protocol.canonical import canonical_json
from chaincode.protocol.credential_terms import public_terms, salted_hash
from chaincode.shim import (
    Context,
    Contract,
    KeyEndorsementPolicy,
    PeerError,
    RoleType,
    create_composite_key,
    transaction,
)

CREDENTIAL_OBJECT = "mip.credential"
FILLS_OBJECT = "mip.fills"
ACCOUNT_OBJECT = "mip.account"  # written by chaincode/mip/accounts.py
PRIVATE_OBJECT = "mip.content"  # key of content + salt inside a private collection
MIN_SALT_BYTES = 16
MAX_ID_LENGTH = 128

ACTIVE, REVOKED, ERASED = "active", "revoked", "erased"


@dataclass(frozen=True)
class Account:
    pseudonym: str
    public_key: bytes  # raw Ed25519
    institution: str
    status: str
    record: dict[str, Any]

    async def require_usable(self, ctx: Context) -> None:
        """Open, and its KYC proof answers the issuer's latest revocation list: an account
        whose passport may have been revoked receives no new credentials or grants until it
        re-proves (Account:Reprove). Existing grants keep working (the holder's earlier
        consent), and revoking grants or erasing stays possible (they only take away)."""
        if self.status != "open":
            raise PreconditionFailed(f"account is {self.status}")
        await require_current(ctx, self.record)


def check_id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID_LENGTH or "\x00" in value:
        raise InvalidRequest(f"{what} must be a string of 1 to {MAX_ID_LENGTH} characters")
    return value


def credential_key(credential_id: str) -> str:
    return create_composite_key(CREDENTIAL_OBJECT, [credential_id])


def fills_key(credential_id: str) -> str:
    return create_composite_key(FILLS_OBJECT, [credential_id])


def private_key(credential_id: str) -> str:
    return create_composite_key(PRIVATE_OBJECT, [credential_id])


async def load_account(ctx: Context, pseudonym: str) -> Account:
    check_id(pseudonym, "account")
    raw = await ctx.stub.get_state(create_composite_key(ACCOUNT_OBJECT, [pseudonym]))
    if raw is None:
        raise NotFound("no such account")
    record = json.loads(raw)
    key = record.get("public_key")
    institution = record.get("institution")
    if not isinstance(institution, str):
        raise PreconditionFailed("account record has no institution")
    return Account(pseudonym, unb64(key, "account public key"), institution,
                   str(record.get("status", "open")), dict(record))


async def load_credential(ctx: Context, credential_id: str) -> dict[str, Any]:
    raw = await ctx.stub.get_state(credential_key(check_id(credential_id, "credential_id")))
    if raw is None:
        raise NotFound("no such credential")
    return dict(json.loads(raw))


async def load_fills(ctx: Context, credential_id: str) -> dict[str, Any]:
    raw = await ctx.stub.get_state(fills_key(credential_id))
    if raw is None:
        raise NotFound("no fill counter for this credential (not a prescription)")
    return dict(json.loads(raw))


async def put_json(ctx: Context, key: str, value: dict[str, Any]) -> None:
    await ctx.stub.put_state(key, json.dumps(value, sort_keys=True).encode())


def require_active(record: dict[str, Any]) -> None:
    status = record["status"]
    if status != ACTIVE:
        raise PreconditionFailed(f"credential is {status}")


def require_collection_member(ctx: Context, collection: str) -> str:
    """The client's org must be a member of `collection` before any private read or write."""
    org = caller(ctx).msp_id
    if org not in COLLECTION_MEMBERS[collection]:
        raise AccessDenied(f"organisation {org} is not a member of collection {collection}")
    return org


def transient_inputs(ctx: Context) -> tuple[bytes, bytes]:
    """Content (canonical JSON) and salt from the transient map; never from arguments."""
    transient = ctx.stub.get_transient()
    content, salt = transient.get("content"), transient.get("salt")
    if content is None or salt is None:
        raise InvalidRequest("content and salt must be passed as transient data")
    if len(salt) < MIN_SALT_BYTES:
        raise InvalidRequest(f"salt must be at least {MIN_SALT_BYTES} random bytes")
    return content, salt


def parse_content(ctype: CredentialType, content: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidRequest("content is not JSON") from exc
    validate_content(ctype, parsed)
    try:
        canonical = canonical_json(parsed)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from exc
    if canonical != content:
        # The hash is over exact bytes: a holder must be able to reproduce them.
        raise InvalidRequest("content must be canonical JSON (sorted keys, no spaces, UTF-8)")
    return dict(parsed)


# What a real Fabric 2.5 peer answers GET_STATE with when the hash of a private value is on
# its ledger but the value is not in its private store (not a collection member, or the value
# has not reached it): a peer error rather than the empty answer devnet gives.
_NO_PRIVATE_COPY = "private data matching public hash version is not available"


async def read_private(ctx: Context, record: dict[str, Any]) -> dict[str, Any]:
    """The stored content of `record`, checked against its public hash."""
    no_copy = PreconditionFailed(
        "this peer holds no copy of the content; evaluate on a peer of the issuer org"
    )
    try:
        raw = await ctx.stub.get_private_data(record["collection"], private_key(record["id"]))
    except PeerError as exc:
        if _NO_PRIVATE_COPY in str(exc):
            raise no_copy from None
        raise
    if raw is None:
        raise no_copy
    stored = json.loads(raw)
    content = canonical_json(stored["content"])
    if salted_hash(base64.b64decode(stored["salt"]), content) != record["hash"]:
        raise PreconditionFailed("stored content does not match the public hash")
    return dict(stored["content"])


def _hex_digest(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9a-f]{64}", value):
        raise InvalidRequest("content_hash must be a SHA-256 digest in lower-case hex")
    return value


def _fills_from_terms(ctype: CredentialType, terms: Any, now: int) -> dict[str, Any] | None:
    """The public fill counter a prescription's terms give (None for other types)."""
    if ctype.name != "prescription":
        if terms != {}:
            raise InvalidRequest(f"a {ctype.name} has no public terms")
        return None
    if not isinstance(terms, dict) or set(terms) != {"fills", "expiry"}:
        raise InvalidRequest('a prescription\'s terms are {"fills": n, "expiry": t}')
    fills, expiry = terms["fills"], terms["expiry"]
    if not isinstance(fills, int) or isinstance(fills, bool) or not 1 <= fills <= MAX_FILLS:
        raise InvalidRequest(f"fills must be an integer from 1 to {MAX_FILLS}")
    if not isinstance(expiry, int) or isinstance(expiry, bool) or expiry <= now:
        raise InvalidRequest("prescription.expiry must be in the future")
    return {"allowed": fills, "used": 0, "expires": expiry}


def public_view(record: dict[str, Any], fills: dict[str, Any] | None) -> dict[str, Any]:
    view = dict(record)
    if fills is not None:
        view["fills"] = fills
    return view


class CredentialContract(Contract):
    """Issue, verify, read (public part), revoke and erase credentials."""

    name = "Credential"

    @transaction()
    async def Issue(
        self, ctx: Context, credential_id: str, cred_type: str, subject_account: str,
        content_hash: str, terms: dict[str, Any],
    ) -> dict[str, Any]:
        """Publish a credential's public record: the salted hash of content the issuer keeps.

        Public writes only, endorsed under the chaincode's majority: the content never reaches
        these endorsers (they need not be collection members). `terms` is what a non-member
        peer needs to enforce later: `{}`, or for a prescription `{"fills": n, "expiry": t}`.
        The content itself follows in `Store`, checked against this hash.
        """
        check_id(credential_id, "credential_id")
        ctype = credential_type(cred_type)
        staff = require_staff(ctx, {ctype.issuer_role}, {ctype.issuer_org})
        account = await load_account(ctx, subject_account)
        await account.require_usable(ctx)
        if account.institution != staff.msp_id:
            raise AccessDenied("the subject account belongs to another institution")
        key = credential_key(credential_id)
        if await ctx.stub.get_state(key) is not None:
            raise Conflict("credential id already used")
        now = tx_unix_time(ctx)
        fills = _fills_from_terms(ctype, terms, now)
        record: dict[str, Any] = {
            "id": credential_id,
            "type": ctype.name,
            "collection": ctype.collection,
            "issuer_org": staff.msp_id,
            "subject_account": account.pseudonym,
            "hash": _hex_digest(content_hash),
            "status": ACTIVE,
            "issued": now,
            "updated": now,
        }
        await put_json(ctx, key, record)
        if fills is not None:
            # What a pharmacy peer (not a collection member) needs to enforce dispensing. The
            # counter needs the issuer org AND PharmacyMSP, stricter than the majority.
            await put_json(ctx, fills_key(credential_id), fills)
            both = KeyEndorsementPolicy()
            both.add_orgs(RoleType.PEER, staff.msp_id, PHARMACY)
            await ctx.stub.set_state_validation_parameter(fills_key(credential_id), both.policy())
        await record_access(ctx, account=account.pseudonym, action="issue",
                            credential_id=credential_id, scope=None, purpose="issue")
        return public_view(record, fills)

    @transaction()
    async def Store(self, ctx: Context, credential_id: str) -> dict[str, Any]:
        """Keep an issued credential's content; transient "content" (canonical JSON) and "salt".

        Writes the issuer's private collection only, so it is endorsed by the issuer org alone
        (the collection's endorsement policy) and the content reaches no other org. What it
        writes counts only where it matches the public hash a majority committed in `Issue`:
        every read checks it (`read_private`).
        """
        record = await load_credential(ctx, credential_id)
        ctype = credential_type(record["type"])
        require_staff(ctx, {ctype.issuer_role}, {record["issuer_org"]})
        require_collection_member(ctx, record["collection"])
        require_active(record)
        content_bytes, salt = transient_inputs(ctx)
        if salted_hash(salt, content_bytes) != record["hash"]:
            raise InvalidRequest("content and salt do not match the credential's public hash")
        content = parse_content(ctype, content_bytes)
        if ctype.name == "prescription":
            fills = await load_fills(ctx, credential_id)
            if {"fills": fills["allowed"], "expiry": fills["expires"]} != public_terms(
                    ctype.name, content):
                raise InvalidRequest("the prescription's refills or expiry differ from its "
                                     "public fill counter")
        private = {"content": content, "salt": base64.b64encode(salt).decode()}
        # Canonical bytes: every endorsing member peer must compute the same private hash.
        await ctx.stub.put_private_data(
            ctype.collection, private_key(credential_id), canonical_json(private)
        )
        return {"credential_id": credential_id, "stored": True}

    @transaction(read_only=True)
    async def Get(self, ctx: Context, credential_id: str) -> dict[str, Any]:
        """The public record (and fill counter for prescriptions)."""
        record = await load_credential(ctx, credential_id)
        fills = await load_fills(ctx, credential_id) if record["type"] == "prescription" else None
        return public_view(record, fills)

    @transaction(read_only=True)
    async def Verify(self, ctx: Context, credential_id: str) -> dict[str, Any]:
        """Check transient "content" + "salt" against the public hash (no private read)."""
        record = await load_credential(ctx, credential_id)
        content, salt = transient_inputs(ctx)
        valid = salted_hash(salt, content) == record["hash"]
        return {"credential_id": credential_id, "valid": valid, "status": record["status"]}

    @transaction()
    async def Revoke(self, ctx: Context, credential_id: str, reason: str) -> dict[str, Any]:
        """Revoke by the issuing role of the issuer org."""
        record = await load_credential(ctx, credential_id)
        ctype = credential_type(record["type"])
        require_staff(ctx, {ctype.issuer_role}, {record["issuer_org"]})
        if not isinstance(reason, str) or not 0 < len(reason) <= 512:
            raise InvalidRequest("reason must be 1 to 512 characters")
        require_active(record)
        record.update(status=REVOKED, revoked_reason=reason, updated=tx_unix_time(ctx))
        await put_json(ctx, credential_key(credential_id), record)
        await record_access(ctx, account=record["subject_account"], action="revoke",
                            credential_id=credential_id, scope=None, purpose=reason)
        return record

    @transaction()
    async def Erase(self, ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
        """Holder-signed ("credential.erase", {credential_id}): the record becomes a tombstone.

        Public writes only, under the chaincode's majority (the holder's signature is checked
        by honest endorsers). The issuer org then purges the content (`Purge`); from this
        commit on no read releases it, purged or not.
        """
        require_staff(ctx, HOLDER_CARRIERS)
        body = request.get("body") if isinstance(request, dict) else None
        if not isinstance(body, dict) or set(body) != {"credential_id"}:
            raise InvalidRequest("body must be {\"credential_id\": ...}")
        record = await load_credential(ctx, body["credential_id"])
        account = await load_account(ctx, record["subject_account"])
        await verify_holder_request(ctx, request, "credential.erase",
                                    expected_signer=account.public_key)
        if record["status"] == ERASED:
            raise PreconditionFailed("credential is already erased")
        now = tx_unix_time(ctx)
        record.update(status=ERASED, erased=now, updated=now)
        await put_json(ctx, credential_key(record["id"]), record)
        await record_access(ctx, account=account.pseudonym, action="erase",
                            credential_id=record["id"], scope=None, purpose="holder erasure")
        return record

    @transaction()
    async def Purge(self, ctx: Context, credential_id: str) -> dict[str, Any]:
        """Purge an erased credential's content from the issuer's collection (issuer org's
        gateway or issuing role; private writes only, endorsed by the issuer org alone)."""
        record = await load_credential(ctx, credential_id)
        ctype = credential_type(record["type"])
        require_staff(ctx, HOLDER_CARRIERS | {ctype.issuer_role}, {record["issuer_org"]})
        require_collection_member(ctx, record["collection"])
        if record["status"] != ERASED:
            raise PreconditionFailed("only an erased credential's content is purged")
        await ctx.stub.purge_private_data(record["collection"], private_key(record["id"]))
        return {"credential_id": credential_id, "purged": True}
