"""A registrar revokes a passport through the gateway: the ledger record, its KYC credential
(status list published) and its open holder sessions all end, so no new account can be
opened with it. Only the enrolling org revokes, and only it publishes the KYC revocation;
other orgs' registrars propose a fraudulent revocation, effective at a majority."""
# ruff: noqa: F811 (fixtures imported from enrolment_kit)

from __future__ import annotations

import json
import secrets

import pytest
from enrolment_kit import (
    API,
    ensure_enrolled,
    holder_headers,
    hw,  # noqa: F401
    hw_data_dir,  # noqa: F401
    unlock,
)
from gateway_testkit import GatewayClient, assert_error

from gateway.fabric import ChaincodeError
from gateway.holder import keys
from gateway.services.holders import holder_service


async def test_revoked_passport_cannot_open_accounts(hw: GatewayClient) -> None:
    astro = await ensure_enrolled(hw, "astronaut")  # enrolled at HospitalMSP
    url = f"{API}/passports/{astro.passport_id}/revoke"
    body = {"reason": "identity fraud at the desk", "fraudulent": False}
    # Refusals first: they change nothing.
    assert_error(await hw.http.post(url, json=body), 401, "unauthenticated")
    assert_error(await hw.http.post(url, headers=hw.staff("HospitalMSP", "doctor"), json=body),
                 403, "wrong_role")
    registrar = hw.staff("HospitalMSP", "registrar")
    assert_error(await hw.http.post(url, headers=registrar, json={"reason": ""}), 422,
                 "invalid_request")
    assert_error(await hw.http.post(f"{API}/passports/{'cd' * 32}/revoke", headers=registrar,
                                    json=body), 404, "not_found")
    # Another org's registrar does not revoke a HospitalMSP passport.
    for org in ("SchoolMSP", "PharmacyMSP"):
        assert_error(await hw.http.post(url, headers=hw.staff(org, "registrar"), json=body),
                     403, "wrong_org")
    headers = await holder_headers(hw, astro)
    r = await hw.http.post(f"{API}/accounts", headers=headers, json={"institution": "SchoolMSP"})
    assert r.status_code == 201, r.text  # it worked before
    session = holder_service(hw.state).session(headers["X-MIP-Holder-Session"])
    assert session is not None
    wallet, master = session.state.wallet, session.master

    # A PharmacyMSP registrar's fraud claim is a proposal: recorded with its reason, nothing
    # revoked, and the KYC revocation is not published in HospitalMSP's name.
    fraud = {"reason": "forged documents", "fraudulent": True}
    r = await hw.http.post(url, headers=hw.staff("PharmacyMSP", "registrar"), json=fraud)
    assert r.status_code == 200, r.text
    assert r.json()["fraud_pending"] is True and r.json()["status"] == "active"
    assert r.json()["kyc_credentials_revoked"] == 0
    assert r.json()["fraud_proposals"] == [{"org": "PharmacyMSP", "reason": "forged documents"}]
    r = await hw.http.post(f"{API}/accounts", headers=headers, json={"institution": "SchoolMSP"})
    assert r.status_code == 201, r.text  # the holder's session still works
    # A second org (SchoolMSP) makes a majority: revoked on the ledger, the session ends, but
    # the KYC revocation is left to HospitalMSP's own registrar.
    r = await hw.http.post(url, headers=hw.staff("SchoolMSP", "registrar"),
                           json={**fraud, "reason": "same face, two names"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "revoked" and r.json()["fraud_pending"] is False
    assert r.json()["kyc_credentials_revoked"] == 0 and r.json()["kyc_revocation_pending"]
    assert hw.state.db.query_one(
        "SELECT revoked FROM kyc_credentials WHERE passport_id = ?",
        (astro.passport_id,))["revoked"] == 0
    # The ended session is as unknown as any (holder sessions: 404 before anything else).
    assert_error(await hw.http.post(f"{API}/accounts", headers=headers,
                                    json={"institution": "SchoolMSP"}), 404,
                 "holder_session_not_found")
    # Only now, from the enrolling org, is the KYC credential revoked.
    r = await hw.http.post(url, headers=registrar, json=body)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "revoked" and r.json()["kyc_credentials_revoked"] == 1
    assert r.json()["kyc_revocation_pending"] is False
    record = json.loads(await hw.state.ledger.carrier("HospitalMSP").evaluate(
        "Passport:Get", [astro.passport_id]))
    assert record["status"] == "revoked" and record["fraudulent"] is True
    # A new unlock is refused.
    assert_error(await unlock(hw, "astronaut", astro.passport_id, password=astro.password),
                 404, "passport_not_found")
    # Even with the wallet in hand (as a holder who kept their keys), the revoked KYC
    # credential no longer proves: the ledger refuses the account.
    key = keys.account_key(master, "PharmacyMSP", 0)
    pseudonym = keys.new_pseudonym()
    request = key.sign_request("account.open", {
        "pseudonym": pseudonym, "institution": "PharmacyMSP", "min_level": 2,
        "face_commitment": secrets.token_hex(32)},
        hw.state.settings.channel)
    presentation = wallet.present(key.public_raw, pseudonym, 2)  # at the published list
    with pytest.raises(ChaincodeError) as refused:
        await hw.state.ledger.carrier("PharmacyMSP").submit(
            "Account:Open", [json.dumps(request), json.dumps(presentation)])
    # The non-revocation proof fails to verify (as tests/chaincode/mip/test_accounts.py).
    assert refused.value.chaincode_message.startswith("bad_signature")
    # The same request again (its answer lost, say): the finished outcome, unchanged.
    again = await hw.http.post(url, headers=registrar, json=body)
    assert again.status_code == 200 and again.json() == r.json(), again.text
    # Another request (another reason, or another registrar): the ledger kept the first, and
    # there is nothing left to do.
    assert_error(await hw.http.post(url, headers=registrar, json={**body, "reason": "other"}),
                 409, "already_revoked")
