"""Moving desk-custodied keys to the holder's device (services/key_moves.py): the desk signs
the custodial half, the device the new key's; afterwards the custodial master secret the
vault wraps controls nothing: the ledger refuses what it signs, and the vault is retired."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from enrolment_kit import API, PASSWORDS, enrol, serving, session_headers, unlock
from gateway_testkit import GatewayClient, assert_error
from mip_testkit import MipNetwork

from chaincode.protocol.encoding import b64
from face_engine.engine import FaceEngine
from gateway.fabric import ChaincodeError
from gateway.holder import keys
from gateway.holder.keys import sign_holder_request
from gateway.services.holders import holder_service

WHO = "astronaut"


def public_b64(key: Ed25519PrivateKey) -> str:
    return b64(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


@pytest.fixture
async def gw(gw_network: MipNetwork, tmp_path: Path,
             face_engine: FaceEngine) -> AsyncIterator[GatewayClient]:
    # A data dir of its own: the holder here ends with a retired vault, which no other
    # test's shared holder may have.
    async with serving(tmp_path / "moves", gw_network, face_engine) as client:
        yield client


async def test_device_takes_the_account_and_passport_and_the_vault_retires(
        gw: GatewayClient) -> None:
    passport_id = (await enrol(gw, WHO))["passport_id"]
    unlocked = await unlock(gw, WHO, passport_id, password=PASSWORDS[WHO])
    headers = session_headers(unlocked)
    r = await gw.http.post(f"{API}/accounts", headers=headers,
                           json={"institution": "HospitalMSP"})
    assert r.status_code == 201, r.text
    pseudonym = r.json()["pseudonym"]
    session = holder_service(gw.state).session(headers["X-MIP-Holder-Session"])
    assert session is not None
    master = session.master  # the custodial secret, as the desk's gateway holds it
    entry = session.account(pseudonym)
    custodial = keys.account_key(master, entry.institution, entry.index)

    # The terms say what the device signs; the vault cannot retire while it controls things.
    r = await gw.http.post(f"{API}/accounts/{pseudonym}/move-terms", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"move": "account", "action": "account.rotate", "pseudonym": pseudonym,
                        "institution": "HospitalMSP"}
    assert_error(await gw.http.post(f"{API}/holders/sessions/current/vault/retire",
                                    headers=headers), 409, "custody_still_in_use")

    device = Ed25519PrivateKey.generate()
    body = {"pseudonym": pseudonym, "new_public_key": public_b64(device)}
    url = f"{API}/accounts/{pseudonym}/move"
    # Refused before the ledger: not signed by the new key, another action, another account.
    assert_error(await gw.http.post(url, headers=headers, json={"signed_request": (
        sign_holder_request(Ed25519PrivateKey.generate(), "account.rotate", body))}), 422,
        "request_mismatch")
    assert_error(await gw.http.post(url, headers=headers, json={"signed_request": (
        sign_holder_request(device, "account.close", body))}), 422, "wrong_action")
    assert_error(await gw.http.post(url, headers=headers, json={"signed_request": (
        sign_holder_request(device, "account.rotate", {**body, "pseudonym": "ab" * 32}))}),
        422, "request_mismatch")
    assert_error(await gw.http.post(url, headers={}, json={"signed_request": (
        sign_holder_request(device, "account.rotate", body))}), 401,
        "holder_session_required")

    r = await gw.http.post(url, headers=headers, json={"signed_request": (
        sign_holder_request(device, "account.rotate", body))})
    assert r.status_code == 200, r.text
    ledger = gw.state.ledger.carrier("HospitalMSP")
    record = json.loads(await ledger.evaluate("Account:Get", [pseudonym]))
    assert record["public_key"] == public_b64(device)
    assert record["retired_keys"] == [custodial.public_b64]

    # The custodial secret cannot create a grant for the account: the ledger refuses it.
    terms = {"account": pseudonym, "grant_id": "g-moved-1", "grantee_org": "PharmacyMSP",
             "scope": "medical.prescription", "credential_type": "prescription",
             "expires": int(time.time()) + 3600}
    forged = custodial.sign_request("grant.create", terms, gw.state.settings.channel)
    with pytest.raises(ChaincodeError, match="bad_signature"):
        await ledger.submit("Grant:Create", [json.dumps(forged)])
    # ...and the desk session no longer offers to sign for it.
    assert_error(await gw.http.post(f"{API}/grants", headers=headers, json={
        "account": pseudonym, "grantee_org": "PharmacyMSP", "scope": "medical.prescription",
        "credential_type": "prescription"}), 409, "account_moved")
    listed = (await gw.http.get(f"{API}/accounts", headers=headers)).json()["accounts"]
    assert [a["status"] for a in listed if a["pseudonym"] == pseudonym] == ["moved"]
    # The device's key speaks for it.
    r = await gw.http.post(f"{API}/grants", json={"signed_request": sign_holder_request(
        device, "grant.create", {**terms, "grant_id": "g-moved-2"})})
    assert r.status_code == 201, r.text

    # The passport: terms, the device's passport key confirms, the desk signs the old half.
    r = await gw.http.post(f"{API}/holders/sessions/current/passport/move-terms",
                           headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["passport_id"] == passport_id
    device_passport = Ed25519PrivateKey.generate()
    r = await gw.http.post(f"{API}/holders/sessions/current/passport/move", headers=headers,
                           json={"signed_request": sign_holder_request(
                               device_passport, "passport.move",
                               {"passport_id": passport_id,
                                "new_public_key": public_b64(device_passport)})})
    assert r.status_code == 200, r.text
    passport = json.loads(await ledger.evaluate("Passport:Get", [passport_id]))
    assert passport["public_key"] == public_b64(device_passport)
    # The custodial passport key speaks for nothing: its vouch is refused by the ledger.
    vouch = keys.passport_key(master).sign_request("passport.vouch", {"vouchee": passport_id},
                                                   gw.state.settings.channel)
    with pytest.raises(ChaincodeError, match="not_found"):
        await ledger.submit("Passport:Vouch", [json.dumps(vouch)])

    # Now nothing on the ledger answers to the vault: it retires, and the session ends.
    r = await gw.http.post(f"{API}/holders/sessions/current/vault/retire", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"passport_id": passport_id, "vault": "retired"}
    assert holder_service(gw.state).record(passport_id) is None
    assert_error(await gw.http.get(f"{API}/accounts", headers=headers), 404,
                 "holder_session_not_found")
    # This gateway unlocks the retired vault no more.
    assert_error(await unlock(gw, WHO, passport_id, password=PASSWORDS[WHO]), 404,
                 "passport_not_found")
