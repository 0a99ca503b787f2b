"""Moving what the desk custodies onto the holder's device (docs/gateway.md, "Moving desk
keys to the device"; the contract's side: chaincode/mip/key_moves.py).

A desk-opened account's key and the passport key are derived from the master secret the
enrolling org's vault wraps, so an unlocked desk session (and so that gateway, whenever the
holder unlocks there) can sign for them. A move hands each record to a key made on the holder's
device (the `/wallet/` page); both keys must sign it, so the flow is:

1. The desk (level-2 session at the enrolling org) shows *move terms*:
   `move_terms_account` / `move_terms_passport` ({move, action, pseudonym | passport_id,
   institution}). Nothing is kept: the terms only say what to sign.
2. The wallet derives its new key, signs the terms' action over
   {pseudonym | passport_id, new_public_key} with it (the *confirmation*), and the holder hands
   that to the desk.
3. `move_account` / `move_passport`: the gateway checks the confirmation's shape (action, body,
   signer = the body's new key), the session signs the *request* half with the custodial key
   over the same body, and carries both (`Account:RotateKey` / `Passport:MoveKey`). The
   contract verifies both signatures, nonces and expiries on every endorser.

Afterwards the directory entry is `moved`: the session signs nothing for it again (409
`account_moved`), and the ledger would refuse it anyway (the key on record is the device's).
Once the passport and every open account are moved, `retire_vault` marks the holder's vault
retired here: the custodial master secret then controls no passport and no open account on
the ledger (a closed account, which cannot move, keeps its take-away actions: grant revocation
and credential erasure), and this gateway never unlocks the vault again.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import TYPE_CHECKING, Any

from chaincode.protocol.encoding import b64
from chaincode.protocol.key_moves import (
    ACCOUNT_ROTATE,
    PASSPORT_MOVE,
    account_rotate_body,
    passport_move_body,
)
from gateway.core.errors import Conflict, InvalidRequest
from gateway.holder import keys

from .custody_client import RemoteHolderSession
from .holders import MOVED, HolderSession
from .ledger_reads import json_object

if TYPE_CHECKING:
    from .state import AppState

log = logging.getLogger("mip.gateway.key_moves")


def _at_custodian(session: HolderSession) -> None:
    session.require_level(2)
    if isinstance(session, RemoteHolderSession):
        # The custodial key is at the enrolling org's gateway; its relay signs no moves.
        raise Conflict("move keys at the desk of the org that enrolled you",
                       code="key_move_unavailable")


def check_confirmation(signed: dict[str, Any], action: str, **fixed: str) -> str:
    """The new key (base64) of a device-signed confirmation of `action` over exactly
    {**fixed, new_public_key}, signed by that new key. Only its shape: the contract verifies."""
    if signed.get("action") != action:
        raise InvalidRequest(f"the signed request must be for action {action!r}",
                             code="wrong_action")
    body = signed.get("body")
    if not isinstance(body, dict) or set(body) != {*fixed, "new_public_key"} or any(
            body.get(name) != value for name, value in fixed.items()):
        raise InvalidRequest("the signed request is not a move of this record",
                             code="request_mismatch")
    new_key = body["new_public_key"]
    try:
        raw = base64.b64decode(str(new_key), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("new_public_key must be base64", code="request_mismatch") from None
    if len(raw) != 32 or b64(raw) != new_key:
        raise InvalidRequest("new_public_key must be a 32-byte Ed25519 public key",
                             code="request_mismatch")
    if signed.get("signer") != new_key:
        raise InvalidRequest("the move must be signed by the new key (the device's)",
                             code="request_mismatch")
    return str(new_key)


def _open_entry(session: HolderSession, pseudonym: str) -> Any:
    entry = session.account(pseudonym)
    if entry.status == MOVED:
        raise Conflict("this account's key is already on the holder's device",
                       code="account_moved")
    if entry.status != "open":
        raise Conflict("this account is closed", code="account_closed")
    return entry


async def move_terms_account(session: HolderSession, pseudonym: str) -> dict[str, Any]:
    _at_custodian(session)
    entry = _open_entry(session, pseudonym)
    return {"move": "account", "action": ACCOUNT_ROTATE, "pseudonym": pseudonym,
            "institution": entry.institution}


async def move_account(state: AppState, session: HolderSession, pseudonym: str,
                       confirmation: dict[str, Any]) -> dict[str, Any]:
    """`Account:RotateKey`: the device's confirmation and the custodial key's request."""
    _at_custodian(session)
    entry = _open_entry(session, pseudonym)
    new_key = check_confirmation(confirmation, ACCOUNT_ROTATE, pseudonym=pseudonym)
    request = await session.signed(pseudonym, ACCOUNT_ROTATE,
                                   account_rotate_body(pseudonym, new_key))
    record = json_object(await state.ledger.carrier(entry.institution).submit(
        "Account:RotateKey", [pseudonym, json.dumps(request), json.dumps(confirmation)]))
    entry.status = MOVED
    await session.directory_changed(pseudonym)
    log.info("account at %s moved to the holder's device", entry.institution)
    return dict(record)


async def move_terms_passport(session: HolderSession) -> dict[str, Any]:
    _at_custodian(session)
    return {"move": "passport", "action": PASSPORT_MOVE, "passport_id": session.pid,
            "institution": session.enrolling_org}


async def move_passport(state: AppState, session: HolderSession,
                        confirmation: dict[str, Any]) -> dict[str, Any]:
    """`Passport:MoveKey`: the device's confirmation and the custodial passport key's
    request. Refused by the ledger (bad_signature) once the passport key is not the custodial
    one any more (moved already, or recovered by guardians to another key)."""
    _at_custodian(session)
    pid = session.pid
    new_key = check_confirmation(confirmation, PASSPORT_MOVE, passport_id=pid)
    request = await session.passport_signed(PASSPORT_MOVE, passport_move_body(pid, new_key))
    assert session.enrolling_org is not None
    record = json_object(await state.ledger.carrier(session.enrolling_org).submit(
        "Passport:MoveKey", [pid, json.dumps(request), json.dumps(confirmation)]))
    log.info("passport key moved to the holder's device")
    return dict(record)


async def retire_vault(state: AppState, session: HolderSession) -> dict[str, Any]:
    """Mark the holder's vault retired, once its master secret controls nothing on the
    ledger: the passport's key and every account's key on record differ from the keys it
    derives. Ends the session. 409 `custody_still_in_use` otherwise, naming what is left."""
    _at_custodian(session)
    pid, org = session.pid, session.enrolling_org
    assert org is not None
    carrier = state.ledger.carrier(org)
    left: list[str] = []
    passport = json_object(await carrier.evaluate("Passport:Get", [pid]))
    if passport.get("public_key") == keys.passport_key(session.master).public_b64:
        left.append("passport")
    for entry in session.accounts():
        if entry.status == MOVED:
            continue
        record = json_object(await carrier.evaluate("Account:Get", [entry.pseudonym]))
        custodial = keys.account_key(session.master, entry.institution, entry.index)
        if record.get("status") == "open" and record.get("public_key") == custodial.public_b64:
            left.append(f"account at {entry.institution}")
    if left:
        raise Conflict("the desk's key still controls: " + ", ".join(left) + "; move them "
                       "to the device first", code="custody_still_in_use")
    service = session.service
    with service.db.transaction() as conn:
        conn.execute("UPDATE holders SET status = 'retired' WHERE passport_id = ? AND "
                     "status = 'active'", (pid,))
    service.end_sessions_of(pid)
    log.info("custodial vault retired after the holder moved every key to their device")
    return {"passport_id": pid, "vault": "retired"}
