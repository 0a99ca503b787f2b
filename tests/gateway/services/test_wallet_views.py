"""The wallet's own reads (routes/wallet_views.py): a passport view signed by the device's key
with the desk's device link, an account view signed by the account's key; every refusal
typed (no signature, wrong signer, bad signature, unknown id, expired, another action)."""
# ruff: noqa: F811 (fixtures imported from enrolment_kit)

from __future__ import annotations

import secrets
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
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
from gateway.services.holder_requests import encode_header


def public_b64(key: Ed25519PrivateKey) -> str:
    return b64(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def signed_header(key: Ed25519PrivateKey, action: str, body: dict[str, Any],
                  **kwargs: Any) -> dict[str, str]:
    return {"X-MIP-Signed-Request": encode_header(sign_holder_request(key, action, body,
                                                                      **kwargs))}


async def test_passport_view_needs_the_devices_signature_and_the_desks_link(
        hw: GatewayClient) -> None:
    bush = await ensure_enrolled(hw, "bush")
    pid = bush.passport_id
    device = Ed25519PrivateKey.generate()
    url = f"{API}/wallet/passport"

    # The link comes from a level-2 desk session only.
    assert_error(await hw.http.post(f"{API}/wallet/passport-link",
                                    json={"device_key": public_b64(device)}), 401,
                 "holder_session_required")
    headers = await holder_headers(hw, bush)
    assert_error(await hw.http.post(f"{API}/wallet/passport-link", headers=headers,
                                    json={"device_key": "not base64 at all, not at all!!"}),
                 422, "invalid_request")
    r = await hw.http.post(f"{API}/wallet/passport-link", headers=headers,
                           json={"device_key": public_b64(device)})
    assert r.status_code == 201, r.text
    link = r.json()
    assert link["action"] == "passport.link_device"
    assert link["body"] == {"passport_id": pid, "device_key": public_b64(device)}

    # Authorised: the device's signature with the link.
    r = await hw.http.get(url, headers=signed_header(
        device, "passport.view", {"passport_id": pid, "link": link}))
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["passport_id"] == pid and view["status"] == "active"
    # The level the ledger has now (other tests of this session's gateway may have vouched).
    ledger = (await hw.http.get(f"{API}/passports/{pid}",
                                headers=hw.staff("HospitalMSP", "registrar"))).json()
    assert view["kyc_level"] == ledger["kyc_level"] >= 1, (view, ledger)
    assert isinstance(view["provisional"], bool)
    assert view["provisional"] == (view["level_on_clear"] is not None)
    assert isinstance(view["guardians"], list) and view["enrolling_org"] == "HospitalMSP"
    assert view["device_key_is_passport_key"] is False

    # Unauthorised: no signature; the id alone; the device without the link; another device
    # with this device's link; a link the passport key did not sign; a forged signature.
    assert_error(await hw.http.get(url), 401, "signed_request_required")
    assert_error(await hw.http.get(url, headers=signed_header(
        device, "passport.view", {"passport_id": pid})), 401, "device_not_linked")
    thief = Ed25519PrivateKey.generate()
    assert_error(await hw.http.get(url, headers=signed_header(
        thief, "passport.view", {"passport_id": pid, "link": link})), 403, "request_mismatch")
    self_made = sign_holder_request(thief, "passport.link_device",
                                    {"passport_id": pid, "device_key": public_b64(thief)})
    assert_error(await hw.http.get(url, headers=signed_header(
        thief, "passport.view", {"passport_id": pid, "link": self_made})), 401, "bad_signature")
    forged = sign_holder_request(device, "passport.view", {"passport_id": pid, "link": link})
    forged["signature"] = b64(bytes(64))
    assert_error(await hw.http.get(url, headers={"X-MIP-Signed-Request": encode_header(forged)}),
                 401, "bad_signature")
    # Unknown id; expired; another action; a header that is not a signed request.
    assert_error(await hw.http.get(url, headers=signed_header(
        device, "passport.view", {"passport_id": secrets.token_hex(32), "link": link})),
        404, "not_found")
    assert_error(await hw.http.get(url, headers=signed_header(
        device, "passport.view", {"passport_id": pid, "link": link},
        expires=int(time.time()) - 5)), 410, "expired")
    assert_error(await hw.http.get(url, headers=signed_header(
        device, "grant.list", {"passport_id": pid, "link": link})), 422, "wrong_action")
    assert_error(await hw.http.get(url, headers={"X-MIP-Signed-Request": "%%%"}), 422,
                 "invalid_request")


async def test_account_view_needs_the_accounts_key(hw: GatewayClient) -> None:
    bush = await ensure_enrolled(hw, "bush")
    headers = await holder_headers(hw, bush)
    r = await hw.http.post(f"{API}/accounts/device-terms", headers=headers,
                           json={"institution": "HospitalMSP"})
    assert r.status_code == 201, r.text
    terms = r.json()
    device = Ed25519PrivateKey.generate()
    r = await hw.http.post(f"{API}/accounts/device", headers=headers, json={
        "signed_request": sign_holder_request(device, "account.open", terms)})
    assert r.status_code == 201, r.text
    pseudonym = terms["pseudonym"]
    url = f"{API}/wallet/accounts/{pseudonym}"

    r = await hw.http.get(url, headers=signed_header(device, "account.view",
                                                     {"account": pseudonym}))
    assert r.status_code == 200, r.text
    assert r.json() == {**r.json(), "pseudonym": pseudonym, "institution": "HospitalMSP",
                        "status": "open", "kyc_level": terms["min_level"]}
    assert "public_key" not in r.json()

    other = Ed25519PrivateKey.generate()
    assert_error(await hw.http.get(url), 401, "signed_request_required")
    assert_error(await hw.http.get(url, headers=signed_header(
        other, "account.view", {"account": pseudonym})), 401, "bad_signature")
    assert_error(await hw.http.get(url, headers=signed_header(
        device, "account.view", {"account": "ab" * 32})), 422, "request_mismatch")
    unknown = secrets.token_hex(32)
    assert_error(await hw.http.get(f"{API}/wallet/accounts/{unknown}", headers=signed_header(
        device, "account.view", {"account": unknown})), 404, "not_found")
    assert_error(await hw.http.get(url, headers=signed_header(
        device, "account.view", {"account": pseudonym},
        expires=int(time.time()) + 3600)), 422, "invalid_request")
