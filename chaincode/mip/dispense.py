"""Dispensing against a prescription, one fill at a time, after a face check at the counter.

Who may dispense: a `pharmacist` of PharmacyMSP, holding a live `medical.prescription` grant
from the holder to PharmacyMSP, with a fresh face-verification attestation bound to this
prescription, subject account and pharmacist: the attestation's `pharmacist` must be the
transaction creator's own identity string (chaincode.protocol.attestation), so only the
pharmacist whose counter ran the face check can spend it, and the dispense's access record
names them (`details.pharmacist`, with the counter key's id in `details.counter_key`).

The attestation is signed (ECDSA P-256, SHA-256) by a pharmacy gateway key that a PharmacyMSP
admin registered on the ledger (`Pharmacy:RegisterGatewayKey`, endorsed under the chaincode's
majority policy, whose honest endorsers check that a PharmacyMSP admin asked) and that a
PharmacyMSP admin can revoke (`Pharmacy:RevokeGatewayKey`; a revoked key's attestations are
refused, and no single org can set it back to active). The chaincode cannot validate an X.509
chain against the pharmacy's MSP (a chaincode sees no channel MSP configuration), but it can
check a signature against a key registered that way: a pharmacist therefore cannot fake a face
match by signing with their own Fabric identity, and no other org can register a counter key.

The fill counter (`mip.fills`) needs the issuing hospital's and PharmacyMSP's endorsement
(`AND`, stricter than the majority), so the client submits with
`endorsing_orgs=[issuer org, "PharmacyMSP"]` (also a majority, for the new access record). Only
public state is read here (the pharmacy peer holds no medical content). Two concurrent
dispenses read the same counter version, so at most one of them commits (MVCC), and a fill is
taken once.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chaincode.mip.audit import record_access
from chaincode.mip.credentials import (
    check_id,
    fills_key,
    load_credential,
    load_fills,
    put_json,
    require_active,
)
from chaincode.mip.errors import (
    AccessDenied,
    BadSignature,
    Conflict,
    Expired,
    InvalidRequest,
    NotFound,
    PreconditionFailed,
    Replay,
)
from chaincode.mip.grants import find_grant
from chaincode.mip.holder_auth import tx_unix_time, unb64
from chaincode.mip.scopes import SCOPES
from chaincode.mip.staff import PHARMACY, Staff, require_staff
from chaincode.protocol.attestation import MAX_PHARMACIST_ID, PAYLOAD_FIELDS, attestation_bytes
from chaincode.shim import (
    Context,
    Contract,
    create_composite_key,
    transaction,
)

GATEWAY_KEY_OBJECT = "mip.gatewaykey"
ATTESTATION_NONCE_OBJECT = "mip.attnonce"
ATTESTATION_MAX_AGE_S = 120
CLOCK_SKEW_S = 30


def gateway_key_key(key_id: str) -> str:
    return create_composite_key(GATEWAY_KEY_OBJECT, [key_id])


def load_ec_public_key(pem: str) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise InvalidRequest("public_key_pem is not a PEM public key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise InvalidRequest("gateway keys must be ECDSA P-256")
    return key


async def check_attestation(
    ctx: Context, attestation: dict[str, Any], credential: dict[str, Any], pharmacist: Staff
) -> dict[str, Any]:
    """Verify the face attestation, that it names `pharmacist` (the transaction's creator)
    as the staff member who ran the check, and burn its nonce; return its payload."""
    if not isinstance(attestation, dict) or set(attestation) != {"payload", "signature"}:
        raise InvalidRequest("attestation must be {\"payload\": {...}, \"signature\": base64}")
    payload = attestation["payload"]
    if not isinstance(payload, dict) or set(payload) != PAYLOAD_FIELDS:
        raise InvalidRequest(f"attestation payload must have exactly {sorted(PAYLOAD_FIELDS)}")
    named = payload["pharmacist"]
    if not isinstance(named, str) or not 0 < len(named) <= MAX_PHARMACIST_ID:
        raise InvalidRequest("attestation pharmacist must be an identity string")
    key_id = check_id(payload["key_id"], "attestation key_id")
    nonce = payload["nonce"]
    if not isinstance(nonce, str) or not 16 <= len(nonce) <= 128:
        raise InvalidRequest("attestation nonce must be 16 to 128 characters")
    issued_at = payload["issued_at"]
    if not isinstance(issued_at, int) or isinstance(issued_at, bool):
        raise InvalidRequest("attestation issued_at must be an integer (unix seconds)")
    raw_key = await ctx.stub.get_state(gateway_key_key(key_id))
    if raw_key is None:
        raise BadSignature("attestation key is not a registered pharmacy gateway key")
    key_record = json.loads(raw_key)
    if key_record["status"] == "revoked":
        raise BadSignature("attestation key was revoked by the pharmacy")
    if key_record["org"] != PHARMACY or key_record["status"] != "active":
        raise BadSignature("attestation key is not an active pharmacy gateway key")
    try:
        load_ec_public_key(key_record["public_key_pem"]).verify(
            unb64(attestation["signature"], "attestation signature"),
            attestation_bytes(payload),
            ec.ECDSA(hashes.SHA256()),
        )
    except InvalidSignature as exc:
        raise BadSignature("attestation signature does not verify") from exc
    if payload["credential_id"] != credential["id"] or (
        payload["subject_account"] != credential["subject_account"]
    ):
        raise InvalidRequest("attestation is bound to another prescription or account")
    if named != pharmacist.client_id:
        # Signed for the pharmacist at another counter session: not this caller's to spend.
        raise AccessDenied("attestation names another pharmacist")
    if payload["result"] != "match":
        raise AccessDenied("face verification did not match")
    now = tx_unix_time(ctx)
    if issued_at > now + CLOCK_SKEW_S:
        raise InvalidRequest("attestation is dated in the future")
    if now - issued_at > ATTESTATION_MAX_AGE_S:
        raise Expired(f"attestation is older than {ATTESTATION_MAX_AGE_S} s")
    digest = hashlib.sha256(key_id.encode() + b"\x00" + nonce.encode()).hexdigest()
    nonce_key = create_composite_key(ATTESTATION_NONCE_OBJECT, [digest])
    if await ctx.stub.get_state(nonce_key) is not None:
        raise Replay("attestation was already used")
    await ctx.stub.put_state(nonce_key, str(issued_at).encode())
    return payload


class PharmacyContract(Contract):
    """Gateway key registry and dispensing."""

    name = "Pharmacy"

    @transaction()
    async def RegisterGatewayKey(
        self, ctx: Context, key_id: str, public_key_pem: str
    ) -> dict[str, Any]:
        """A PharmacyMSP admin registers a counter gateway's ECDSA P-256 public key."""
        staff = require_staff(ctx, {"admin"}, {PHARMACY})
        check_id(key_id, "key_id")
        load_ec_public_key(public_key_pem)
        key = gateway_key_key(key_id)
        if await ctx.stub.get_state(key) is not None:
            raise Conflict("gateway key id already registered")
        record = {"key_id": key_id, "org": staff.msp_id, "public_key_pem": public_key_pem,
                  "status": "active", "registered": tx_unix_time(ctx)}
        # No key-level policy: the key record stays under the chaincode's majority, so a
        # revoked key cannot be set back to active by one org (PharmacyMSP included).
        await put_json(ctx, key, record)
        return record

    @transaction()
    async def RevokeGatewayKey(self, ctx: Context, key_id: str) -> dict[str, Any]:
        """A PharmacyMSP admin revokes a counter gateway's key (a lost or retired counter):
        attestations it signs are refused from the block this commits in, including ones it
        signed before. Final: a revoked key id cannot be registered again."""
        require_staff(ctx, {"admin"}, {PHARMACY})
        check_id(key_id, "key_id")
        key = gateway_key_key(key_id)
        raw = await ctx.stub.get_state(key)
        if raw is None:
            raise NotFound("no gateway key with this id")
        record = json.loads(raw)
        if record["status"] == "revoked":
            raise Conflict("gateway key already revoked")
        # The record keeps its key-level policy (PharmacyMSP), so only the pharmacy's own peer
        # can endorse this write: no other org can revoke, or un-revoke, its counters' keys.
        record = {**record, "status": "revoked", "revoked": tx_unix_time(ctx)}
        await put_json(ctx, key, record)
        return dict(record)

    @transaction()
    async def Dispense(
        self, ctx: Context, credential_id: str, attestation: dict[str, Any]
    ) -> dict[str, Any]:
        """Take one fill of a prescription (endorse with the issuer org and PharmacyMSP)."""
        staff = require_staff(ctx, {"pharmacist"}, {PHARMACY})
        credential = await load_credential(ctx, credential_id)
        if credential["type"] != "prescription":
            raise InvalidRequest("only prescriptions are dispensed")
        require_active(credential)
        fills = await load_fills(ctx, credential_id)
        now = tx_unix_time(ctx)
        if now >= fills["expires"]:
            raise Expired("prescription has expired")
        if fills["used"] >= fills["allowed"]:
            raise PreconditionFailed("prescription is exhausted (no fills left)")
        grant = await find_grant(ctx, credential, SCOPES["medical.prescription"],
                                 staff.msp_id, staff.role, now)
        if grant is None:
            raise AccessDenied("no live medical.prescription grant to this pharmacy")
        payload = await check_attestation(ctx, attestation, credential, staff)
        fills["used"] += 1
        await put_json(ctx, fills_key(credential_id), fills)
        # The record names the pharmacist the counter key attested (the caller, checked
        # above) and that key: who verified the face for this fill.
        await record_access(ctx, account=credential["subject_account"], action="dispense",
                            credential_id=credential_id, scope="medical.prescription",
                            purpose="dispense", grant_id=str(grant["grant_id"]),
                            details={"pharmacist": payload["pharmacist"],
                                     "counter_key": payload["key_id"]})
        return {"credential_id": credential_id, "fill": fills["used"],
                "remaining": fills["allowed"] - fills["used"]}


