"""Linkage verifier keys on the ledger: one per member org, registered by its own admin."""

from __future__ import annotations

import base64
import json

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from mip_testkit import MipClients, expect_error

from chaincode.protocol.ids import verifier_id_for

HOSPITAL, SCHOOL, PHARMACY = "HospitalMSP", "SchoolMSP", "PharmacyMSP"


def new_key() -> bytes:
    return X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


async def registered(mip: MipClients, org: str) -> dict[str, object]:
    return dict(json.loads(await (await mip.client(HOSPITAL, "doctor")).evaluate(
        "Linkage:GetVerifierKey", [org])))


async def test_admin_registers_and_rotates_own_orgs_key(mip: MipClients) -> None:
    first = new_key()
    record = json.loads(await (await mip.client(SCHOOL, "admin")).submit(
        "Linkage:RegisterVerifierKey", [b64(first)]))
    # The org comes from the admin's certificate, never from an argument.
    assert record["org"] == SCHOOL
    assert record["verifier_id"] == verifier_id_for(SCHOOL, first)
    assert await registered(mip, SCHOOL) == record
    second = new_key()
    await (await mip.client(SCHOOL, "admin")).submit("Linkage:RegisterVerifierKey", [b64(second)])
    rotated = await registered(mip, SCHOOL)
    assert rotated["public_key"] == b64(second)
    assert rotated["verifier_id"] != record["verifier_id"]


async def test_refused_registrations_change_nothing(mip: MipClients) -> None:
    key = new_key()
    await (await mip.client(PHARMACY, "admin")).submit("Linkage:RegisterVerifierKey", [b64(key)])
    before = await registered(mip, PHARMACY)
    for org, role in [(PHARMACY, "pharmacist"), (PHARMACY, "gateway"), (PHARMACY, None)]:
        async with expect_error("access_denied"):
            await (await mip.client(org, role)).submit("Linkage:RegisterVerifierKey",
                                                       [b64(new_key())])
    admin = await mip.client(PHARMACY, "admin")
    for bad in ("not base64!", b64(b"\x01" * 31), b64(bytes(32)),
                # a low-order point of Curve25519: every shared secret with it is zero
                b64(bytes([1]) + bytes(31))):
        async with expect_error("invalid_request"):
            await admin.submit("Linkage:RegisterVerifierKey", [bad])
    assert await registered(mip, PHARMACY) == before
    async with expect_error("invalid_request"):
        await registered(mip, "NowhereMSP")
