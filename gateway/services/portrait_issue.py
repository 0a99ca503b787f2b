"""The enrolling org's side of the portrait: build, sign and seal it for a grant
(docs/gateway.md, "Pharmacy face check: the portrait", step 1).

At the gateway of the account's institution (the org that enrolled the account's reference),
for a grant of the pickup scope to an org that registered portrait keys: the account's
protected reference is opened only once it equals the account's `face_commitment` on the
ledger (`FaceService.committed_reference`, as every face check), its embedding is signed
with this org's portrait key into a statement bound to account, grant, recipient, that
commitment and an expiry (at most the grant's), and sealed to the recipient's sealing key
read from the ledger (`Portrait:GetKeys`). The statement's commitment goes into the grant
the holder signs; the sealed portrait goes back to the holder, who carries it to the counter.

No portrait is made (the grant goes on without one, and the pickup says `no_reference`) when
the scope is not the pickup's, the grantee registered no portrait keys, this gateway is not
the account's institution's, the institution's registered signing key is not this gateway's,
or this gateway holds no reference for the account. A stored reference that disagrees with
the ledger is 409 `face_reference_mismatch`, as everywhere.

Self-custody holders ask first (`prepare`, a `grant.portrait` request they signed with the
account key, checked here against the key on the ledger: the gateway builds a portrait only
for the account's holder, so no one else, the recipient included, can have a portrait of an
account made), then sign `grant.create` with the commitment themselves. At another member
org's gateway (the wallet served there), `prepare` relays the holder's signed request unchanged
to the account's institution's gateway over the peer channel (`POST /custody/portraits`,
signed by this gateway's service identity), which makes the portrait as above: the reference
and the portrait keys never leave the institution. The relaying gateway sees a portrait sealed
to the grantee and a commitment the grant puts on the ledger anyway; it cannot make one
itself (the statement is signed by the institution's portrait key, bound to account, grant
and recipient), only drop it, as any carrier can drop a request.
"""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from chaincode.protocol.holder_requests import MAX_REQUEST_TTL_S, signing_payload
from face_engine.portrait import MAX_PORTRAIT_TTL_S, seal
from gateway.core.errors import (
    ApiError,
    Conflict,
    Gone,
    InvalidRequest,
    NotFound,
    Unauthenticated,
)

from .custody_client import custody_client
from .faces import face_service
from .holder_requests import check_signed
from .ledger_reads import account_record, public_reader
from .portrait_keys import keys_record, portrait_keys, record_key

if TYPE_CHECKING:
    from .state import AppState

log = logging.getLogger("mip.gateway.portrait")

PICKUP_SCOPE = "medical.prescription"  # chaincode/protocol/scopes.py: what a pharmacy reads
PREPARE_ACTION = "grant.portrait"
_TERMS = ("account", "grant_id", "grantee_org", "scope", "expires")


@dataclass(frozen=True)
class IssuedPortrait:
    sealed: bytes
    commitment: str

    @property
    def sealed_b64(self) -> str:
        return base64.b64encode(self.sealed).decode()


async def portrait_for_grant(state: AppState, terms: dict[str, Any]) -> IssuedPortrait | None:
    """The sealed portrait for the grant `terms` (the `grant.create` body before the holder
    signs it), or None where none is made (module docstring)."""
    if terms.get("scope") != PICKUP_SCOPE:
        return None
    account, grantee = str(terms["account"]), str(terms["grantee_org"])
    reader = public_reader(state)
    try:
        recipient = await keys_record(reader, grantee)
    except NotFound:
        return None
    record = await account_record(state, account)
    institution = str(record["institution"])
    if state.settings.org is not None and institution != state.settings.org:
        return None  # another org's account: its own gateway signs (and carries) its grants
    keys = portrait_keys(state, institution)
    try:
        registered = await keys_record(reader, institution)
    except NotFound:
        log.warning("portrait keys of %s are not registered: grant made without a portrait",
                    institution)
        return None
    if registered["signing_key_id"] != keys.signing_key_id:
        log.warning("the ledger's portrait key of %s is not this gateway's: grant made "
                    "without a portrait", institution)
        return None
    faces = face_service(state)
    commitment = record.get("face_commitment")
    reference = faces.committed_reference(account, institution, commitment)
    if reference is None or not isinstance(commitment, str):
        return None
    embedding = await state.run_face(faces.protector.open_embedding, reference, account)
    now = int(time.time())
    expires = min(int(terms["expires"]), now + MAX_PORTRAIT_TTL_S)
    if expires <= now:
        raise Gone("the grant's expiry has passed", code="expired")
    issuer = keys.issuer()
    statement = issuer.build(
        embedding, account=account, grant_id=str(terms["grant_id"]), recipient_org=grantee,
        recipient_key_id=str(recipient["sealing_key_id"]), reference_commitment=commitment,
        issued_at=now, expires=expires)
    sealed = seal(issuer.sign(statement), record_key(recipient, "sealing_key"))
    log.info("portrait made for a grant to %s", grantee)
    return IssuedPortrait(sealed, statement.commitment)


def _check_holder_signature(signed: dict[str, Any], public_key: bytes, channel: str) -> None:
    """The `grant.portrait` request is the account holder's, fresh, for this channel."""
    now = int(time.time())
    expires, nonce = signed.get("expires"), signed.get("nonce")
    if not isinstance(expires, int) or isinstance(expires, bool) or not isinstance(nonce, str):
        raise InvalidRequest("the signed request needs expires and nonce")
    if expires < now:
        raise Gone("the signed request has expired", code="expired")
    if expires > now + MAX_REQUEST_TTL_S:
        raise InvalidRequest(f"a signed request may be valid for at most {MAX_REQUEST_TTL_S} s")
    if signed.get("channel") != channel:
        raise InvalidRequest("the request was signed for another channel")
    try:
        signer = base64.b64decode(str(signed.get("signer")), validate=True)
        signature = base64.b64decode(str(signed.get("signature")), validate=True)
    except ValueError:
        raise InvalidRequest("signer and signature must be base64") from None
    if signer != public_key:
        raise Unauthenticated("the request is not signed by the account's key on the ledger",
                              code="bad_signature")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            signature, signing_payload(PREPARE_ACTION, signed["body"], nonce, expires, channel,
                                       signer))
    except (InvalidSignature, ValueError):
        raise Unauthenticated("the holder's signature does not verify",
                              code="bad_signature") from None


async def prepare(state: AppState, signed: dict[str, Any], *, relay: bool = True
                  ) -> dict[str, Any]:
    """For a holder who signs on their own device: the portrait for the grant terms in a
    `grant.portrait` request they signed, and the `grant.create` body to sign with its
    commitment. 409 `no_portrait` where none is made. For another org's account, relayed to
    that org's gateway (`relay`; False for a request that was itself relayed here)."""
    check_signed(signed, PREPARE_ACTION)
    body = signed["body"]
    missing = [name for name in _TERMS if name not in body]
    if missing:
        raise InvalidRequest(f"the grant terms lack {', '.join(missing)}")
    if "portrait_commitment" in body:
        raise InvalidRequest("the terms to prepare carry no portrait_commitment yet")
    record = await account_record(state, str(body["account"]))
    if record.get("status") != "open":
        raise Conflict("the account is closed", code="account_closed")
    try:
        public_key = base64.b64decode(str(record["public_key"]), validate=True)
    except (KeyError, ValueError):
        raise Conflict("the account has no usable key on the ledger",
                       code="ledger_answer") from None
    _check_holder_signature(signed, public_key, state.settings.channel)
    institution = str(record.get("institution"))
    if state.settings.org is not None and institution != state.settings.org:
        if not relay:
            raise Conflict("this gateway is not the account's institution's",
                           code="no_portrait")
        return await _relayed(state, institution, signed)
    issued = await portrait_for_grant(state, body)
    if issued is None:
        raise Conflict("no portrait can be made for this grant here (scope, keys, or this "
                       "gateway holds no reference of the account)", code="no_portrait")
    return {"portrait": issued.sealed_b64, "portrait_commitment": issued.commitment,
            "grant_body": {**body, "portrait_commitment": issued.commitment}}


async def _relayed(state: AppState, institution: str, signed: dict[str, Any]
                   ) -> dict[str, Any]:
    """`prepare` at the account's institution's gateway, for the same signed request; its
    answer is checked to be a portrait for exactly these terms (the typed refusals, such as
    409 `no_portrait`, come back as they are)."""
    answer = await custody_client(state).call(institution, "/portraits",
                                              {"signed_request": signed})
    body = signed["body"]
    commitment = answer.get("portrait_commitment") if isinstance(answer, dict) else None
    if (not isinstance(commitment, str) or not isinstance(answer.get("portrait"), str)
            or answer.get("grant_body") != {**body, "portrait_commitment": commitment}):
        raise ApiError(f"{institution}'s gateway answered a portrait for other terms",
                       code="custodian_mismatch", status=502)
    return {"portrait": answer["portrait"], "portrait_commitment": commitment,
            "grant_body": answer["grant_body"]}
