"""Portrait keys: each member org's keys for the pharmacy face check's portrait.

A portrait (face_engine/portrait.py) is a face reference the account's enrolling org signs
and seals to one recipient org, which matches a live face against it with no key of the
enrolling org (docs/gateway.md, "Pharmacy face check: the portrait"). The recipient must know
which signing key speaks for the enrolling org, and the enrolling org which sealing key is
the recipient's, without trusting either org's word or a carrier: so each org's admin
registers both public keys here (`Portrait:RegisterKeys`), the record names the org from the
admin's certificate, and the write is under the chaincode's majority policy like every public
record (no key-level policy: one org alone cannot register or swap any org's keys, its own
included). A later registration replaces both (rotation): portraits signed or sealed under the
old keys name old key ids and are refused.

The portrait itself never comes here (it is biometric data, even sealed). Its commitment does:
the holder signs it into the grant (`portrait_commitment` in `Grant:Create`'s body,
chaincode/mip/grants.py), and the grantee reads it back with `Grant:Get`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from chaincode.mip.errors import InvalidRequest
from chaincode.mip.holder_auth import b64, tx_unix_time, unb64
from chaincode.mip.staff import require_staff
from chaincode.mip.verifier_keys import check_verifier_key, read_org_key_record
from chaincode.protocol.ids import portrait_key_id
from chaincode.shim import Context, Contract, create_composite_key, transaction

PORTRAIT_KEY_OBJECT = "mip.portraitkey"
ED25519_KEY_BYTES = 32
_HEX64 = re.compile(r"[0-9a-f]{64}")


def portrait_key_key(org: str) -> str:
    return create_composite_key(PORTRAIT_KEY_OBJECT, [org])


def check_portrait_commitment(value: Any) -> str:
    """A portrait commitment: hex SHA-256 of a portrait statement (salted; never a face)."""
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise InvalidRequest("portrait_commitment must be a hex sha256 (64 lowercase hex "
                             "chars)")
    return value


def check_signing_key(public_key: bytes) -> bytes:
    if len(public_key) != ED25519_KEY_BYTES:
        raise InvalidRequest(f"a portrait signing key is {ED25519_KEY_BYTES} raw Ed25519 bytes")
    try:
        Ed25519PublicKey.from_public_bytes(public_key)
    except ValueError:
        raise InvalidRequest("a portrait signing key must be an Ed25519 public key") from None
    return public_key


class PortraitContract(Contract):
    """Each member org's portrait signing and sealing keys: registered by its admin, read by
    any member."""

    name = "Portrait"

    @transaction()
    async def RegisterKeys(self, ctx: Context, signing_key: str,
                           sealing_key: str) -> dict[str, Any]:
        """Register (or rotate) the caller's org's Ed25519 signing key and X25519 sealing key
        (base64, 32 bytes each)."""
        staff = require_staff(ctx, {"admin"})
        signing = check_signing_key(unb64(signing_key, "signing_key"))
        sealing = unb64(sealing_key, "sealing_key")
        check_verifier_key(sealing, "a portrait sealing key")
        if signing == sealing:
            raise InvalidRequest("the signing and sealing keys must differ")
        record = {"org": staff.msp_id,
                  "signing_key": b64(signing),
                  "signing_key_id": portrait_key_id(staff.msp_id, "sign", signing),
                  "sealing_key": b64(sealing),
                  "sealing_key_id": portrait_key_id(staff.msp_id, "seal", sealing),
                  "registered": tx_unix_time(ctx)}
        await ctx.stub.put_state(portrait_key_key(staff.msp_id),
                                 json.dumps(record, sort_keys=True).encode())
        return record

    @transaction(read_only=True)
    async def GetKeys(self, ctx: Context, org: str) -> dict[str, Any]:
        """The org's current portrait key record."""
        return await read_org_key_record(ctx, org, portrait_key_key(org), "portrait keys",
                                         "portrait keys")
