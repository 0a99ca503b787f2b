"""Grants and the holder audit view through an unlocked holder session (the desk form)."""
# ruff: noqa: F811 (fixtures imported from enrolment_kit)

from __future__ import annotations

from enrolment_kit import API, ensure_enrolled, holder_headers, hw, hw_data_dir  # noqa: F401
from gateway_testkit import GatewayClient, assert_error


async def test_session_grants_lists_revokes_and_reads_its_log(hw: GatewayClient) -> None:
    bush = await ensure_enrolled(hw, "bush")
    headers = await holder_headers(hw, bush)
    r = await hw.http.post(f"{API}/accounts", headers=headers,
                           json={"institution": "HospitalMSP"})
    assert r.status_code == 201, r.text
    account = r.json()["pseudonym"]
    r = await hw.http.post(f"{API}/grants", headers=headers, json={
        "account": account, "grantee_org": "PharmacyMSP", "scope": "medical.prescription",
        "credential_type": "prescription", "ttl_s": 3600})
    assert r.status_code == 201, r.text
    grant_id = r.json()["grant_id"]
    listed = (await hw.http.get(f"{API}/grants", params={"account": account},
                                headers=headers)).json()
    assert [(g["grant_id"], g["live"]) for g in listed] == [(grant_id, True)]
    r = await hw.http.post(f"{API}/grants/{grant_id}/revoke", headers=headers,
                           json={"account": account})
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    log = (await hw.http.get(f"{API}/audit/holder", params={"account": account},
                             headers=headers)).json()
    assert [e["action"] for e in log] == ["grant.create", "grant.revoke"]
    # An account the session does not hold cannot be signed for.
    r = await hw.http.post(f"{API}/grants", headers=headers, json={
        "account": "ab" * 32, "grantee_org": "PharmacyMSP", "scope": "medical.prescription",
        "credential_type": "prescription"})
    assert r.status_code in (403, 404), r.text
    assert_error(await hw.http.post(f"{API}/grants", json={
        "account": account, "grantee_org": "PharmacyMSP", "scope": "medical.prescription",
        "credential_type": "prescription"}, headers={
            **hw.staff("HospitalMSP", "doctor"), "X-MIP-Holder-Session": "nope"}),
        404, "holder_session_not_found")
