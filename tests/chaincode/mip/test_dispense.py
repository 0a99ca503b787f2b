"""Dispensing: pharmacist + prescription grant + fresh counter attestation naming that
pharmacist; one fill each; expired, revoked, exhausted, another pharmacist's attestation
refused; 50 concurrent dispenses of one fill -> exactly one."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from credential_kit import (
    HOSPITAL,
    PHARMACY,
    SCHOOL,
    CounterGateway,
    Issued,
    dispense,
    grant,
    issue,
    sample_content,
)
from identity_kit import client_id
from mip_testkit import Account, Holder, MipClients, expect_error, open_account, request_arg

from gateway.fabric import ChaincodeError, CommitError


@pytest.fixture
async def account(mip: MipClients, holder: Holder) -> Account:
    return await open_account(mip, holder, HOSPITAL)


@pytest.fixture
async def counter(mip: MipClients) -> CounterGateway:
    gateway = CounterGateway.generate()
    await gateway.register(mip)
    return gateway


async def granted_rx(mip: MipClients, account: Account, **content: int) -> Issued:
    rx = await issue(mip, account, "prescription", sample_content("prescription", **content))
    await grant(mip, account, PHARMACY, "medical.prescription", credential_id=rx.credential_id)
    return rx


async def test_register_gateway_key_admin_of_pharmacy_only(mip: MipClients) -> None:
    gateway = CounterGateway.generate()
    for org, role in [(PHARMACY, "pharmacist"), (PHARMACY, "gateway"), (HOSPITAL, "admin"),
                      (SCHOOL, "admin")]:
        async with expect_error("access_denied"):
            await (await mip.client(org, role)).submit(
                "Pharmacy:RegisterGatewayKey", [gateway.key_id, gateway.public_pem])
    admin = await mip.client(PHARMACY, "admin")
    async with expect_error("invalid_request"):
        await admin.submit("Pharmacy:RegisterGatewayKey", [gateway.key_id, "not a pem"])
    record = await gateway.register(mip)
    assert record["org"] == PHARMACY and record["status"] == "active"
    async with expect_error("conflict"):
        await gateway.register(mip)


async def test_dispense_takes_fills_until_exhausted(
    mip: MipClients, account: Account, counter: CounterGateway
) -> None:
    rx = await granted_rx(mip, account, refills=1)
    first = await dispense(mip, rx, counter.attest(rx.credential_id, account.pseudonym))
    assert first == {"credential_id": rx.credential_id, "fill": 1, "remaining": 1}
    second = await dispense(mip, rx, counter.attest(rx.credential_id, account.pseudonym))
    assert second["remaining"] == 0
    async with expect_error("precondition_failed") as info:
        await dispense(mip, rx, counter.attest(rx.credential_id, account.pseudonym))
    assert "exhausted" in info.message
    reader = await mip.client(PHARMACY, "pharmacist")
    record = json.loads(await reader.evaluate("Credential:Get", [rx.credential_id]))
    assert record["fills"]["used"] == 2


async def test_dispense_refusals(
    mip: MipClients, account: Account, holder: Holder, counter: CounterGateway
) -> None:
    rx = await granted_rx(mip, account, refills=5)
    attest = counter.attest
    # Not a pharmacist, or not of the pharmacy.
    for role in ("admin", "gateway", None):
        async with expect_error("access_denied"):
            await dispense(mip, rx, attest(rx.credential_id, account.pseudonym), role=role)
    async with expect_error("access_denied"):
        await (await mip.client(HOSPITAL, "pharmacist")).submit(
            "Pharmacy:Dispense",
            [rx.credential_id, json.dumps(attest(rx.credential_id, account.pseudonym))])
    # Attestation: stale, future, bound elsewhere, not a match, unregistered key, replayed.
    async with expect_error("expired"):
        await dispense(mip, rx, attest(rx.credential_id, account.pseudonym,
                                       issued_at=int(time.time()) - 300))
    async with expect_error("invalid_request"):
        await dispense(mip, rx, attest(rx.credential_id, account.pseudonym,
                                       issued_at=int(time.time()) + 300))
    other_account = await open_account(mip, holder, HOSPITAL)
    async with expect_error("invalid_request"):
        await dispense(mip, rx, attest(rx.credential_id, other_account.pseudonym))
    async with expect_error("access_denied"):
        await dispense(mip, rx, attest(rx.credential_id, account.pseudonym, result="no_match"))
    rogue = CounterGateway.generate()  # never registered
    async with expect_error("bad_signature"):
        await dispense(mip, rx, rogue.attest(rx.credential_id, account.pseudonym))
    impostor = CounterGateway(counter.key_id, rogue.private)  # registered id, wrong key
    async with expect_error("bad_signature"):
        await dispense(mip, rx, impostor.attest(rx.credential_id, account.pseudonym))
    used = attest(rx.credential_id, account.pseudonym)
    await dispense(mip, rx, used)
    async with expect_error("replay"):
        await dispense(mip, rx, used)
    # No grant to the pharmacy.
    ungranted = await issue(mip, account, "prescription")
    async with expect_error("access_denied"):
        await dispense(mip, ungranted, attest(ungranted.credential_id, account.pseudonym))
    # A grant narrowed to another role does not count.
    narrowed = await issue(mip, account, "prescription")
    await grant(mip, account, PHARMACY, "medical.prescription",
                credential_id=narrowed.credential_id, grantee_role="auditor")
    async with expect_error("access_denied"):
        await dispense(mip, narrowed, attest(narrowed.credential_id, account.pseudonym))
    # Revoked prescription.
    await (await mip.client(HOSPITAL, "doctor")).submit(
        "Credential:Revoke", [rx.credential_id, "allergy"])
    async with expect_error("precondition_failed") as info:
        await dispense(mip, rx, attest(rx.credential_id, account.pseudonym))
    assert "revoked" in info.message


async def test_attestation_binds_the_pharmacist_and_the_record_names_them(
    mip: MipClients, account: Account, counter: CounterGateway
) -> None:
    rx = await granted_rx(mip, account, refills=1)
    me = client_id(mip.network, PHARMACY, "pharmacist")
    # Signed over another staff member of the pharmacy (another counter's session), or with
    # no name or a malformed one: refused before any fill, and its nonce stays unspent.
    elsewhere = counter.attest(rx.credential_id, account.pseudonym,
                               pharmacist=client_id(mip.network, PHARMACY, "admin"))
    async with expect_error("access_denied") as info:
        await dispense(mip, rx, elsewhere)
    assert "another pharmacist" in info.message
    for name in ("", "x" * 1025):
        async with expect_error("invalid_request"):
            await dispense(mip, rx, counter.attest(rx.credential_id, account.pseudonym,
                                                   pharmacist=name))
    unnamed = counter.attest(rx.credential_id, account.pseudonym)
    del unnamed["payload"]["pharmacist"]  # the V1 payload: refused whatever it signs
    async with expect_error("invalid_request"):
        await dispense(mip, rx, unnamed)
    reader = await mip.client(PHARMACY, "pharmacist")
    assert json.loads(await reader.evaluate("Credential:Get", [rx.credential_id])
                      )["fills"]["used"] == 0
    # Its own attestation: the fill is taken and the dispense's record names who verified.
    assert (await dispense(mip, rx, counter.attest(rx.credential_id, account.pseudonym))
            )["fill"] == 1
    log = json.loads(await (await mip.client(HOSPITAL, "gateway")).evaluate(
        "Access:HolderLog", [request_arg(
            account.sign("access.log", {"account": account.pseudonym}))]))
    dispensed = [r for r in log if r["action"] == "dispense"]
    assert len(dispensed) == 1
    assert dispensed[0]["details"] == {"pharmacist": me, "counter_key": counter.key_id}
    assert dispensed[0]["client_id"] == me


async def test_expired_prescription_refused(
    mip: MipClients, account: Account, counter: CounterGateway
) -> None:
    rx = await granted_rx(mip, account, expiry=int(time.time()) + 3)
    await asyncio.sleep(max(0.0, rx.content["expiry"] - time.time() + 1))
    async with expect_error("expired") as info:
        await dispense(mip, rx, counter.attest(rx.credential_id, account.pseudonym))
    assert "prescription" in info.message


async def test_fill_counter_needs_hospital_and_pharmacy(
    mip: MipClients, account: Account, counter: CounterGateway
) -> None:
    rx = await granted_rx(mip, account)
    pharmacist = await mip.client(PHARMACY, "pharmacist")
    with pytest.raises(CommitError) as info:
        await pharmacist.submit(
            "Pharmacy:Dispense",
            [rx.credential_id, json.dumps(counter.attest(rx.credential_id, account.pseudonym))],
            endorsing_orgs=[PHARMACY])
    assert info.value.code_name == "ENDORSEMENT_POLICY_FAILURE"
    record = json.loads(await pharmacist.evaluate("Credential:Get", [rx.credential_id]))
    assert record["fills"]["used"] == 0


async def test_fifty_concurrent_dispenses_of_one_fill(
    mip: MipClients, account: Account, counter: CounterGateway
) -> None:
    rx = await granted_rx(mip, account, refills=0)
    attestations = [counter.attest(rx.credential_id, account.pseudonym) for _ in range(50)]
    results = await asyncio.gather(*(dispense(mip, rx, a) for a in attestations),
                                   return_exceptions=True)
    successes = [r for r in results if isinstance(r, dict)]
    assert len(successes) == 1, results
    kinds = [type(r).__name__ for r in results]
    print("concurrent dispense outcomes:", {k: kinds.count(k) for k in set(kinds)})
    for result in results:
        if isinstance(result, dict):
            continue
        if isinstance(result, CommitError):
            assert result.code_name == "MVCC_READ_CONFLICT"
        else:
            assert isinstance(result, ChaincodeError), repr(result)
            assert result.chaincode_message.startswith("precondition_failed: "), result
    record = json.loads(await (await mip.client(PHARMACY, "pharmacist")).evaluate(
        "Credential:Get", [rx.credential_id]))
    assert record["fills"] == {**record["fills"], "allowed": 1, "used": 1}


async def test_revoked_counter_key_attestations_are_refused(
    mip: MipClients, account: Account
) -> None:
    counter = CounterGateway.generate()
    await counter.register(mip)
    rx = await granted_rx(mip, account, refills=3)
    signed_before = counter.attest(rx.credential_id, account.pseudonym)
    await dispense(mip, rx, counter.attest(rx.credential_id, account.pseudonym))
    # Only a PharmacyMSP admin may revoke: other orgs' admins and pharmacy staff are refused.
    for org, role in [(HOSPITAL, "admin"), (SCHOOL, "admin"), (PHARMACY, "pharmacist"),
                      (PHARMACY, "gateway")]:
        async with expect_error("access_denied"):
            await (await mip.client(org, role)).submit(
                "Pharmacy:RevokeGatewayKey", [counter.key_id])
    await dispense(mip, rx, counter.attest(rx.credential_id, account.pseudonym))  # still active
    admin = await mip.client(PHARMACY, "admin")
    record = json.loads(await admin.submit("Pharmacy:RevokeGatewayKey", [counter.key_id]))
    assert record["status"] == "revoked" and record["key_id"] == counter.key_id
    assert isinstance(record["revoked"], int)
    # Fresh attestations, and one signed before the revocation, are refused; no fill is taken.
    for attestation in (counter.attest(rx.credential_id, account.pseudonym), signed_before):
        async with expect_error("bad_signature") as info:
            await dispense(mip, rx, attestation)
        assert "revoked" in info.message
    reader = await mip.client(PHARMACY, "pharmacist")
    assert json.loads(await reader.evaluate("Credential:Get", [rx.credential_id])
                      )["fills"]["used"] == 2
    async with expect_error("conflict"):
        await admin.submit("Pharmacy:RevokeGatewayKey", [counter.key_id])
    async with expect_error("conflict"):  # a revoked key id cannot come back
        await counter.register(mip)
    async with expect_error("not_found"):
        await admin.submit("Pharmacy:RevokeGatewayKey", ["counter-never-registered"])
