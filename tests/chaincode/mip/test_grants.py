"""Grants: holder-signed by the account key, replay-safe, expiring, revocable at once;
listing is a signed read that records no nonce."""

from __future__ import annotations

import json
import secrets
import time

import pytest
from credential_kit import HOSPITAL, PHARMACY, SCHOOL, grant, grant_body, issue, revoke_grant
from mip_testkit import (
    Account,
    Holder,
    HolderKey,
    MipClients,
    expect_error,
    open_account,
    request_arg,
)


@pytest.fixture
async def account(mip: MipClients, holder: Holder) -> Account:
    return await open_account(mip, holder, HOSPITAL)


async def test_create_list_revoke(mip: MipClients, account: Account) -> None:
    issued = await issue(mip, account, "prescription")
    created = await grant(mip, account, PHARMACY, "medical.prescription",
                          credential_id=issued.credential_id)
    assert created["status"] == "active" and created["grantee_org"] == PHARMACY
    assert created["request"]["signer"] == account.key.public
    by_type = await grant(mip, account, SCHOOL, "research.aggregate",
                          credential_type="record", grantee_role="researcher")
    gateway = await mip.client(HOSPITAL, "gateway")
    listing = account.sign("grant.list", {"account": account.pseudonym})
    grants = json.loads(await gateway.evaluate("Grant:List", [request_arg(listing)]))
    assert {g["grant_id"] for g in grants} == {created["grant_id"], by_type["grant_id"]}
    assert all(g["live"] for g in grants)
    # A read records no nonce: the same signed list request works again until it expires.
    assert json.loads(await gateway.evaluate("Grant:List", [request_arg(listing)])) == grants

    revoked = await revoke_grant(mip, account, created["grant_id"])
    assert revoked["status"] == "revoked"
    fresh = account.sign("grant.list", {"account": account.pseudonym})
    live = {g["grant_id"]: g["live"]
            for g in json.loads(await gateway.evaluate("Grant:List", [request_arg(fresh)]))}
    assert live == {created["grant_id"]: False, by_type["grant_id"]: True}
    async with expect_error("precondition_failed"):
        await revoke_grant(mip, account, created["grant_id"])


async def test_replayed_expired_and_forged_requests(
    mip: MipClients, account: Account, holder: Holder
) -> None:
    gateway = await mip.client(HOSPITAL, "gateway")
    request = account.sign("grant.create", grant_body(account, PHARMACY, "medical.prescription",
                                                      credential_type="prescription"))
    await gateway.submit("Grant:Create", [request_arg(request)])
    async with expect_error("replay"):
        await gateway.submit("Grant:Create", [request_arg(request)])

    stale = account.sign("grant.create", grant_body(account, PHARMACY, "medical.prescription",
                                                    credential_type="prescription"),
                         expires=int(time.time()) - 5)
    async with expect_error("expired"):
        await gateway.submit("Grant:Create", [request_arg(stale)])
    stale_list = account.sign("grant.list", {"account": account.pseudonym},
                              expires=int(time.time()) - 5)
    async with expect_error("expired"):
        await gateway.evaluate("Grant:List", [request_arg(stale_list)])

    # Another key (the passport key, or a stranger's) cannot speak for this account.
    for key in (holder.passport_key, HolderKey.generate()):
        forged = key.sign_request("grant.create", grant_body(
            account, PHARMACY, "medical.prescription", credential_type="prescription"))
        async with expect_error("bad_signature"):
            await gateway.submit("Grant:Create", [request_arg(forged)])
        async with expect_error("bad_signature"):
            await gateway.evaluate("Grant:List", [request_arg(key.sign_request(
                "grant.list", {"account": account.pseudonym}))])

    # A tampered body (signature over other bytes).
    tampered = account.sign("grant.create", grant_body(account, PHARMACY, "medical.record",
                                                       credential_type="record"))
    tampered["body"]["grantee_org"] = SCHOOL
    async with expect_error("bad_signature"):
        await gateway.submit("Grant:Create", [request_arg(tampered)])
    # A request signed for another action.
    other = account.sign("grant.revoke", grant_body(account, PHARMACY, "medical.record",
                                                    credential_type="record"))
    async with expect_error("invalid_request"):
        await gateway.submit("Grant:Create", [request_arg(other)])


async def test_body_checks(mip: MipClients, account: Account, holder: Holder) -> None:
    gateway = await mip.client(HOSPITAL, "gateway")
    issued = await issue(mip, account, "record")
    bad_bodies = [
        grant_body(account, "EvilMSP", "medical.record", credential_type="record"),
        grant_body(account, PHARMACY, "medical.everything", credential_type="record"),
        grant_body(account, PHARMACY, "medical.prescription", credential_type="record"),
        grant_body(account, PHARMACY, "medical.record"),  # neither id nor type
        grant_body(account, PHARMACY, "medical.record", credential_type="record",
                   credential_id=issued.credential_id),  # both
        grant_body(account, PHARMACY, "medical.prescription",
                   credential_id=issued.credential_id),  # scope does not fit the record
        grant_body(account, PHARMACY, "medical.record", credential_type="record",
                   grantee_role="janitor"),
        grant_body(account, PHARMACY, "medical.record", credential_type="record", ttl=-10),
        grant_body(account, PHARMACY, "medical.record", credential_type="record",
                   ttl=400 * 24 * 3600),
        grant_body(account, SCHOOL, "education.diploma", credential_type="diploma"),
    ]
    for body in bad_bodies:
        async with expect_error("invalid_request"):
            await gateway.submit("Grant:Create", [request_arg(account.sign("grant.create", body))])
    # A credential of another account cannot be granted.
    other = await open_account(mip, holder, HOSPITAL)
    body = grant_body(other, PHARMACY, "medical.record", credential_id=issued.credential_id)
    async with expect_error("invalid_request"):
        await gateway.submit("Grant:Create", [request_arg(other.sign("grant.create", body))])
    # Only holder carriers (gateway, registrar) submit holder requests.
    body = grant_body(account, PHARMACY, "medical.record", credential_type="record")
    async with expect_error("access_denied"):
        await (await mip.client(HOSPITAL, "doctor")).submit(
            "Grant:Create", [request_arg(account.sign("grant.create", body))])
    async with expect_error("not_found"):
        await revoke_grant(mip, account, "no-such-grant")


async def test_account_behind_a_newer_revocation_list_gets_nothing_new(
    mip: MipClients,
) -> None:
    """After the KYC issuer publishes a newer revocation list (some passport was revoked), an
    account must re-prove before it receives credentials or gives grants; the grants it gave
    before still hold, and it can still revoke them."""
    from mip_testkit import new_holder, publish_revocation

    from gateway.kyc.issuer import KycIssuer

    # An issuer of this test's own: publishing its lists disturbs no other test's accounts.
    issuer = KycIssuer(HOSPITAL, tag=f"cc{secrets.token_hex(3)}")
    holder = await new_holder(mip, {HOSPITAL: issuer})
    other = await new_holder(mip, {HOSPITAL: issuer})
    account = await open_account(mip, holder, HOSPITAL)
    issued = await issue(mip, account, "prescription")
    before = await grant(mip, account, PHARMACY, "medical.prescription",
                         credential_id=issued.credential_id)
    assert other.kyc_index is not None
    issuer.revoke(other.kyc_index)
    await publish_revocation(mip, issuer)

    async with expect_error("precondition_failed"):
        await issue(mip, account, "record")
    async with expect_error("precondition_failed"):
        await grant(mip, account, PHARMACY, "medical.record", credential_type="record")
    pharmacist = await mip.client(PHARMACY, "pharmacist")
    await pharmacist.submit("Access:Request",
                            [issued.credential_id, "medical.prescription", "dispense"])
    assert (await revoke_grant(mip, account, before["grant_id"]))["status"] == "revoked"
