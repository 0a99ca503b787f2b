"""POST /credentials, GET /credentials/{id}, POST /credentials/{id}/revoke, POST /checks."""

from __future__ import annotations

import json

from gateway_testkit import GatewayClient, assert_error
from ledger_kit import HOSPITAL, SCHOOL, content_of, holder_log, issue, mip, new_account
from mip_testkit import MipClients

from chaincode.protocol.canonical import canonical_json

__all__ = ["mip"]


async def test_doctor_issues_a_prescription_and_anyone_checks_it(
        gw: GatewayClient, mip: MipClients) -> None:
    account = await new_account(mip)
    issued = await issue(gw, account, "prescription")
    assert json.loads(issued["content"]) == content_of(
        "prescription", expiry=json.loads(issued["content"])["expiry"])
    assert issued["content"].encode() == canonical_json(json.loads(issued["content"]))
    record = issued["record"]
    assert record["issuer_org"] == HOSPITAL and record["subject_account"] == account.pseudonym
    assert "drug" not in json.dumps(record)  # the public record holds a hash only

    r = await gw.http.get(f"/api/v1/credentials/{issued['credential_id']}")
    assert r.status_code == 200 and r.json()["fills"]["allowed"] == 1

    check = {"credential_id": issued["credential_id"], "content": issued["content"],
             "salt": issued["salt"]}
    r = await gw.http.post("/api/v1/checks", json=check)
    assert r.json() == {"credential_id": issued["credential_id"], "valid": True,
                        "status": "active", "type": "prescription", "issuer_org": HOSPITAL}
    # The same content as an object is canonicalised; a changed field is not valid.
    as_object = {**check, "content": json.loads(issued["content"])}
    assert (await gw.http.post("/api/v1/checks", json=as_object)).json()["valid"] is True
    forged = {**check, "content": issued["content"].replace("21", "99")}
    assert (await gw.http.post("/api/v1/checks", json=forged)).json()["valid"] is False


async def test_registrar_issues_diploma_and_revokes_it(gw: GatewayClient,
                                                       mip: MipClients) -> None:
    account = await new_account(mip, SCHOOL)
    issued = await issue(gw, account, "diploma")
    cid = issued["credential_id"]
    registrar = gw.staff(SCHOOL, "school_registrar")
    # Another org's issuing role cannot revoke it.
    assert_error(await gw.http.post(f"/api/v1/credentials/{cid}/revoke",
                                    json={"reason": "x"}, headers=gw.staff(HOSPITAL, "doctor")),
                 403, "wrong_role")
    r = await gw.http.post(f"/api/v1/credentials/{cid}/revoke", json={"reason": "error"},
                           headers=registrar)
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    r = await gw.http.post("/api/v1/checks", json={
        "credential_id": cid, "content": issued["content"], "salt": issued["salt"]})
    assert r.json()["valid"] is True and r.json()["status"] == "revoked"
    # Revoked is final.
    assert_error(await gw.http.post(f"/api/v1/credentials/{cid}/revoke",
                                    json={"reason": "again"}, headers=registrar),
                 409, "precondition_failed")


async def test_issue_refusals_change_nothing(gw: GatewayClient, mip: MipClients) -> None:
    account = await new_account(mip)
    before = await holder_log(gw, account)
    body = {"type": "prescription", "subject_account": account.pseudonym,
            "content": content_of("prescription")}
    url = "/api/v1/credentials"
    assert_error(await gw.http.post(url, json=body), 401, "unauthenticated")
    assert_error(await gw.http.post(url, json=body, headers=gw.staff("PharmacyMSP",
                                                                     "pharmacist")),
                 403, "wrong_role")
    assert_error(await gw.http.post(url, json=body, headers=gw.staff(SCHOOL, "doctor")),
                 403, "wrong_org")
    assert_error(await gw.http.post(url, json={**body, "type": "diploma"},
                                    headers=gw.staff(HOSPITAL, "doctor")), 422,
                 "invalid_request")
    doctor = gw.staff(HOSPITAL, "doctor")
    for bad in ({**body, "content": {**body["content"], "diagnosis": "leak"}},
                {**body, "content": {**body["content"], "quantity": 0}},
                {**body, "subject_account": "nope"},
                {**body, "type": "passport"}):
        assert_error(await gw.http.post(url, json=bad, headers=doctor), 422, "invalid_request")
    # A school account cannot hold hospital credentials (the contract says so).
    school_account = await new_account(mip, SCHOOL)
    assert_error(await gw.http.post(url, json={**body, "subject_account":
                                               school_account.pseudonym}, headers=doctor),
                 403, "access_denied")
    assert_error(await gw.http.post(url, json={**body, "subject_account": "ab" * 32},
                                    headers=doctor), 404, "not_found")
    assert await holder_log(gw, account) == before


async def test_unknown_and_malformed_ids(gw: GatewayClient) -> None:
    assert_error(await gw.http.get("/api/v1/credentials/no-such-credential"), 404, "not_found")
    assert_error(await gw.http.post("/api/v1/checks", json={
        "credential_id": "no-such", "content": "{}", "salt": "AAAAAAAAAAAAAAAAAAAAAA=="}),
        404, "not_found")
    assert_error(await gw.http.post("/api/v1/checks", json={
        "credential_id": "x", "content": "{}", "salt": "not base64!"}), 422, "invalid_request")
    assert_error(await gw.http.post("/api/v1/credentials/x/revoke", json={"reason": ""},
                                    headers=gw.staff(HOSPITAL, "doctor")),
                 422, "invalid_request")
