"""Holder key moves: `Account:RotateKey` and `Passport:MoveKey` check the same two requests.

A move replaces the key on record with a new one (the holder's device key, after the desk
custodied the old one: docs/gateway.md, "Moving desk keys to the device"). Two holder requests
(chaincode/protocol/key_moves.py) must both verify, as any holder request does
(`verify_holder_request`: signature, channel, expiry judged by the transaction's timestamp,
nonce used once):

- `request`, signed by the key on record: the owner hands the record over. A request signed by
  any other key (the new key alone, an attacker's) is `bad_signature`.
- `confirmation`, signed by the key the body names as `new_public_key`, over the same action
  and body: the new key's holder takes it. Without it (the old key alone, e.g. a desk that
  still holds the custodial key) the move is `bad_signature` too: no one hands a record to a
  key they do not hold, or to someone else's public key.

The new key must never have spoken for anything (`key_in_use`: passports, accounts, retired
keys); the old key is retired for good (key_index.py), so its custodial copy opens nothing
new. No key-level endorsement policy is set: the record stays under the chaincode's majority
(docs/chaincode.md, "Endorsement model"), so no single org, the desk's included, writes a
move alone, whatever its chaincode says.
"""

from __future__ import annotations

from typing import Any

from chaincode.mip.errors import BadSignature, Conflict, InvalidRequest
from chaincode.mip.holder_auth import unb64, verify_holder_request
from chaincode.mip.key_index import key_in_use
from chaincode.shim import Context


def _new_key(body: dict[str, Any]) -> bytes:
    raw = unb64(body.get("new_public_key"), "new_public_key")
    if len(raw) != 32:
        raise InvalidRequest("new_public_key must be a 32-byte Ed25519 public key (base64)")
    return raw


async def verify_key_move(ctx: Context, action: str, current_key: bytes, expected: dict[str, Any],
                          request: Any, confirmation: Any) -> bytes:
    """The new key, once both halves verified (their nonces recorded); a typed MipError
    otherwise. `expected` is the body with every field but `new_public_key` fixed by the
    transaction's arguments (the record's id)."""
    old_half = await verify_holder_request(ctx, request, action, expected_signer=current_key)
    body = old_half.body
    fields = set(expected) | {"new_public_key"}
    if set(body) != fields or any(body[name] != value for name, value in expected.items()):
        raise InvalidRequest(f"{action} body must be exactly {sorted(fields)} of this record")
    new_key = _new_key(body)
    if not isinstance(confirmation, dict) or confirmation.get("signer") != body[
            "new_public_key"]:
        raise BadSignature("the move is not confirmed by the new key (both the current and "
                           "the new key must sign)")
    new_half = await verify_holder_request(ctx, confirmation, action, expected_signer=new_key)
    if new_half.body != body:
        raise InvalidRequest("the new key confirmed another move")
    if await key_in_use(ctx, new_key):
        raise Conflict("the new key already speaks (or spoke) for a passport or an account")
    return new_key

