"""GET /audit/holder (holder-signed) and GET /audit/org (auditors)."""

from __future__ import annotations

import time

from gateway_testkit import GatewayClient, assert_error
from ledger_kit import HOSPITAL, PHARMACY, grant, holder_log, issue, mip, new_account, signed_header
from mip_testkit import MipClients

__all__ = ["mip"]


async def test_holder_sees_every_access_auditor_sees_own_org(gw: GatewayClient,
                                                             mip: MipClients) -> None:
    start = int(time.time()) - 1
    account = await new_account(mip)
    rx = await issue(gw, account, "prescription")
    await grant(gw, account, PHARMACY, "medical.prescription", credential_type="prescription")
    r = await gw.http.post("/api/v1/access", headers=gw.staff(PHARMACY, "pharmacist"), json={
        "credential_id": rx["credential_id"], "scope": "medical.prescription",
        "purpose": "dispense"})
    assert r.status_code == 200
    log = await holder_log(gw, account)
    assert [e["action"] for e in log] == ["issue", "grant.create", "read"]
    end = int(time.time()) + 2

    auditor = gw.staff(PHARMACY, "auditor")
    r = await gw.http.get("/api/v1/audit/org", params={"start": start, "end": end},
                          headers=auditor)
    assert r.status_code == 200
    ours = [e for e in r.json() if e["credential_id"] == rx["credential_id"]]
    assert [(e["org"], e["action"]) for e in ours] == [(PHARMACY, "read")]
    hospital = (await gw.http.get("/api/v1/audit/org", params={"start": start, "end": end},
                                  headers=gw.staff(HOSPITAL, "auditor"))).json()
    assert all(e["org"] == HOSPITAL for e in hospital)
    assert any(e["action"] == "issue" and e["credential_id"] == rx["credential_id"]
               for e in hospital)


async def test_audit_refusals(gw: GatewayClient, mip: MipClients) -> None:
    account = await new_account(mip)
    other = await new_account(mip)
    assert_error(await gw.http.get("/api/v1/audit/org", params={"start": 0, "end": 10},
                                   headers=gw.staff(HOSPITAL, "doctor")), 403, "wrong_role")
    assert_error(await gw.http.get("/api/v1/audit/org", params={"start": 10, "end": 0},
                                   headers=gw.staff(HOSPITAL, "auditor")), 422,
                 "invalid_request")
    assert_error(await gw.http.get("/api/v1/audit/org", params={"start": 0, "end": 10}),
                 401, "unauthenticated")
    url = "/api/v1/audit/holder"
    assert_error(await gw.http.get(url, params={"account": account.pseudonym},
                                   headers=signed_header(other, "access.log")), 422,
                 "request_mismatch")
    assert_error(await gw.http.get(url, params={"account": account.pseudonym},
                                   headers=signed_header(account, "grant.list")), 422,
                 "wrong_action")
    assert_error(await gw.http.get(url, params={"account": account.pseudonym},
                                   headers=signed_header(account, "access.log",
                                                         expires=int(time.time()) - 1)),
                 410, "expired")
