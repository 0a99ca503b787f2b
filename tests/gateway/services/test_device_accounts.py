"""Pairing a holder's device at the desk (POST /accounts/device-terms, POST /accounts/device):
the account's key is the device's, the desk session's KYC wallet presents for it, and only
the device can sign for the account afterwards."""
# ruff: noqa: F811 (fixtures imported from enrolment_kit)

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from enrolment_kit import (
    API,
    ensure_enrolled,
    holder_headers,
    hw,  # noqa: F401
    hw_data_dir,  # noqa: F401
)
from gateway_testkit import GatewayClient, assert_error

from chaincode.protocol.encoding import b64
from gateway.holder.keys import sign_holder_request
from gateway.services.faces import face_service
from gateway.services.holder_requests import encode_header
from gateway.services.holders import holder_service


def public_b64(key: Ed25519PrivateKey) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return b64(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


async def test_device_signs_the_desk_terms_and_alone_speaks_for_the_account(
        hw: GatewayClient) -> None:
    bush = await ensure_enrolled(hw, "bush")
    headers = await holder_headers(hw, bush)
    r = await hw.http.post(f"{API}/accounts/device-terms", headers=headers,
                           json={"institution": "HospitalMSP"})
    assert r.status_code == 201, r.text
    terms = r.json()
    assert set(terms) == {"pseudonym", "institution", "min_level", "face_commitment"}
    device = Ed25519PrivateKey.generate()
    url = f"{API}/accounts/device"

    # Terms the session did not issue, altered terms, another action: refused, nothing written.
    other = {**terms, "pseudonym": "ab" * 32}
    assert_error(await hw.http.post(url, headers=headers, json={
        "signed_request": sign_holder_request(device, "account.open", other)}), 422,
        "request_mismatch")
    assert_error(await hw.http.post(url, headers=headers, json={
        "signed_request": sign_holder_request(device, "account.open",
                                              {**terms, "min_level": 1})}), 422,
        "request_mismatch")
    assert_error(await hw.http.post(url, headers=headers, json={
        "signed_request": sign_holder_request(device, "account.close", terms)}), 422,
        "wrong_action")
    # A request whose signature does not verify: the contract refuses it; the terms remain.
    forged = sign_holder_request(device, "account.open", terms)
    forged["signer"] = public_b64(Ed25519PrivateKey.generate())
    assert_error(await hw.http.post(url, headers=headers, json={"signed_request": forged}),
                 401, "bad_signature")
    assert_error(await hw.http.post(url, headers={}, json={
        "signed_request": sign_holder_request(device, "account.open", terms)}), 401,
        "holder_session_required")

    signed = sign_holder_request(device, "account.open", terms)
    r = await hw.http.post(url, headers=headers, json={"signed_request": signed})
    assert r.status_code == 201, r.text
    record = json.loads(await hw.state.ledger.carrier("HospitalMSP").evaluate(
        "Account:Get", [terms["pseudonym"]]))
    assert record["status"] == "open" and record["public_key"] == public_b64(device)
    # Used once: the same terms again are unknown to the session.
    assert_error(await hw.http.post(url, headers=headers, json={"signed_request": signed}),
                 422, "request_mismatch")

    # The device's key speaks for the account; the desk session cannot (not in its directory).
    pseudonym = terms["pseudonym"]
    listing = sign_holder_request(device, "grant.list", {"account": pseudonym})
    r = await hw.http.get(f"{API}/grants", params={"account": pseudonym},
                          headers={"X-MIP-Signed-Request": encode_header(listing)})
    assert r.status_code == 200, r.text
    session = holder_service(hw.state).session(headers["X-MIP-Holder-Session"])
    assert session is not None
    assert pseudonym not in [a.pseudonym for a in session.state.accounts]
    assert_error(await hw.http.get(f"{API}/grants", params={"account": pseudonym},
                                   headers=headers), 404, "account_not_found")


async def test_unused_terms_are_dropped_with_the_session(
        hw: GatewayClient, monkeypatch: pytest.MonkeyPatch) -> None:
    bush = await ensure_enrolled(hw, "bush")
    headers = await holder_headers(hw, bush)
    for _ in range(4):
        r = await hw.http.post(f"{API}/accounts/device-terms", headers=headers,
                               json={"institution": "HospitalMSP"})
        assert r.status_code == 201, r.text
    assert_error(await hw.http.post(f"{API}/accounts/device-terms", headers=headers,
                                    json={"institution": "HospitalMSP"}), 409,
                 "too_many_pending_terms")
    assert_error(await hw.http.post(f"{API}/accounts/device-terms", headers=headers,
                                    json={"institution": "NoSuchMSP"}), 422,
                 "unknown_institution")
    session = holder_service(hw.state).session(headers["X-MIP-Holder-Session"])
    assert session is not None and len(session.device_terms) == 4
    pending = {ref.commitment for _terms, ref in session.device_terms.values()}
    faces = face_service(hw.state)
    revoked: list[str] = []
    real_revoke = faces.revoke_reference
    monkeypatch.setattr(faces, "revoke_reference",
                        lambda ref: revoked.append(ref.commitment) or real_revoke(ref))
    holder_service(hw.state).end_session(headers["X-MIP-Holder-Session"])
    assert session.device_terms == {}
    assert set(revoked) == pending  # their face references are revoked with the session
