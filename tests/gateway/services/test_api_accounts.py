"""Accounts from a level-2 holder session: open (KYC proof, unlinkable key), list, close."""
# ruff: noqa: F811 (fixtures imported from enrolment_kit)

from __future__ import annotations

import json

from enrolment_kit import (
    API,
    ensure_enrolled,
    holder_headers,
    hw,  # noqa: F401
    hw_data_dir,  # noqa: F401
    session_headers,
    unlock,
)
from gateway_testkit import GatewayClient, assert_error

from gateway.holder import keys
from gateway.services.holders import holder_service


async def test_open_list_close_account(hw: GatewayClient) -> None:
    bush = await ensure_enrolled(hw, "bush")
    headers = await holder_headers(hw, bush)
    r = await hw.http.post(f"{API}/accounts", headers=headers,
                           json={"institution": "SchoolMSP"})
    assert r.status_code == 201, r.text
    pseudonym = r.json()["pseudonym"]
    record = json.loads(await hw.state.ledger.carrier("SchoolMSP").evaluate(
        "Account:Get", [pseudonym]))
    assert record["status"] == "open" and record["kyc_level"] == 2
    session = holder_service(hw.state).session(headers["X-MIP-Holder-Session"])
    assert session is not None
    assert record["public_key"] == session.account_key(pseudonym).public_b64
    # The directory survives a new unlock (sealed under the master secret).
    headers2 = await holder_headers(hw, bush)
    listed = (await hw.http.get(f"{API}/accounts", headers=headers2)).json()["accounts"]
    assert pseudonym in [a["pseudonym"] for a in listed]
    # A signed request for the account verifies as the account key's.
    again = holder_service(hw.state).session(headers2["X-MIP-Holder-Session"])
    assert again is not None
    signed = again.sign(pseudonym, "grant.list", {"account": pseudonym})
    assert signed["signer"] == record["public_key"]
    # Close it.
    r = await hw.http.delete(f"{API}/accounts/{pseudonym}", headers=headers2)
    assert r.status_code == 204, r.text
    record = json.loads(await hw.state.ledger.carrier("SchoolMSP").evaluate(
        "Account:Get", [pseudonym]))
    assert record["status"] != "open"
    assert_error(await hw.http.delete(f"{API}/accounts/{pseudonym}", headers=headers2),
                 409, "account_closed")


async def test_closing_an_account_ends_its_grants(hw: GatewayClient) -> None:
    """The issue's case: after the close a SchoolMSP admin still read the diagnosis, and the
    holder could neither revoke the grant nor read the log (409 account_closed)."""
    bush = await ensure_enrolled(hw, "bush")
    headers = await holder_headers(hw, bush)
    r = await hw.http.post(f"{API}/accounts", headers=headers,
                           json={"institution": "HospitalMSP"})
    assert r.status_code == 201, r.text
    pseudonym = r.json()["pseudonym"]
    r = await hw.http.post(f"{API}/credentials", headers=hw.staff("HospitalMSP", "doctor"),
                           json={"type": "record", "subject_account": pseudonym, "content": {
                               "diagnosis": "acute otitis media", "notes": "review"}})
    assert r.status_code == 201, r.text
    credential_id = r.json()["credential_id"]
    r = await hw.http.post(f"{API}/grants", headers=headers, json={
        "account": pseudonym, "grantee_org": "SchoolMSP", "grantee_role": "admin",
        "scope": "medical.record", "credential_id": credential_id})
    assert r.status_code == 201, r.text
    grant_id = r.json()["grant_id"]
    school_admin = hw.staff("SchoolMSP", "admin")
    ask = {"credential_id": credential_id, "scope": "medical.record", "purpose": "hiring"}
    r = await hw.http.post(f"{API}/access", headers=school_admin, json=ask)
    assert r.status_code == 200 and r.json()["fields"]["diagnosis"] == "acute otitis media"

    r = await hw.http.delete(f"{API}/accounts/{pseudonym}", headers=headers)
    assert r.status_code == 204, r.text
    # The live grant releases nothing any more.
    r = await hw.http.post(f"{API}/access", headers=school_admin, json=ask)
    assert_error(r, 403, "access_denied")
    assert "otitis" not in r.text
    # The holder still lists the (now dead) grant, reads the log and revokes the grant.
    r = await hw.http.get(f"{API}/grants", headers=headers, params={"account": pseudonym})
    assert r.status_code == 200, r.text
    assert [(g["grant_id"], g["live"]) for g in r.json()] == [(grant_id, False)]
    r = await hw.http.get(f"{API}/audit/holder", headers=headers, params={"account": pseudonym})
    assert r.status_code == 200, r.text
    assert [e["org"] for e in r.json() if e["action"] == "read"] == ["SchoolMSP"]
    r = await hw.http.post(f"{API}/grants/{grant_id}/revoke", headers=headers,
                           json={"account": pseudonym})
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    # Adding is still refused for a closed account.
    assert_error(await hw.http.post(f"{API}/grants", headers=headers, json={
        "account": pseudonym, "grantee_org": "SchoolMSP", "scope": "medical.record",
        "credential_id": credential_id}), 409, "account_closed")


async def test_account_refusals_change_nothing(hw: GatewayClient) -> None:
    bush = await ensure_enrolled(hw, "bush")
    level1 = await unlock(hw, "bush", bush.passport_id)
    h1 = session_headers(level1)
    assert_error(await hw.http.post(f"{API}/accounts", headers=h1,
                                    json={"institution": "SchoolMSP"}), 403,
                 "holder_level_too_low")
    headers = await holder_headers(hw, bush)
    before = (await hw.http.get(f"{API}/accounts", headers=headers)).json()["accounts"]
    assert_error(await hw.http.post(f"{API}/accounts", headers=headers,
                                    json={"institution": "NowhereMSP"}), 422,
                 "unknown_institution")
    assert_error(await hw.http.post(f"{API}/accounts", headers=headers,
                                    json={"institution": "SchoolMSP", "min_level": 3}), 409,
                 "kyc_level_too_low")
    assert_error(await hw.http.post(f"{API}/accounts", headers=headers, json={}), 422,
                 "invalid_request")
    assert_error(await hw.http.delete(f"{API}/accounts/{'0' * 64}", headers=headers), 404,
                 "account_not_found")
    after = (await hw.http.get(f"{API}/accounts", headers=headers)).json()["accounts"]
    assert after == before


def test_account_keys_are_hardened_and_unlinkable() -> None:
    master = keys.new_master_secret()
    a = keys.account_key(master, "HospitalMSP", 0)
    b = keys.account_key(master, "HospitalMSP", 1)
    c = keys.account_key(master, "SchoolMSP", 0)
    assert len({a.public_raw, b.public_raw, c.public_raw,
                keys.passport_key(master).public_raw}) == 4
    # Every step is hardened: the derivation path says so, and SLIP-0010 Ed25519 has no
    # public derivation, so an account key gives no way to compute a sibling.
    assert all(step.endswith("'") for step in a.path.split("/")[1:])
