"""Audited reads: Request (submit, writes the access record) then Read (evaluate on an
issuer-org peer, scope fields only); holder and auditor listings."""

from __future__ import annotations

import json
import time

import pytest
from credential_kit import (
    HOSPITAL,
    PHARMACY,
    SCHOOL,
    grant,
    issue,
    request_and_read,
    revoke_grant,
)
from mip_testkit import Account, Holder, MipClients, expect_error, open_account, request_arg


@pytest.fixture
async def accounts(mip: MipClients, holder: Holder) -> dict[str, Account]:
    return {org: await open_account(mip, holder, org) for org in (HOSPITAL, SCHOOL)}


async def test_pharmacy_reads_prescription_fields_never_diagnosis(
    mip: MipClients, accounts: dict[str, Account]
) -> None:
    account = accounts[HOSPITAL]
    rx = await issue(mip, account, "prescription")
    record = await issue(mip, account, "record")
    async with expect_error("access_denied"):  # no grant yet
        await (await mip.client(PHARMACY, "pharmacist")).submit(
            "Access:Request", [rx.credential_id, "medical.prescription", "dispense"])
    await grant(mip, account, PHARMACY, "medical.prescription", credential_id=rx.credential_id)
    got = await request_and_read(mip, PHARMACY, "pharmacist", rx, "medical.prescription")
    assert got["fields"] == {k: rx.content[k]
                             for k in ("drug", "strength", "quantity", "refills", "expiry")}
    assert "diagnosis" not in json.dumps(got)
    # The prescription grant does not open the medical record.
    pharmacist = await mip.client(PHARMACY, "pharmacist")
    async with expect_error("access_denied"):
        await pharmacist.submit("Access:Request",
                                [record.credential_id, "medical.record", "curious"])
    async with expect_error("invalid_request"):  # aggregate consent releases no fields
        await pharmacist.submit("Access:Request",
                                [record.credential_id, "research.aggregate", "study"])
    async with expect_error("invalid_request"):  # wrong scope for the type
        await pharmacist.submit("Access:Request",
                                [record.credential_id, "medical.prescription", "curious"])
    # The issuing hospital's doctor reads the full record without a grant.
    full = await request_and_read(mip, HOSPITAL, "doctor", record, "medical.record")
    assert full["fields"] == record.content


async def test_employer_reads_degree_never_grades(
    mip: MipClients, accounts: dict[str, Account]
) -> None:
    account = accounts[SCHOOL]
    diploma = await issue(mip, account, "diploma")
    transcript = await issue(mip, account, "transcript")
    # The "employer" here is the hospital's registrar (HR), narrowed to that role.
    await grant(mip, account, HOSPITAL, "education.diploma", credential_type="diploma",
                grantee_role="registrar")
    got = await request_and_read(mip, HOSPITAL, "registrar", diploma, "education.diploma")
    assert got["fields"] == diploma.content
    async with expect_error("access_denied"):  # another role of the same org
        await (await mip.client(HOSPITAL, "doctor")).submit(
            "Access:Request", [diploma.credential_id, "education.diploma", "hiring"])
    async with expect_error("access_denied"):  # grades need their own grant
        await (await mip.client(HOSPITAL, "registrar")).submit(
            "Access:Request", [transcript.credential_id, "education.transcript", "hiring"])
    await grant(mip, account, HOSPITAL, "education.transcript",
                credential_id=transcript.credential_id)
    got = await request_and_read(mip, HOSPITAL, "doctor", transcript, "education.transcript")
    assert got["fields"]["courses"] == transcript.content["courses"]


async def test_read_checks_owner_peer_age_and_revocation(
    mip: MipClients, accounts: dict[str, Account]
) -> None:
    account = accounts[HOSPITAL]
    rx = await issue(mip, account, "prescription")
    created = await grant(mip, account, PHARMACY, "medical.prescription",
                          credential_type="prescription")
    pharmacist = await mip.client(PHARMACY, "pharmacist")
    access_id = (await pharmacist.submit(
        "Access:Request", [rx.credential_id, "medical.prescription", "dispense"])).decode()
    # Another client (even of the same org) cannot use this access id.
    other = await mip.client(PHARMACY, "admin")
    async with expect_error("access_denied"):
        await other.evaluate("Access:Read", [access_id], endorsing_orgs=[HOSPITAL])
    # A peer outside the medical collection holds no content.
    async with expect_error("precondition_failed"):
        await pharmacist.evaluate("Access:Read", [access_id], endorsing_orgs=[PHARMACY])
    async with expect_error("not_found"):
        await pharmacist.evaluate("Access:Read", ["0" * 64], endorsing_orgs=[HOSPITAL])
    # Revocation is effective at once, even for an access already recorded.
    await revoke_grant(mip, account, created["grant_id"])
    async with expect_error("access_denied"):
        await pharmacist.evaluate("Access:Read", [access_id], endorsing_orgs=[HOSPITAL])
    async with expect_error("access_denied"):
        await pharmacist.submit("Access:Request",
                                [rx.credential_id, "medical.prescription", "again"])
    # Revoked credentials release nothing.
    doctor_read = await request_and_read(mip, HOSPITAL, "doctor", rx, "medical.prescription")
    assert doctor_read["fields"]["drug"] == rx.content["drug"]
    await (await mip.client(HOSPITAL, "doctor")).submit(
        "Credential:Revoke", [rx.credential_id, "wrong drug"])
    async with expect_error("precondition_failed"):
        await request_and_read(mip, HOSPITAL, "doctor", rx, "medical.prescription")


async def test_expired_grant_releases_nothing(
    mip: MipClients, accounts: dict[str, Account]
) -> None:
    account = accounts[HOSPITAL]
    record = await issue(mip, account, "record")
    await grant(mip, account, SCHOOL, "medical.record", credential_id=record.credential_id,
                ttl=3)
    reader = await mip.client(SCHOOL, "auditor")
    access_id = (await reader.submit(
        "Access:Request", [record.credential_id, "medical.record", "insurance"])).decode()
    time.sleep(4)
    async with expect_error("access_denied"):
        await reader.evaluate("Access:Read", [access_id], endorsing_orgs=[HOSPITAL])


async def test_holder_log_and_auditor_log(
    mip: MipClients, accounts: dict[str, Account]
) -> None:
    account = accounts[HOSPITAL]
    start = int(time.time()) - 1
    rx = await issue(mip, account, "prescription")
    await grant(mip, account, PHARMACY, "medical.prescription", credential_id=rx.credential_id)
    await request_and_read(mip, PHARMACY, "pharmacist", rx, "medical.prescription", "counter")
    gateway = await mip.client(HOSPITAL, "gateway")
    log = json.loads(await gateway.evaluate("Access:HolderLog", [request_arg(
        account.sign("access.log", {"account": account.pseudonym}))]))
    assert [r["action"] for r in log] == ["issue", "grant.create", "read"]
    read = log[-1]
    assert read["org"] == PHARMACY and read["role"] == "pharmacist"
    assert read["purpose"] == "counter" and read["scope"] == "medical.prescription"
    assert read["tx_id"] == read["access_id"] and "pharmacist" in read["client_id"]
    # Another account's key cannot read this log.
    other = accounts[SCHOOL]
    async with expect_error("bad_signature"):
        await gateway.evaluate("Access:HolderLog", [request_arg(
            other.sign("access.log", {"account": account.pseudonym}))])

    end = int(time.time()) + 2
    auditor = await mip.client(PHARMACY, "auditor")
    audit = json.loads(await auditor.evaluate("Access:AuditorLog", [str(start), str(end)]))
    assert read["access_id"] in {r["access_id"] for r in audit}
    assert {r["org"] for r in audit} == {PHARMACY}
    hospital_audit = json.loads(await (await mip.client(HOSPITAL, "auditor")).evaluate(
        "Access:AuditorLog", [str(start), str(end)]))
    assert read["access_id"] not in {r["access_id"] for r in hospital_audit}
    assert log[0]["access_id"] in {r["access_id"] for r in hospital_audit}
    for org, role in [(PHARMACY, "pharmacist"), (HOSPITAL, "admin"), (SCHOOL, None)]:
        async with expect_error("access_denied"):
            await (await mip.client(org, role)).evaluate("Access:AuditorLog", ["0", str(end)])
