"""Isolated per-institution accounts: own key, random pseudonym, anonymous KYC proof.

An account record holds {pseudonym, public key, institution, proven level, opened, status,
proof digest, face commitment} and nothing that links it to a passport or to another account.
The face commitment is that of the protected face reference the gateway enrolled for this
account (keyed per account, salted: it links nothing); the holder signs it in the opening
request, so the gateway's pharmacy check can compare its stored reference with it. At opening the
holder proves with an anoncreds presentation (chaincode/mip/kyc_credentials.py) that some
passport of at least `min_level` stands behind it; the presentation's nonce is derived from the
account key and pseudonym, so it cannot be replayed for another account.

Every later action of the account is signed by the account key and checked against this
record (`verify_account_request`), so a leaked account key acts for that account alone.

`RotateKey` moves the account to a new key (the holder's device), signed by both the key on
record and the new one (chaincode/mip/key_moves.py). The old key is kept in `retired_keys`:
grants it signed while it was the account's key stay the holder's consent
(grants.verify_stored_grant); it signs nothing new.

Revocation: when its KYC credential definition supports revocation, an account proves
non-revocation at the issuer's latest published status list and records that list's
timestamp. After the issuer publishes a newer list (a passport was revoked), the account must
`Reprove` before it acts again (`require_current`), so a revoked passport's accounts stop.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from chaincode.mip.errors import (
    AccessDenied,
    Conflict,
    InvalidRequest,
    NotFound,
    PreconditionFailed,
)
from chaincode.mip.holder_auth import (
    HolderRequest,
    b64,
    tx_unix_time,
    unb64,
    verify_holder_request,
    verify_read_request,
)
from chaincode.mip.key_index import account_key_index, key_in_use, retire_key
from chaincode.mip.key_moves import verify_key_move
from chaincode.mip.kyc_credentials import (
    MAX_DOCUMENT_BYTES,
    IssuerDocuments,
    RevocationDocuments,
    VerifiedPresentation,
    check_issuer_documents,
    check_revocation_documents,
    org_of_cred_def_id,
    presentation_identifiers,
    verify_account_presentation,
)
from chaincode.mip.passports import (
    HOLDER_CARRIERS,
    check_face_commitment,
    claim_face_commitment,
    require_unused_face_commitment,
)
from chaincode.mip.staff import MEMBER_ORGS, caller, require_staff
from chaincode.protocol.key_moves import ACCOUNT_ROTATE
from chaincode.protocol.kyc import account_nonce, reprove_nonce
from chaincode.shim import (
    Context,
    Contract,
    create_composite_key,
    transaction,
)

ACCOUNT_OBJECT = "mip.account"
KYC_ISSUER_OBJECT = "mip.kycissuer"
KYC_REVOCATION_OBJECT = "mip.kycrevreg"
# How far ahead of the transaction time an issuer may date a status list (clock skew).
MAX_LIST_SKEW_S = 300
OPEN, CLOSED = "open", "closed"
_OPEN_FIELDS = {"pseudonym", "institution", "min_level", "face_commitment"}
_PSEUDONYM = re.compile(r"[0-9a-f]{64}")


def account_key(pseudonym: str) -> str:
    return create_composite_key(ACCOUNT_OBJECT, [pseudonym])


def _issuer_key(cred_def_id: str) -> str:
    return create_composite_key(KYC_ISSUER_OBJECT, [cred_def_id])


def check_pseudonym(pseudonym: Any) -> str:
    if not isinstance(pseudonym, str) or not _PSEUDONYM.fullmatch(pseudonym):
        raise InvalidRequest("pseudonym must be 64 lowercase hex characters (32 random bytes)")
    return pseudonym


async def load_account(ctx: Context, pseudonym: str) -> dict[str, Any]:
    """The account record (NotFound if there is none)."""
    raw = await ctx.stub.get_state(account_key(check_pseudonym(pseudonym)))
    if raw is None:
        raise NotFound(f"account {pseudonym} does not exist")
    record: dict[str, Any] = json.loads(raw)
    return record


async def _save(ctx: Context, record: dict[str, Any]) -> None:
    await ctx.stub.put_state(account_key(record["pseudonym"]),
                             json.dumps(record, sort_keys=True).encode())


async def require_current(ctx: Context, account: dict[str, Any]) -> None:
    """PreconditionFailed unless the account's KYC proof answers its issuer's latest
    revocation list (accounts of non-revocable issuers are always current)."""
    revocation = account.get("revocation")
    if revocation is None:
        return
    registry = await _registered_registry(ctx, revocation["rev_reg_id"])
    if registry is None or registry.timestamp != revocation["timestamp"]:
        raise PreconditionFailed("the KYC revocation list changed: the account must re-prove "
                                 "(Account:Reprove) before it acts")


async def verify_account_request(
    ctx: Context, pseudonym: str, raw: Any, action: str
) -> tuple[HolderRequest, dict[str, Any]]:
    """Check a request signed by the key of account `pseudonym` (open and current).

    Other contracts use this for every holder action taken through an account.
    """
    account = await load_account(ctx, pseudonym)
    if account["status"] != OPEN:
        raise PreconditionFailed("the account is closed")
    await require_current(ctx, account)
    request = await verify_holder_request(
        ctx, raw, action, expected_signer=unb64(account["public_key"], "public_key")
    )
    return request, account


async def _registered_issuer(ctx: Context, cred_def_id: str) -> IssuerDocuments | None:
    raw = await ctx.stub.get_state(_issuer_key(cred_def_id))
    if raw is None:
        return None
    record = json.loads(raw)
    return IssuerDocuments(record["org"], record["schema_id"], record["cred_def_id"],
                           record["schema"], record["cred_def"])


def _registry_key(identifier: str) -> str:
    return create_composite_key(KYC_REVOCATION_OBJECT, [identifier])


async def _registered_registry(ctx: Context, identifier: str) -> RevocationDocuments | None:
    raw = await ctx.stub.get_state(_registry_key(identifier))
    if raw is None:
        return None
    record = json.loads(raw)
    return RevocationDocuments(record["rev_reg_id"], record["cred_def_id"],
                               record["rev_reg_def"], record["status_list"])


async def _verify(
    ctx: Context, presentation: dict[str, Any], nonce: str, min_level: int
) -> VerifiedPresentation:
    if len(json.dumps(presentation)) > MAX_DOCUMENT_BYTES:
        raise InvalidRequest(f"presentation is larger than {MAX_DOCUMENT_BYTES} bytes")
    ident = presentation_identifiers(presentation)[0]
    cred_def_id = str(ident.get("cred_def_id"))
    org_of_cred_def_id(cred_def_id)
    issuer = await _registered_issuer(ctx, cred_def_id)
    issuers = {cred_def_id: issuer} if issuer is not None else {}
    revocation: dict[str, RevocationDocuments] = {}
    if isinstance(ident.get("rev_reg_id"), str):
        registry = await _registered_registry(ctx, ident["rev_reg_id"])
        if registry is not None:
            revocation[registry.rev_reg_id] = registry
    # CL verification takes tens of milliseconds of native code: run it off the event loop
    # so the chaincode keeps serving other transactions meanwhile.
    return await asyncio.to_thread(
        verify_account_presentation, presentation, nonce, min_level, issuers, revocation
    )


def _revocation_field(verified: VerifiedPresentation) -> dict[str, Any] | None:
    if verified.rev_reg_id is None:
        return None
    return {"rev_reg_id": verified.rev_reg_id, "timestamp": verified.revocation_time}


class AccountContract(Contract):
    """KYC issuers' public keys, anonymous account opening, account lookup and closing."""

    name = "Account"

    @transaction()
    async def RegisterKycIssuer(
        self, ctx: Context, schema_json: str, cred_def_json: str
    ) -> dict[str, Any]:
        """Publish the caller org's KYC schema and credential definition (admin; public parts)."""
        staff = require_staff(ctx, {"admin"})
        documents = check_issuer_documents(staff.msp_id, schema_json, cred_def_json)
        key = _issuer_key(documents.cred_def_id)
        if await ctx.stub.get_state(key) is not None:
            raise Conflict(f"{documents.cred_def_id} is already registered; use a new tag")
        record = {
            "org": staff.msp_id,
            "schema_id": documents.schema_id,
            "cred_def_id": documents.cred_def_id,
            "schema": documents.schema,
            "cred_def": documents.cred_def,
            "registered": tx_unix_time(ctx),
        }
        # No key-level policy (here and on revocation registries): an org's KYC issuer record
        # stays under the chaincode's majority, so the org cannot swap it alone either.
        await ctx.stub.put_state(key, json.dumps(record, sort_keys=True).encode())
        return {"org": staff.msp_id, "schema_id": documents.schema_id,
                "cred_def_id": documents.cred_def_id}

    @transaction(read_only=True)
    async def ListKycIssuers(self, ctx: Context) -> list[dict[str, Any]]:
        """Registered KYC issuers with their public documents (what holders present against)."""
        issuers = []
        async with ctx.stub.get_state_by_partial_composite_key(KYC_ISSUER_OBJECT, []) as results:
            async for _key, value in results:
                issuers.append(json.loads(value))
        return issuers

    @transaction()
    async def PublishKycRevocation(
        self, ctx: Context, rev_reg_def_json: str, status_list_json: str
    ) -> dict[str, Any]:
        """Publish (first time) a revocation registry of the caller org's revocable KYC
        credential definition, or (later) its newer status list (admin)."""
        staff = require_staff(ctx, {"admin"})
        try:
            cred_def_id = str(json.loads(rev_reg_def_json).get("credDefId"))
        except (json.JSONDecodeError, AttributeError) as exc:
            raise InvalidRequest("revocation registry definition is not a JSON object") from exc
        if org_of_cred_def_id(cred_def_id) != staff.msp_id:
            raise InvalidRequest("the registry belongs to another org's credential definition")
        issuer = await _registered_issuer(ctx, cred_def_id)
        if issuer is None:
            raise NotFound(f"{cred_def_id} is not registered")
        documents = check_revocation_documents(issuer, rev_reg_def_json, status_list_json)
        key = _registry_key(documents.rev_reg_id)
        previous = await _registered_registry(ctx, documents.rev_reg_id)
        now = tx_unix_time(ctx)
        if documents.timestamp > now + MAX_LIST_SKEW_S:
            raise InvalidRequest("status list is dated in the future")
        if previous is not None:
            if previous.rev_reg_def != documents.rev_reg_def:
                raise Conflict("the registry definition of this id cannot change")
            if documents.timestamp <= previous.timestamp:
                raise InvalidRequest("status list must be newer than the published one")
        record = {"org": staff.msp_id, "rev_reg_id": documents.rev_reg_id,
                  "cred_def_id": cred_def_id, "rev_reg_def": documents.rev_reg_def,
                  "status_list": documents.status_list, "updated": now}
        await ctx.stub.put_state(key, json.dumps(record, sort_keys=True).encode())
        return {"rev_reg_id": documents.rev_reg_id, "timestamp": documents.timestamp}

    @transaction(read_only=True)
    async def GetKycRevocation(self, ctx: Context, rev_reg_id: str) -> dict[str, Any]:
        """A published revocation registry with its latest status list (what holders prove
        non-revocation against)."""
        registry = await _registered_registry(ctx, rev_reg_id)
        if registry is None:
            raise NotFound(f"{rev_reg_id} is not published")
        return {"rev_reg_id": registry.rev_reg_id, "cred_def_id": registry.cred_def_id,
                "rev_reg_def": registry.rev_reg_def, "status_list": registry.status_list}

    @transaction()
    async def Open(
        self, ctx: Context, request: dict[str, Any], presentation: dict[str, Any]
    ) -> dict[str, Any]:
        """Open an account: `request` signed by the new ACCOUNT key (account.open, body
        {pseudonym, institution, min_level, face_commitment}), `presentation` proving
        kyc_level >= min_level. The face commitment (of the account's protected reference)
        is required and used once, like a passport's."""
        require_staff(ctx, HOLDER_CARRIERS)
        holder = await verify_holder_request(ctx, request, "account.open")
        body = holder.body
        if set(body) != _OPEN_FIELDS:
            raise InvalidRequest(f"open body must be exactly {sorted(_OPEN_FIELDS)}")
        face_commitment = check_face_commitment(body["face_commitment"])
        pseudonym = check_pseudonym(body["pseudonym"])
        institution = body["institution"]
        if institution not in MEMBER_ORGS:
            raise InvalidRequest(f"institution must be one of {sorted(MEMBER_ORGS)}")
        min_level = body["min_level"]
        if min_level not in (1, 2, 3) or isinstance(min_level, bool):
            raise InvalidRequest("min_level must be 1, 2 or 3")
        if await ctx.stub.get_state(account_key(pseudonym)) is not None:
            raise Conflict("this pseudonym is taken")
        if await key_in_use(ctx, holder.signer):
            raise Conflict("this key already speaks for a passport or an account")
        await require_unused_face_commitment(ctx, face_commitment)
        verified = await _verify(ctx, presentation, account_nonce(holder.signer, pseudonym),
                                 min_level)
        record = {
            "pseudonym": pseudonym,
            "public_key": b64(holder.signer),
            "institution": institution,
            "kyc_level": min_level,
            "status": OPEN,
            "opened": tx_unix_time(ctx),
            "proof_digest": verified.digest,
            "revocation": _revocation_field(verified),
            "face_commitment": face_commitment,
        }
        await _save(ctx, record)
        await ctx.stub.put_state(account_key_index(holder.signer), pseudonym.encode())
        await claim_face_commitment(ctx, face_commitment, pseudonym)
        return record

    @transaction(read_only=True)
    async def Get(self, ctx: Context, pseudonym: str) -> dict[str, Any]:
        """The public account record (any member-org identity): e.g. for a linkage verifier."""
        if caller(ctx).msp_id not in MEMBER_ORGS:
            raise AccessDenied("only member organisations read accounts")
        return await load_account(ctx, pseudonym)

    @transaction(read_only=True)
    async def FindByKey(self, ctx: Context, request: dict[str, Any]) -> dict[str, Any]:
        """The account a key speaks for, for a holder-signed ("account.find", body {}) request
        by that key: a wallet that re-derives its keys from its passkey (another browser,
        another org's gateway, a wiped device) finds its pseudonyms again through the
        `mip.accountkey` index (NotFound where the key speaks for none). Only the key's
        holder can ask, so the gateway that carries it shows an account to no one else."""
        require_staff(ctx, HOLDER_CARRIERS)
        holder = verify_read_request(ctx, request, "account.find")
        if holder.body != {}:
            raise InvalidRequest("find body must be empty ({})")
        pseudonym = await ctx.stub.get_state(account_key_index(holder.signer))
        if pseudonym is None:
            raise NotFound("this key speaks for no account")
        return await load_account(ctx, pseudonym.decode())

    @transaction()
    async def Reprove(
        self, ctx: Context, pseudonym: str, request: dict[str, Any], presentation: dict[str, Any]
    ) -> dict[str, Any]:
        """Re-prove the account's KYC level against the latest revocation list: `request`
        signed by the account key (account.reprove, body {pseudonym})."""
        require_staff(ctx, HOLDER_CARRIERS)
        account = await load_account(ctx, pseudonym)
        if account["status"] != OPEN:
            raise PreconditionFailed("the account is closed")
        holder = await verify_holder_request(
            ctx, request, "account.reprove", expected_signer=unb64(account["public_key"], "key"))
        if holder.body != {"pseudonym": pseudonym}:
            raise InvalidRequest("reprove body must be exactly {pseudonym} of this account")
        revocation = account.get("revocation")
        if revocation is None:
            raise PreconditionFailed("the account's credential is not revocable")
        registry = await _registered_registry(ctx, revocation["rev_reg_id"])
        if registry is None:
            raise NotFound("the account's revocation registry is gone")
        # Any registry of the account's issuer: an issuer rolls over to a new registry when
        # one fills, so a credential re-issued after a demotion or upgrade may be in a newer
        # one. The nonce is bound to the list the presentation answers (the same list as
        # the account's when the registry is the same).
        presented = await _registered_registry(
            ctx, str(presentation_identifiers(presentation)[0].get("rev_reg_id")))
        if presented is not None and presented.cred_def_id != registry.cred_def_id:
            raise InvalidRequest("re-prove with a credential of the issuer the account was "
                                 "opened with")
        answered = (presented or registry).timestamp
        verified = await _verify(
            ctx, presentation, reprove_nonce(holder.signer, pseudonym, answered),
            account["kyc_level"])
        if verified.cred_def_id != registry.cred_def_id:
            raise InvalidRequest("re-prove with a credential of the issuer the account was "
                                 "opened with")
        account["revocation"] = _revocation_field(verified)
        account["reproved"] = tx_unix_time(ctx)
        await _save(ctx, account)
        return account

    @transaction()
    async def Close(self, ctx: Context, pseudonym: str, request: dict[str, Any]) -> dict[str, Any]:
        """Close an account at the holder's request signed by the account key (account.close).

        Its grants end with it: every grant use checks the account is open (grants.py). The
        holder may still list and revoke its grants and read its access log."""
        require_staff(ctx, HOLDER_CARRIERS)
        holder, account = await verify_account_request(ctx, pseudonym, request, "account.close")
        if holder.body != {"pseudonym": pseudonym}:
            raise InvalidRequest("close body must be exactly {pseudonym} of this account")
        account["status"] = CLOSED
        account["closed"] = tx_unix_time(ctx)
        await _save(ctx, account)
        return account

    @transaction()
    async def RotateKey(self, ctx: Context, pseudonym: str, request: dict[str, Any],
                        confirmation: dict[str, Any]) -> dict[str, Any]:
        """Move an open account to a new key: `request` signed by the account key on record
        and `confirmation` by the new key, both `account.rotate` over the same body
        {pseudonym, new_public_key} (chaincode/mip/key_moves.py). No key-level policy: the
        record stays under the chaincode's majority, like every account write."""
        require_staff(ctx, HOLDER_CARRIERS)
        account = await load_account(ctx, pseudonym)
        if account["status"] != OPEN:
            raise PreconditionFailed("the account is closed")
        old_key = unb64(account["public_key"], "public_key")
        new_key = await verify_key_move(ctx, ACCOUNT_ROTATE, old_key, {"pseudonym": pseudonym},
                                        request, confirmation)
        account["retired_keys"] = [*account.get("retired_keys", []), account["public_key"]]
        account["public_key"] = b64(new_key)
        account["rotated"] = tx_unix_time(ctx)
        await _save(ctx, account)
        await ctx.stub.del_state(account_key_index(old_key))
        await retire_key(ctx, old_key)
        await ctx.stub.put_state(account_key_index(new_key), pseudonym.encode())
        return account
