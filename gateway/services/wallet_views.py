"""What a holder's own wallet (/wallet/) reads about itself: its passport and its accounts.

Every read here is authorised by a holder request signed on the device, never by an id
alone (an id is not a secret: it is on the ledger and in every record that names it):

- `account.view` {account}: signed by the account's key on the ledger.
- `account.find` {}: signed by a key the device derived; the contract (`Account:FindByKey`)
  checks the signature and answers the account that key speaks for (its `mip.accountkey`
  index), so a wallet rebuilds its account list from its passkey alone.
- `passport.view` {passport_id, link?}: signed by the device's passport key. That key is the
  passport's own where the passport was registered with it; for a desk-enrolled holder (the
  vault holds the ledger's passport key) the body carries `link`, a `passport.link_device`
  request {passport_id, device_key} signed by the passport's key on the ledger, which the
  holder's level-2 desk session makes once (`link_for_device`). The link is bound to the
  device's key, so it opens nothing by itself, and it names the ledger's current key, so a
  guardian recovery (`Passport:RotateKey`) voids it.

The gateway checks these signatures itself (reads are evaluates: nothing is ordered, so the
contract has no write to check them in), with the same bytes, channel and expiry rules as the
contract (chaincode/mip/grants.py, `verify_holder_read`); a replayed read request changes
nothing and shows only what its holder let whoever carries it see, until its expiry (at
most MAX_REQUEST_TTL_S). What is shown is the ledger's record, read with this gateway's own
identity: a dishonest member org can read these records anyway; an honest gateway shows them
only to the holder.
"""

from __future__ import annotations

import base64
import json
import time
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from chaincode.protocol.holder_requests import MAX_REQUEST_TTL_S, signing_payload
from gateway.core.errors import ApiError, Forbidden, Gone, InvalidRequest, Unauthenticated

from .holder_requests import check_signed
from .ledger_reads import account_record, json_object, public_reader

if TYPE_CHECKING:
    from gateway.holder.keys import HolderKeyPair

    from .state import AppState

PASSPORT_VIEW = "passport.view"
ACCOUNT_VIEW = "account.view"
ACCOUNT_FIND = "account.find"
_SHOWN = ("pseudonym", "institution", "status", "kyc_level", "opened", "closed")
DEVICE_LINK = "passport.link_device"
# A link is kept by the wallet (encrypted on the device) and used for every passport read:
# a year, after which the holder links again at a desk. It opens nothing without the device.
LINK_TTL_S = 365 * 24 * 3600
_FIELDS = {"action", "body", "nonce", "expires", "channel", "signer", "signature"}


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidRequest(f"{what} must be base64")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise InvalidRequest(f"{what} must be base64") from None


def verify_signed(signed: Any, action: str, channel: str, *,
                  max_ttl: int = MAX_REQUEST_TTL_S) -> bytes:
    """The signer (raw public key) of `signed` when it is a well-formed, unexpired `action`
    request for `channel` whose signature verifies; typed refusals otherwise."""
    if not isinstance(signed, dict) or set(signed) != _FIELDS:
        raise InvalidRequest("a signed request has exactly the fields "
                             f"{', '.join(sorted(_FIELDS))}")
    check_signed(signed, action)
    expires, nonce = signed["expires"], signed["nonce"]
    if not isinstance(expires, int) or isinstance(expires, bool) or not isinstance(nonce, str):
        raise InvalidRequest("the signed request needs an integer expires and a nonce")
    now = int(time.time())
    if expires < now:
        raise Gone("the signed request has expired", code="expired")
    if expires > now + max_ttl:
        raise InvalidRequest(f"this signed request may be valid for at most {max_ttl} s")
    if signed["channel"] != channel:
        raise InvalidRequest("the request was signed for another channel")
    signer = _b64(signed["signer"], "signer")
    signature = _b64(signed["signature"], "signature")
    try:
        Ed25519PublicKey.from_public_bytes(signer).verify(
            signature, signing_payload(action, signed["body"], nonce, expires, channel, signer))
    except (InvalidSignature, ValueError):
        raise Unauthenticated("the holder's signature does not verify",
                              code="bad_signature") from None
    return signer


def _key_of(record: dict[str, Any]) -> bytes:
    try:
        return base64.b64decode(str(record["public_key"]), validate=True)
    except (KeyError, ValueError):
        raise ApiError("the record has no usable key on the ledger", code="ledger_answer",
                       status=502) from None


async def account_view(state: AppState, signed: dict[str, Any], pseudonym: str
                       ) -> dict[str, Any]:
    """The account's ledger record for a signed `account.view` by its key on the ledger."""
    check_signed(signed, ACCOUNT_VIEW, account=pseudonym)
    signer = verify_signed(signed, ACCOUNT_VIEW, state.settings.channel)
    record = await account_record(state, pseudonym)
    if signer != _key_of(record):
        raise Unauthenticated("the request is not signed by the account's key on the ledger",
                              code="bad_signature")
    return {name: record[name] for name in _SHOWN if name in record}


async def account_find(state: AppState, signed: dict[str, Any]) -> dict[str, Any]:
    """The account the signing key speaks for (404 `not_found` where none), for a signed
    `account.find` {}: the contract verifies the signature and reads the key index."""
    check_signed(signed, ACCOUNT_FIND)
    if signed["body"] != {}:
        raise InvalidRequest("an account find's body is {}")
    record = json_object(await public_reader(state).evaluate(
        "Account:FindByKey", [json.dumps(signed, separators=(",", ":"))]))
    return {name: record[name] for name in _SHOWN if name in record}


async def passport_record(state: AppState, passport_id: str) -> dict[str, Any]:
    return json_object(await public_reader(state).evaluate("Passport:Get", [passport_id]))


def _check_link(state: AppState, link: Any, passport_id: str, ledger_key: bytes,
                device_key: bytes) -> None:
    """`link` is a `passport.link_device` for this passport and this device, signed by the
    passport's key on the ledger now."""
    signer = verify_signed(link, DEVICE_LINK, state.settings.channel, max_ttl=LINK_TTL_S)
    if signer != ledger_key:
        raise Unauthenticated("the device link is not signed by the passport's key on the "
                              "ledger (a recovery since? link the device again)",
                              code="bad_signature")
    body = link["body"]
    if body != {"passport_id": passport_id, "device_key": base64.b64encode(device_key).decode()}:
        raise Forbidden("the device link is for another passport or device",
                        code="request_mismatch")


async def passport_view(state: AppState, signed: dict[str, Any]) -> dict[str, Any]:
    """The holder's view of their passport for a signed `passport.view`."""
    check_signed(signed, PASSPORT_VIEW)
    body = signed["body"]
    passport_id = body.get("passport_id")
    if not isinstance(passport_id, str) or set(body) - {"passport_id", "link"}:
        raise InvalidRequest("a passport view's body is {passport_id, link?}")
    device_key = verify_signed(signed, PASSPORT_VIEW, state.settings.channel)
    record = await passport_record(state, passport_id)
    ledger_key = _key_of(record)
    if device_key != ledger_key:
        if "link" not in body:
            raise Unauthenticated("this device's key is not the passport's: link the device "
                                  "at a desk first", code="device_not_linked")
        _check_link(state, body["link"], passport_id, ledger_key, device_key)
    screening = record.get("screening") or {}
    provisional = screening.get("status") == "pending"
    return {
        "passport_id": record["id"], "status": record.get("status"),
        "status_reason": record.get("status_reason", ""),
        "kyc_level": record.get("kyc_level"), "provisional": provisional,
        "level_on_clear": screening.get("level_on_clear") if provisional else None,
        "enrolling_org": record.get("enrolling_org"), "created": record.get("created"),
        "guardians": list(record.get("guardians") or []),
        "guardian_threshold": record.get("guardian_threshold"),
        "vouches": record.get("vouches"), "device_key_is_passport_key": device_key == ledger_key,
    }


def link_for_device(passport_key: HolderKeyPair, passport_id: str, device_key: str,
                    channel: str) -> dict[str, Any]:
    """The `passport.link_device` the desk's level-2 session signs with the vault's passport
    key for the holder's device key (base64 Ed25519 public key)."""
    raw = _b64(device_key, "device_key")
    if len(raw) != 32:
        raise InvalidRequest("device_key must be a 32-byte Ed25519 public key (base64)")
    return passport_key.sign_request(DEVICE_LINK, {"passport_id": passport_id,
                                                   "device_key": device_key},
                                     channel, expires=int(time.time()) + LINK_TTL_S)
