"""Erasure: a holder-signed tombstone (majority), then the purge by the collection's org;
the hash stays, nothing readable from the tombstone on; refusals (replay, wrong key, a purge
before the tombstone or by a non-member).

Which org's private store holds a value is read from devnet's SQLite; on the real network (the
`fabric` variant) the peers' stores cannot be read beside the running peers, so there the purge
is checked through the chaincode only (reads fail, Verify reports the tombstone)."""

from __future__ import annotations

import hashlib
import json
import sqlite3

import pytest
from credential_kit import (
    HOSPITAL,
    PHARMACY,
    SCHOOL,
    CounterGateway,
    dispense,
    grant,
    issue,
    request_and_read,
)
from mip_testkit import (
    Account,
    Holder,
    MipClients,
    MipNetwork,
    expect_error,
    open_account,
    request_arg,
)

from chaincode.mip.credentials import private_key
from gateway.fabric import CommitError


@pytest.fixture
async def account(mip: MipClients, holder: Holder) -> Account:
    return await open_account(mip, holder, HOSPITAL)


def private_rows(net: MipNetwork, collection: str, credential_id: str) -> list[str] | None:
    """Orgs whose private store holds the credential's content (devnet's SQLite); None on the
    real network, whose stores this test cannot read."""
    if not net.is_devnet:
        return None
    key_hash = hashlib.sha256(private_key(credential_id).encode()).digest()
    with sqlite3.connect(net.data_dir / "ledger.sqlite") as db:
        rows = db.execute("SELECT org FROM pvt_data WHERE coll=? AND key_hash=?",
                          (collection, key_hash)).fetchall()
    return sorted(r[0] for r in rows)


async def test_erase_purges_content_keeps_hash(
    mip: MipClients, mip_network: MipNetwork, account: Account
) -> None:
    issued = await issue(mip, account, "record")
    await grant(mip, account, PHARMACY, "medical.record", credential_id=issued.credential_id)
    assert private_rows(mip_network, "medical", issued.credential_id) in ([HOSPITAL], None)
    request = account.sign("credential.erase", {"credential_id": issued.credential_id})
    gateway = await mip.client(HOSPITAL, "gateway")
    erased = json.loads(await gateway.submit("Credential:Erase", [request_arg(request)]))
    assert erased["status"] == "erased" and erased["hash"] == issued.record["hash"]
    # The tombstone alone already stops every read; the content goes with the purge.
    for org, role in [(PHARMACY, "pharmacist"), (HOSPITAL, "doctor")]:
        async with expect_error("precondition_failed"):
            await request_and_read(mip, org, role, issued, "medical.record")
    assert private_rows(mip_network, "medical", issued.credential_id) in ([HOSPITAL], None)
    purged = json.loads(await gateway.submit("Credential:Purge", [issued.credential_id],
                                             endorsing_orgs=[HOSPITAL]))
    assert purged == {"credential_id": issued.credential_id, "purged": True}
    assert private_rows(mip_network, "medical", issued.credential_id) in ([], None)
    # Whoever holds content + salt can still check them: the tombstone keeps the hash.
    verdict = json.loads(await gateway.evaluate("Credential:Verify", [issued.credential_id],
                                                transient=issued.transient))
    assert verdict == {**verdict, "valid": True, "status": "erased"}
    for org, role in [(PHARMACY, "pharmacist"), (HOSPITAL, "doctor")]:
        async with expect_error("precondition_failed"):
            await request_and_read(mip, org, role, issued, "medical.record")
    async with expect_error("replay"):
        await gateway.submit("Credential:Erase", [request_arg(request)])
    again = account.sign("credential.erase", {"credential_id": issued.credential_id})
    async with expect_error("precondition_failed"):
        await gateway.submit("Credential:Erase", [request_arg(again)])


async def test_erase_refusals(
    mip: MipClients, mip_network: MipNetwork, account: Account, holder: Holder
) -> None:
    issued = await issue(mip, account, "prescription")
    body = {"credential_id": issued.credential_id}
    hospital_gateway = await mip.client(HOSPITAL, "gateway")
    # Only the subject account's key: not the passport key, not another account's key.
    other = await open_account(mip, holder, HOSPITAL)
    for key in (holder.passport_key, other.key):
        async with expect_error("bad_signature"):
            await hospital_gateway.submit("Credential:Erase", [request_arg(
                key.sign_request("credential.erase", body))])
    # Nothing to purge before the tombstone, and only the collection's org purges.
    async with expect_error("precondition_failed"):
        await hospital_gateway.submit("Credential:Purge", [issued.credential_id],
                                      endorsing_orgs=[HOSPITAL])
    # A staff member without the holder's signature cannot erase; nor a doctor carrying it.
    async with expect_error("access_denied"):
        await (await mip.client(HOSPITAL, "doctor")).submit(
            "Credential:Erase", [request_arg(account.sign("credential.erase", body))])
    async with expect_error("invalid_request"):
        await hospital_gateway.submit("Credential:Erase", [request_arg(
            account.sign("credential.erase", {**body, "extra": 1}))])
    # Endorsed by one org only: the chaincode's majority policy refuses the tombstone.
    with pytest.raises(CommitError) as info:
        await hospital_gateway.submit(
            "Credential:Erase", [request_arg(account.sign("credential.erase", body))],
            endorsing_orgs=[HOSPITAL])
    assert info.value.code_name == "ENDORSEMENT_POLICY_FAILURE"
    assert private_rows(mip_network, "medical", issued.credential_id) in ([HOSPITAL], None)
    record = json.loads(await hospital_gateway.evaluate("Credential:Get",
                                                        [issued.credential_id]))
    assert record["status"] == "active"
    # Once erased, a school gateway cannot purge the medical collection.
    await hospital_gateway.submit("Credential:Erase", [request_arg(
        account.sign("credential.erase", body))])
    async with expect_error("access_denied"):
        await (await mip.client(SCHOOL, "gateway")).submit(
            "Credential:Purge", [issued.credential_id], endorsing_orgs=[HOSPITAL])
    with pytest.raises(CommitError) as info:  # nor a purge endorsed by a non-member's peer
        await hospital_gateway.submit("Credential:Purge", [issued.credential_id],
                                      endorsing_orgs=[SCHOOL])
    assert info.value.code_name == "ENDORSEMENT_POLICY_FAILURE"
    assert private_rows(mip_network, "medical", issued.credential_id) in ([HOSPITAL], None)


async def test_erased_prescription_is_not_dispensed(mip: MipClients, account: Account) -> None:
    rx = await issue(mip, account, "prescription")
    await grant(mip, account, PHARMACY, "medical.prescription", credential_id=rx.credential_id)
    counter = CounterGateway.generate()
    await counter.register(mip)
    await (await mip.client(HOSPITAL, "gateway")).submit("Credential:Erase", [request_arg(
        account.sign("credential.erase", {"credential_id": rx.credential_id}))])
    async with expect_error("precondition_failed") as info:
        await dispense(mip, rx, counter.attest(rx.credential_id, account.pseudonym))
    assert "erased" in info.message
