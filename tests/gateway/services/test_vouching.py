"""Vouching: two level-2 holders vouch; the vouchee reaches level 3 on the ledger and gets a
level-3 KYC credential at its next unlock."""
# ruff: noqa: F811 (fixtures imported from enrolment_kit)

from __future__ import annotations

import json

from enrolment_kit import (
    API,
    ensure_enrolled,
    holder_headers,
    hw,  # noqa: F401
    hw_data_dir,  # noqa: F401
)
from gateway_testkit import GatewayClient, assert_error
from mip_testkit import HolderKey, register_body, request_arg

from gateway.services.holders import holder_service


async def test_vouches_lift_the_vouchee_to_level_3(hw: GatewayClient) -> None:
    bush = await ensure_enrolled(hw, "bush")
    stoiber = await ensure_enrolled(hw, "stoiber")
    # Second voucher: a level-2 passport registered directly on the ledger.
    other = HolderKey.generate()
    registrar = hw.state.ledger.contract("SchoolMSP", "registrar")
    other_record = json.loads(await registrar.submit("Passport:Register", [request_arg(
        other.sign_request("passport.register", register_body(2)))]))
    headers = await holder_headers(hw, stoiber)
    r = await hw.http.post(f"{API}/passports/{bush.passport_id}/vouches", headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["vouchee_level"] == 2
    # Again (as a retry after a lost answer): the same outcome, counted once.
    r = await hw.http.post(f"{API}/passports/{bush.passport_id}/vouches", headers=headers)
    assert r.status_code == 201 and r.json()["vouchee_level"] == 2, r.text
    # Self-vouch is refused by the contract.
    assert_error(await hw.http.post(f"{API}/passports/{stoiber.passport_id}/vouches",
                                    headers=headers), 422, "invalid_request")
    request = other.sign_request("passport.vouch", {"vouchee": bush.passport_id})
    result = json.loads(await hw.state.ledger.carrier("HospitalMSP").submit(
        "Passport:Vouch", [request_arg(request)]))
    assert result["kyc_level"] == 3
    assert other_record["kyc_level"] == 2
    # Public record through any staff.
    r = await hw.http.get(f"{API}/passports/{bush.passport_id}",
                          headers=hw.staff("PharmacyMSP", "pharmacist"))
    assert r.status_code == 200 and r.json()["kyc_level"] == 3
    assert "private" not in json.dumps(r.json())
    # Next unlock: the wallet gets its level-3 credential; a level-3 account opens.
    bush_headers = await holder_headers(hw, bush)
    session = holder_service(hw.state).session(bush_headers["X-MIP-Holder-Session"])
    assert session is not None and session.state.kyc_level == 3
    r = await hw.http.post(f"{API}/accounts", headers=bush_headers,
                           json={"institution": "HospitalMSP", "min_level": 3})
    assert r.status_code == 201, r.text


async def test_vouch_refusals(hw: GatewayClient) -> None:
    stoiber = await ensure_enrolled(hw, "stoiber")
    assert_error(await hw.http.post(f"{API}/passports/{'cd' * 32}/vouches"), 401,
                 "holder_session_required")
    headers = await holder_headers(hw, stoiber)
    assert_error(await hw.http.post(f"{API}/passports/{'cd' * 32}/vouches", headers=headers),
                 404, "not_found")
    assert_error(await hw.http.get(f"{API}/passports/{'cd' * 32}",
                                   headers=hw.staff("HospitalMSP", "doctor")), 404, "not_found")
    assert_error(await hw.http.get(f"{API}/passports/{'cd' * 32}"), 401, "unauthenticated")
