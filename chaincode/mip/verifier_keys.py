"""Linkage verifier keys: one X25519 key per member org, for designated-verifier linkage proofs.

A linkage proof (gateway/holder/linkage_proof.py) is designated to whoever holds the private half of
one X25519 key. Which key that is must not be up to a client: a key handed over by a third
party or a man in the middle would designate the proof to someone the holder never chose. So
each member org's admin registers its org's key here (`Linkage:RegisterVerifierKey`), the
record names the org from the submitter's certificate (an admin can register a key only for
their own org), the write goes through the chaincode's endorsement policy like any other, and
a holder's gateway reads the key of the org the holder names (`Linkage:GetVerifierKey`).

The proof itself never comes here: it travels off-chain from the holder to the verifier org,
whose own gateway keeps the private key and checks the proof against `Account:Get` records.
A later registration by the same org replaces the key (rotation); proofs made for the old key
then name an old `verifier_id` and no longer verify.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from chaincode.mip.errors import AccessDenied, InvalidRequest, NotFound
from chaincode.mip.holder_auth import b64, tx_unix_time, unb64
from chaincode.mip.staff import MEMBER_ORGS, caller, require_staff
from chaincode.protocol.ids import verifier_id_for
from chaincode.shim import Context, Contract, create_composite_key, transaction

VERIFIER_KEY_OBJECT = "mip.linkagekey"
X25519_KEY_BYTES = 32
# A fixed scalar to test a key against: the exchange gives the all-zero secret (and
# cryptography raises) exactly for the low-order points, whatever the scalar, so a constant
# keeps the check deterministic across endorsers.
_PROBE = X25519PrivateKey.from_private_bytes(hashlib.sha256(b"MIP-LINKAGE-KEY-PROBE").digest())


def verifier_key_key(org: str) -> str:
    return create_composite_key(VERIFIER_KEY_OBJECT, [org])


async def read_org_key_record(ctx: Context, org: str, key: str, plural: str,
                             singular: str) -> dict[str, Any]:
    """An org's key record (one per org, written by its admin) for any member org's reader:
    the linkage verifier key here, the portrait keys (chaincode/mip/portraits.py)."""
    if caller(ctx).msp_id not in MEMBER_ORGS:
        raise AccessDenied(f"only member organisations read {plural}")
    if org not in MEMBER_ORGS:
        raise InvalidRequest(f"org must be one of {sorted(MEMBER_ORGS)}")
    raw = await ctx.stub.get_state(key)
    if raw is None:
        raise NotFound(f"{org} has registered no {singular}")
    record: dict[str, Any] = json.loads(raw)
    return record


def check_verifier_key(public_key: bytes, what: str = "a verifier key") -> X25519PublicKey:
    """`public_key` as an X25519 key that gives a real shared secret, else InvalidRequest
    (`what` names the key in the message; portrait sealing keys are checked here too)."""
    if len(public_key) != X25519_KEY_BYTES:
        raise InvalidRequest(f"{what} is {X25519_KEY_BYTES} raw X25519 bytes")
    key = X25519PublicKey.from_public_bytes(public_key)
    try:
        _PROBE.exchange(key)
    except ValueError:
        raise InvalidRequest(f"{what} must not be a low-order point") from None
    return key


class LinkageContract(Contract):
    """Each member org's linkage verifier key: registered by its admin, read by any member."""

    name = "Linkage"

    @transaction()
    async def RegisterVerifierKey(self, ctx: Context, public_key: str) -> dict[str, Any]:
        """Register (or rotate) the caller's org's X25519 verifier key (base64, 32 bytes)."""
        staff = require_staff(ctx, {"admin"})
        raw = unb64(public_key, "public_key")
        check_verifier_key(raw)
        record = {"org": staff.msp_id, "public_key": b64(raw),
                  "verifier_id": verifier_id_for(staff.msp_id, raw),
                  "registered": tx_unix_time(ctx)}
        await ctx.stub.put_state(verifier_key_key(staff.msp_id),
                                 json.dumps(record, sort_keys=True).encode())
        return record

    @transaction(read_only=True)
    async def GetVerifierKey(self, ctx: Context, org: str) -> dict[str, Any]:
        """The org's current verifier key record."""
        return await read_org_key_record(ctx, org, verifier_key_key(org),
                                         "verifier keys", "linkage verifier key")
