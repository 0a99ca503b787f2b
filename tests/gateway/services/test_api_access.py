"""POST /access: a grantee reads only its scope's fields, after an audited request."""

from __future__ import annotations

from gateway_testkit import GatewayClient, assert_error
from ledger_kit import HOSPITAL, PHARMACY, SCHOOL, grant, holder_log, issue, mip, new_account
from mip_testkit import MipClients

__all__ = ["mip"]


async def test_pharmacy_reads_prescription_never_diagnosis(gw: GatewayClient,
                                                           mip: MipClients) -> None:
    account = await new_account(mip)
    rx = await issue(gw, account, "prescription")
    record = await issue(gw, account, "record")
    pharmacist = gw.staff(PHARMACY, "pharmacist")
    ask = {"credential_id": rx["credential_id"], "scope": "medical.prescription",
           "purpose": "dispense"}
    # No grant yet: refused, and nothing recorded.
    before = await holder_log(gw, account)
    assert_error(await gw.http.post("/api/v1/access", json=ask, headers=pharmacist), 403,
                 "access_denied")
    assert await holder_log(gw, account) == before

    await grant(gw, account, PHARMACY, "medical.prescription", credential_type="prescription")
    r = await gw.http.post("/api/v1/access", json=ask, headers=pharmacist)
    assert r.status_code == 200, r.text
    fields = r.json()["fields"]
    assert fields["drug"] == "amoxicillin" and "prescriber" not in fields
    assert "diagnosis" not in r.text
    # The record (diagnosis) is a separate credential the grant does not cover.
    assert_error(await gw.http.post("/api/v1/access", json={
        "credential_id": record["credential_id"], "scope": "medical.record",
        "purpose": "curious"}, headers=pharmacist), 403, "access_denied")
    assert_error(await gw.http.post("/api/v1/access", json={
        **ask, "credential_id": record["credential_id"]}, headers=pharmacist), 422,
        "invalid_request")
    # The read is in the holder's log, naming the pharmacy.
    reads = [e for e in await holder_log(gw, account) if e["action"] == "read"]
    assert [(e["org"], e["credential_id"]) for e in reads] == [(PHARMACY, rx["credential_id"])]


async def test_employer_reads_diploma_never_grades(gw: GatewayClient, mip: MipClients) -> None:
    account = await new_account(mip, SCHOOL)
    diploma = await issue(gw, account, "diploma")
    transcript = await issue(gw, account, "transcript")
    employer = gw.staff(HOSPITAL, "admin")  # an employer is any member org's staff
    await grant(gw, account, HOSPITAL, "education.diploma", credential_id=diploma["credential_id"])
    r = await gw.http.post("/api/v1/access", json={
        "credential_id": diploma["credential_id"], "scope": "education.diploma",
        "purpose": "hiring"}, headers=employer)
    assert r.status_code == 200 and r.json()["fields"] == {
        "degree": "BSc", "field": "Physics", "awarded": "2024-06-30"}
    assert_error(await gw.http.post("/api/v1/access", json={
        "credential_id": transcript["credential_id"], "scope": "education.transcript",
        "purpose": "hiring"}, headers=employer), 403, "access_denied")


async def test_revoked_or_expired_grant_reads_nothing(gw: GatewayClient,
                                                      mip: MipClients) -> None:
    account = await new_account(mip)
    rx = await issue(gw, account, "prescription")
    made = await grant(gw, account, PHARMACY, "medical.prescription",
                       credential_id=rx["credential_id"])
    revoke = account.sign("grant.revoke", {"account": account.pseudonym,
                                           "grant_id": made["grant_id"]})
    assert (await gw.http.post(f"/api/v1/grants/{made['grant_id']}/revoke",
                               json={"signed_request": revoke})).status_code == 200
    ask = {"credential_id": rx["credential_id"], "scope": "medical.prescription",
           "purpose": "dispense"}
    pharmacist = gw.staff(PHARMACY, "pharmacist")
    assert_error(await gw.http.post("/api/v1/access", json=ask, headers=pharmacist), 403,
                 "access_denied")
    # A grant that expires within seconds stops working once expired.
    import asyncio

    await grant(gw, account, PHARMACY, "medical.prescription",
                credential_id=rx["credential_id"], ttl=2)
    await asyncio.sleep(2.5)
    assert_error(await gw.http.post("/api/v1/access", json=ask, headers=pharmacist), 403,
                 "access_denied")
    assert_error(await gw.http.post("/api/v1/access", json=ask), 401, "unauthenticated")
    assert_error(await gw.http.post("/api/v1/access", json={**ask, "scope": "x"},
                                    headers=pharmacist), 422, "invalid_request")
    assert_error(await gw.http.post("/api/v1/access", json={**ask, "credential_id": "none"},
                                    headers=pharmacist), 404, "not_found")
