"""The portrait's ledger side: each org's portrait keys (`Portrait:RegisterKeys`/`GetKeys`), the
portrait commitment in the holder-signed grant (`Grant:Create`, `Grant:Get`), and the
pharmacy's check of a portrait against those records with no key of the enrolling org."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any

import nacl.public
import numpy as np
import pytest
from credential_kit import HOSPITAL, PHARMACY, SCHOOL, grant_body, issue
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from mip_testkit import Account, Holder, MipClients, expect_error, open_account, request_arg

from chaincode.protocol.ids import portrait_key_id
from face_engine import portrait as p


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@dataclass
class OrgKeys:
    """One org's portrait keys, as its gateway holds them."""

    org: str
    signing: Ed25519PrivateKey
    sealing: nacl.public.PrivateKey

    @classmethod
    def generate(cls, org: str) -> OrgKeys:
        return cls(org, Ed25519PrivateKey.generate(), nacl.public.PrivateKey.generate())

    @property
    def signing_public(self) -> bytes:
        return self.signing.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def sealing_public(self) -> bytes:
        return bytes(self.sealing.public_key)

    async def register(self, mip: MipClients) -> dict[str, Any]:
        admin = await mip.client(self.org, "admin")
        return dict(json.loads(await admin.submit(
            "Portrait:RegisterKeys", [b64(self.signing_public), b64(self.sealing_public)])))

    def issuer(self) -> p.PortraitIssuer:
        return p.PortraitIssuer(self.org, self.signing,
                                portrait_key_id(self.org, "sign", self.signing_public))

    def recipient(self) -> p.PortraitRecipient:
        return p.PortraitRecipient(self.org, self.sealing,
                                   portrait_key_id(self.org, "seal", self.sealing_public))


async def keys_of(mip: MipClients, org: str, reader: str = PHARMACY) -> dict[str, Any]:
    return dict(json.loads(await (await mip.client(reader, "pharmacist" if reader == PHARMACY
                                                   else None)).evaluate(
        "Portrait:GetKeys", [org])))


async def get_grant(mip: MipClients, account: Account, grant_id: str,
                    org: str = PHARMACY, role: str | None = "pharmacist") -> dict[str, Any]:
    return dict(json.loads(await (await mip.client(org, role)).evaluate(
        "Grant:Get", [account.pseudonym, grant_id])))


async def create_grant(mip: MipClients, account: Account, body: dict[str, Any]
                       ) -> dict[str, Any]:
    gateway = await mip.client(account.institution, "gateway")
    return dict(json.loads(await gateway.submit("Grant:Create", [request_arg(
        account.sign("grant.create", body))])))


async def holder_view(mip: MipClients, account: Account) -> tuple[Any, Any]:
    """The account's grants and access log, as the holder lists them."""
    gateway = await mip.client(account.institution, "gateway")
    grants = json.loads(await gateway.evaluate("Grant:List", [request_arg(account.sign(
        "grant.list", {"account": account.pseudonym}))]))
    log = json.loads(await gateway.evaluate("Access:HolderLog", [request_arg(account.sign(
        "access.log", {"account": account.pseudonym}))]))
    return [{k: v for k, v in g.items() if k != "live"} for g in grants], log


@pytest.fixture
async def account(mip: MipClients, holder: Holder) -> Account:
    return await open_account(mip, holder, HOSPITAL)


async def test_admin_registers_and_rotates_own_orgs_keys(mip: MipClients) -> None:
    first = OrgKeys.generate(SCHOOL)
    record = await first.register(mip)
    # The org comes from the admin's certificate, never from an argument.
    assert record["org"] == SCHOOL
    assert record["signing_key_id"] == portrait_key_id(SCHOOL, "sign", first.signing_public)
    assert record["sealing_key_id"] == portrait_key_id(SCHOOL, "seal", first.sealing_public)
    assert await keys_of(mip, SCHOOL) == record
    second = OrgKeys.generate(SCHOOL)
    await second.register(mip)
    rotated = await keys_of(mip, SCHOOL, reader=HOSPITAL)
    assert rotated["signing_key"] == b64(second.signing_public)
    assert rotated["signing_key_id"] != record["signing_key_id"]


async def test_refused_registrations_change_nothing(mip: MipClients) -> None:
    keys = OrgKeys.generate(PHARMACY)
    await keys.register(mip)
    before = await keys_of(mip, PHARMACY)
    other = OrgKeys.generate(PHARMACY)
    good = [b64(other.signing_public), b64(other.sealing_public)]
    for org, role in [(PHARMACY, "pharmacist"), (PHARMACY, "gateway"), (PHARMACY, None)]:
        async with expect_error("access_denied"):
            await (await mip.client(org, role)).submit("Portrait:RegisterKeys", good)
    admin = await mip.client(PHARMACY, "admin")
    for bad in (["not base64!", good[1]], [b64(b"\x01" * 31), good[1]],
                [good[0], b64(b"\x01" * 33)],
                # a low-order point of Curve25519: every shared secret with it is zero
                [good[0], b64(bytes([1]) + bytes(31))],
                [good[1], good[1]]):
        async with expect_error("invalid_request"):
            await admin.submit("Portrait:RegisterKeys", bad)
    assert await keys_of(mip, PHARMACY) == before
    async with expect_error("invalid_request"):
        await keys_of(mip, "NowhereMSP")


async def test_grant_carries_the_holders_portrait_commitment(
    mip: MipClients, account: Account
) -> None:
    issued = await issue(mip, account, "prescription")
    commitment = "5e" * 32
    body = {**grant_body(account, PHARMACY, "medical.prescription",
                         credential_id=issued.credential_id),
            "portrait_commitment": commitment}
    created = await create_grant(mip, account, body)
    assert created["portrait_commitment"] == commitment
    seen = await get_grant(mip, account, body["grant_id"])
    assert seen["portrait_commitment"] == commitment and seen["live"] is True
    assert "request" not in seen
    # Only the grantee org reads it.
    for org, role in [(SCHOOL, "admin"), (HOSPITAL, "gateway")]:
        async with expect_error("access_denied"):
            await get_grant(mip, account, body["grant_id"], org, role)
    async with expect_error("not_found"):
        await get_grant(mip, account, "no-such-grant")
    # A grant without a portrait keeps its former record: no portrait_commitment key at all.
    plain = await create_grant(mip, account, grant_body(
        account, PHARMACY, "medical.prescription", credential_id=issued.credential_id))
    assert "portrait_commitment" not in plain
    assert "portrait_commitment" not in await get_grant(mip, account, plain["grant_id"])


async def test_malformed_portrait_commitment_is_refused_and_changes_nothing(
    mip: MipClients, account: Account
) -> None:
    issued = await issue(mip, account, "prescription")
    before = await holder_view(mip, account)
    for bad in ("AB" * 32, "ab" * 31, 7, None, "zz" * 32):
        body = {**grant_body(account, PHARMACY, "medical.prescription",
                             credential_id=issued.credential_id), "portrait_commitment": bad}
        async with expect_error("invalid_request"):
            await create_grant(mip, account, body)
        async with expect_error("not_found"):
            await get_grant(mip, account, body["grant_id"])
    assert await holder_view(mip, account) == before


@dataclass
class Pickup:
    """The pharmacy's side: it reads only ledger records through its own peer."""

    mip: MipClients
    keys: OrgKeys

    async def accept(self, sealed: bytes, account: Account, grant_id: str,
                     now: int | None = None) -> p.VerifiedPortrait:
        pharmacist = await self.mip.client(PHARMACY, "pharmacist")
        record = json.loads(await pharmacist.evaluate("Account:Get", [account.pseudonym]))
        grant = await get_grant(self.mip, account, grant_id)
        assert grant["live"]
        issuer = json.loads(await pharmacist.evaluate("Portrait:GetKeys",
                                                      [record["institution"]]))
        expected = p.PortraitExpectation(
            account=account.pseudonym, grant_id=grant_id, issuer_org=record["institution"],
            issuer_key=base64.b64decode(issuer["signing_key"]),
            issuer_key_id=issuer["signing_key_id"],
            grant_commitment=grant.get("portrait_commitment"),  # type: ignore[arg-type]
            reference_commitment=record["face_commitment"])
        return p.accept(self.keys.recipient(), sealed, expected,
                        int(time.time()) if now is None else now)


async def test_pharmacy_checks_a_portrait_with_no_key_of_the_enrolling_org(
    mip: MipClients, account: Account
) -> None:
    hospital, school, pharmacy = (OrgKeys.generate(org) for org in (HOSPITAL, SCHOOL, PHARMACY))
    for keys in (hospital, school, pharmacy):
        await keys.register(mip)
    issued = await issue(mip, account, "prescription")
    face = np.random.default_rng(15).normal(size=128)
    other_face = np.random.default_rng(16).normal(size=128)
    now = int(time.time())

    def portrait(signer: OrgKeys, recipient: OrgKeys, body: dict[str, Any],
                 embedding: np.ndarray = face) -> tuple[bytes, str]:
        statement = signer.issuer().build(
            embedding, account=account.pseudonym, grant_id=body["grant_id"],
            recipient_org=recipient.org,
            recipient_key_id=portrait_key_id(recipient.org, "seal", recipient.sealing_public),
            reference_commitment=account.record["face_commitment"], issued_at=now,
            expires=body["expires"])
        sealed = p.seal(signer.issuer().sign(statement), recipient.sealing_public)
        return sealed, statement.commitment

    def new_body() -> dict[str, Any]:
        return grant_body(account, PHARMACY, "medical.prescription",
                          credential_id=issued.credential_id)

    # The hospital (the account's enrolling org) builds the portrait; the holder signs its
    # commitment into the grant; the pharmacy accepts it and matches the live face.
    body = new_body()
    sealed, commitment = portrait(hospital, pharmacy, body)
    await create_grant(mip, account, {**body, "portrait_commitment": commitment})
    counter = Pickup(mip, pharmacy)
    verified = await counter.accept(sealed, account, body["grant_id"])
    assert verified.matches(face) and not verified.matches(other_face)

    # Signed by another org (the school) for this account, committed by the holder as well:
    # the account's enrolling org is the hospital.
    body_2 = new_body()
    forged, forged_commitment = portrait(school, pharmacy, body_2, other_face)
    await create_grant(mip, account, {**body_2, "portrait_commitment": forged_commitment})
    before = await holder_view(mip, account)
    with pytest.raises(p.PortraitWrongIssuer):
        await counter.accept(forged, account, body_2["grant_id"])
    # A portrait replayed for another grant of the holder.
    with pytest.raises(p.PortraitBindingMismatch):
        await counter.accept(sealed, account, body_2["grant_id"])
    # Swapped by the enrolling org after the holder's consent: not the grant's commitment.
    swapped, _ = portrait(hospital, pharmacy, body, other_face)
    with pytest.raises(p.PortraitCommitmentMismatch):
        await counter.accept(swapped, account, body["grant_id"])
    # Expired (the portrait lives no longer than the grant).
    with pytest.raises(p.PortraitExpired):
        await counter.accept(sealed, account, body["grant_id"], now=body["expires"])
    # Sealed to another org (the school), even with the holder's commitment in a grant.
    elsewhere, _ = portrait(hospital, school, body)
    with pytest.raises(p.PortraitWrongRecipient):
        await counter.accept(elsewhere, account, body["grant_id"])
    # The pharmacy rotated its sealing key: what was sealed to the old one is refused.
    rotated = OrgKeys.generate(PHARMACY)
    await rotated.register(mip)
    with pytest.raises(p.PortraitWrongRecipient):
        await Pickup(mip, rotated).accept(sealed, account, body["grant_id"])
    # Every refusal was a read: the holder's grants and access log are as they were.
    assert await holder_view(mip, account) == before
