"""Holder-signed requests the gateway carries to the ledger.

A holder who keeps their own keys signs the canonical request
(chaincode/protocol/holder_requests.py)
on their device and sends it whole; the gateway checks only its shape and that it asks for
the action and the account the route is about (the contract verifies signature, channel,
expiry and nonce on every endorser), then carries it with its own `gateway` identity.

Carry-only across orgs: a per-org gateway carries such a request for an account at ANY
member org, with its own org's `gateway` identity (`carrier_for`). The contract's holder
routes accept a carrier of any member org (`HOLDER_CARRIERS`) and pin the signer to the
account's key on record, so the carrier can neither forge nor alter what it carries (any
change breaks the signature; a replay hits the nonce record). Nothing of the carrying org's
own keys or people is used: only its carrier identity, whose endorsement weighs nothing
the policy does not already count (docs/gateway.md, "One wallet at every org's gateway").
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING, Any

from gateway.core.errors import InvalidRequest
from gateway.fabric import Contract

from .ledger_reads import account_record

if TYPE_CHECKING:
    from .state import AppState

SIGNED_REQUEST_HEADER = "X-MIP-Signed-Request"
MAX_HEADER_CHARS = 16_384


def check_signed(signed: dict[str, Any], action: str, **expected: Any) -> dict[str, Any]:
    """`signed` if it asks for `action` with body fields equal to `expected`."""
    if signed.get("action") != action:
        raise InvalidRequest(f"the signed request must be for action {action!r}",
                             code="wrong_action")
    body = signed.get("body")
    if not isinstance(body, dict):
        raise InvalidRequest("the signed request has no body")
    for name, value in expected.items():
        if body.get(name) != value:
            raise InvalidRequest(f"the signed request's body.{name} does not match the "
                                 "request", code="request_mismatch")
    return signed


def decode_header(value: str) -> dict[str, Any]:
    """A signed request sent in the `X-MIP-Signed-Request` header (base64url of its JSON),
    for GET routes, which have no body."""
    if len(value) > MAX_HEADER_CHARS:
        raise InvalidRequest("signed request header too long")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        signed = json.loads(raw)
    except (binascii.Error, ValueError):
        raise InvalidRequest("the signed request header must be base64url of a JSON "
                             "object") from None
    if not isinstance(signed, dict):
        raise InvalidRequest("the signed request header must be base64url of a JSON object")
    return signed


def encode_header(signed: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(signed).encode()).decode().rstrip("=")


async def carrier_for(state: AppState, account: str) -> Contract:
    """The identity that carries a holder-signed request for `account` (404 for an unknown
    account): this gateway's own org's `gateway` identity on a per-org gateway, whatever the
    account's institution (carry-only: the holder's signature decides, see above); the
    account's institution's on an all-orgs gateway."""
    record = await account_record(state, account)
    return state.ledger.carrier(state.settings.org or str(record["institution"]))


def request_arg(signed: dict[str, Any]) -> str:
    return json.dumps(signed, separators=(",", ":"))
