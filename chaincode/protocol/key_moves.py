"""Moving a holder key: what both the current key and the new key sign.

A key move replaces the public key on record (an account's, `Account:RotateKey`, or a
passport's, `Passport:MoveKey`) with one the holder made elsewhere, typically on their own
device (the `/wallet/` page), so that whoever held the old key (the enrolling desk's custodial
vault) can no longer sign for the record. Two holder requests travel together, each with its
own nonce and expiry, over the same action and the same body:

- the *current* key's request: the record's owner agrees to hand it over to `new_public_key`;
- the *new* key's request: proof that whoever asks holds the new key (no one moves a record
  to a key they do not control, nor to someone else's public key).

The contract (chaincode/mip/key_moves.py) checks both; the gateway and the wallet build them
with these helpers.
"""

from __future__ import annotations

from typing import Any

ACCOUNT_ROTATE = "account.rotate"
PASSPORT_MOVE = "passport.move"


def account_rotate_body(pseudonym: str, new_public_key: str) -> dict[str, Any]:
    """Body of `account.rotate` (new_public_key: base64 of the raw Ed25519 key)."""
    return {"pseudonym": pseudonym, "new_public_key": new_public_key}


def passport_move_body(passport_id: str, new_public_key: str) -> dict[str, Any]:
    """Body of `passport.move` (new_public_key: base64 of the raw Ed25519 key)."""
    return {"passport_id": passport_id, "new_public_key": new_public_key}
