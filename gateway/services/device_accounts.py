"""Accounts whose key is on the holder's own device: the desk's half of the wallet's pairing
(gateway/web/pages/wallet/, docs/gateway.md "Holder wallet").

1. `device_terms` (level-2 desk session, an institution of this gateway's org): the checks of
   an ordinary opening (services/accounts.py: KYC level, the unlock's live face still the
   passport's committed reference), a random pseudonym, and the live face enrolled as the
   account's protected reference. Returns the `account.open` body for the device to sign;
   the session keeps it (memory only) until it is used or the session ends.
2. `open_device_account`: the signed request must be `account.open` with exactly a body this
   session issued. The session's KYC wallet makes the presentation bound to the request's
   signer (the device's account key: anoncreds binds the public key, no private key needed),
   and the institution's gateway identity carries `Account:Open`. The contract verifies the
   device's signature and the binding as for any opening; a refused opening writes nothing
   and leaves the terms for a corrected retry. Terms never used have their references
   revoked when the session ends (HolderSession.wipe).

The account is not added to the holder's custodial directory: its key is not derived from the
vault's master secret, so no desk session can sign for it; the device lists it.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import TYPE_CHECKING, Any

import anyio

from gateway.core.errors import Conflict, InvalidRequest
from gateway.core.org_scope import require_own_org
from gateway.holder import keys

from .accounts import check_live_face
from .custody_client import RemoteHolderSession
from .faces import face_service
from .holder_requests import check_signed
from .holders import HolderSession
from .ledger_reads import json_object

if TYPE_CHECKING:
    from .state import AppState

log = logging.getLogger("mip.gateway.device_accounts")
# Terms a session may hold at once (each holds a face reference until used or the session
# ends): enough for a few institutions, not a way to mint references in bulk.
MAX_PENDING_TERMS = 4


async def device_terms(state: AppState, session: HolderSession, institution: str,
                       min_level: int = 2) -> dict[str, Any]:
    """The `account.open` body of a new account for the holder's device to sign."""
    session.require_level(2)
    if institution not in state.ledger.orgs():
        raise InvalidRequest("unknown institution (not a member org)", code="unknown_institution")
    require_own_org(state.settings, institution, "open accounts")
    if isinstance(session, RemoteHolderSession):
        # The KYC wallet is at the holder's enrolling org's gateway; its custody relay has no
        # step for a device key yet.
        raise Conflict("pair the device at the desk of the org that enrolled you",
                       code="device_pairing_unavailable")
    await check_live_face(state, session, min_level)
    if len(session.device_terms) >= MAX_PENDING_TERMS:
        raise Conflict("too many unsigned account terms in this session",
                       code="too_many_pending_terms")
    assert session.live is not None  # checked above
    pseudonym = keys.new_pseudonym()
    reference = face_service(state).enrol_reference(session.live, pseudonym, institution)
    terms = {"pseudonym": pseudonym, "institution": institution, "min_level": min_level,
             "face_commitment": reference.commitment}
    session.device_terms[pseudonym] = (terms, reference)
    return dict(terms)


async def open_device_account(state: AppState, session: HolderSession,
                              signed: dict[str, Any]) -> dict[str, Any]:
    """`Account:Open` with the device-signed request for terms this session issued."""
    session.require_level(2)
    body = signed.get("body")
    if not isinstance(body, dict) or not isinstance(body.get("pseudonym"), str):
        raise InvalidRequest("the signed request has no account terms", code="request_mismatch")
    pseudonym: str = body["pseudonym"]
    pending = session.device_terms.get(pseudonym)
    if pending is None:
        raise InvalidRequest("these account terms were not issued by this session",
                             code="request_mismatch")
    terms, _reference = pending
    check_signed(signed, "account.open", **terms)
    if set(body) != set(terms):
        raise InvalidRequest("the signed terms have extra fields", code="request_mismatch")
    try:
        signer = base64.b64decode(str(signed.get("signer")), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("signer must be base64") from None
    if len(signer) != 32:
        raise InvalidRequest("signer must be a 32-byte Ed25519 public key")
    holder_state = session.state
    presentation = await anyio.to_thread.run_sync(
        lambda: holder_state.wallet.present(signer, terms["pseudonym"], terms["min_level"]))
    record = json_object(await state.ledger.carrier(terms["institution"]).submit(
        "Account:Open", [json.dumps(signed), json.dumps(presentation)]))
    # Only once the ledger took it: a refused opening leaves the terms for a corrected retry.
    # The reference stays: it is now the account's committed reference.
    session.device_terms.pop(pseudonym, None)
    log.info("device-held account opened at %s", terms["institution"])
    return dict(record)

