"""One wallet at every org's gateway: a holder request signed on the device for an account at
one org is carried by ANOTHER org's per-org gateway (carry-only, with that gateway's own
`gateway` identity) and lands on the ledger; the carrier cannot change it (the contract checks
the account key's signature over every field), and what it carries is what the account's
own org's gateway then sees.

Before the carry-only path a per-org gateway refused these (403 `not_this_org`: it took the
account's institution's carrier identity, which it does not hold).
"""

from __future__ import annotations

import base64
import copy
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from gateway_testkit import GatewayClient, assert_error, make_settings
from ledger_kit import HOSPITAL, PHARMACY, SCHOOL, issue, mip, new_account, signed_header
from mip_testkit import Account, HolderKey, MipClients, MipNetwork, new_id
from org_gateways_kit import org_gateways
from pydantic import ValidationError

from face_engine.engine import FaceEngine
from face_engine.portrait import read_header
from gateway.main import create_app
from gateway.services.faces import face_service
from gateway.services.holder_requests import encode_header
from gateway.services.portrait_keys import portrait_keys
from gateway.services.state import build_state

__all__ = ["mip"]


async def grants_at(gw: GatewayClient, account: Account) -> list[dict[str, Any]]:
    r = await gw.http.get("/api/v1/grants", params={"account": account.pseudonym},
                          headers=signed_header(account, "grant.list"))
    assert r.status_code == 200, r.text
    return list(r.json())


async def log_at(gw: GatewayClient, account: Account) -> list[dict[str, Any]]:
    r = await gw.http.get("/api/v1/audit/holder", params={"account": account.pseudonym},
                          headers=signed_header(account, "access.log"))
    assert r.status_code == 200, r.text
    return list(r.json())


def grant_body(account: Account, grantee: str = HOSPITAL) -> dict[str, Any]:
    return {"account": account.pseudonym, "grant_id": new_id("g"), "grantee_org": grantee,
            "scope": "education.diploma", "credential_type": "diploma",
            "expires": int(time.time()) + 3600}


async def test_hospital_gateway_carries_a_school_accounts_grants(
        gw_network: MipNetwork, face_engine: FaceEngine, mip: MipClients,
        tmp_path: Path) -> None:
    school_account = await new_account(mip, SCHOOL)
    async with org_gateways(gw_network, face_engine, tmp_path, (HOSPITAL, SCHOOL)) as gws:
        hospital, school = gws[HOSPITAL], gws[SCHOOL]
        assert hospital.state.settings.org == HOSPITAL

        body = grant_body(school_account)
        signed = school_account.sign("grant.create", body)
        r = await hospital.http.post("/api/v1/grants", json={"signed_request": signed})
        assert r.status_code == 201, r.text
        made = r.json()
        assert (made["grant_id"], made["status"], made["request"]) == (
            body["grant_id"], "active", signed)

        # On the ledger, as the School's own gateway reads it; the access log names the
        # carrier (the Hospital's gateway identity), as it names whoever touched the account.
        listed = await grants_at(school, school_account)
        assert [(g["grant_id"], g["live"]) for g in listed] == [(body["grant_id"], True)]
        assert listed == await grants_at(hospital, school_account)
        created = [e for e in await log_at(school, school_account)
                   if e["action"] == "grant.create"]
        assert [(e["grant_id"], e["org"], e["role"]) for e in created] == [
            (body["grant_id"], HOSPITAL, "gateway")]

        revoke = school_account.sign("grant.revoke", {"account": school_account.pseudonym,
                                                      "grant_id": body["grant_id"]})
        r = await hospital.http.post(f"/api/v1/grants/{body['grant_id']}/revoke",
                                     json={"signed_request": revoke})
        assert r.status_code == 200 and r.json()["status"] == "revoked", r.text
        assert [g["live"] for g in await grants_at(school, school_account)] == [False]
        assert [e["action"] for e in await log_at(hospital, school_account)
                if e["grant_id"] == body["grant_id"]] == ["grant.create", "grant.revoke"]


async def test_a_carrier_cannot_change_what_it_carries(
        gw_network: MipNetwork, face_engine: FaceEngine, mip: MipClients,
        tmp_path: Path) -> None:
    school_account = await new_account(mip, SCHOOL)
    other = await new_account(mip, SCHOOL)
    async with org_gateways(gw_network, face_engine, tmp_path, (HOSPITAL, SCHOOL)) as gws:
        hospital, school = gws[HOSPITAL], gws[SCHOOL]
        log_before = await log_at(school, school_account)
        signed = school_account.sign("grant.create", grant_body(school_account))

        # What a dishonest carrier might try: another grantee, a longer grant, a later
        # expiry of the request, another account's key passed off as the signer.
        tampered: list[dict[str, Any]] = []
        for change in ({"grantee_org": PHARMACY}, {"expires": signed["body"]["expires"] + 60},
                       {"scope": "education.transcript", "credential_type": "transcript"}):
            forged = copy.deepcopy(signed)
            forged["body"].update(change)
            tampered.append(forged)
        later = copy.deepcopy(signed)
        later["expires"] += 30
        tampered.append(later)
        resigned = copy.deepcopy(signed)
        resigned["signer"] = other.sign("grant.create", signed["body"])["signer"]
        tampered.append(resigned)
        for forged in tampered:
            r = await hospital.http.post("/api/v1/grants", json={"signed_request": forged})
            assert_error(r, 401, "bad_signature")
        # Nothing landed; the untouched request still does, once.
        assert await grants_at(school, school_account) == []
        assert await log_at(school, school_account) == log_before
        r = await hospital.http.post("/api/v1/grants", json={"signed_request": signed})
        assert r.status_code == 201, r.text
        assert_error(await school.http.post("/api/v1/grants", json={"signed_request": signed}),
                     409, "replay")

        # A revoke signed for one grant cannot be carried for another.
        revoke = school_account.sign("grant.revoke", {"account": school_account.pseudonym,
                                                      "grant_id": new_id("g")})
        assert_error(await hospital.http.post(
            f"/api/v1/grants/{signed['body']['grant_id']}/revoke",
            json={"signed_request": revoke}), 422, "request_mismatch")
        assert [g["live"] for g in await grants_at(school, school_account)] == [True]


def find_header(key: HolderKey, body: dict[str, Any] | None = None, **kwargs: Any
                ) -> dict[str, str]:
    return {"X-MIP-Signed-Request": encode_header(
        key.sign_request("account.find", {} if body is None else body, **kwargs))}


async def test_a_wallet_finds_its_accounts_by_key_at_any_orgs_gateway(
        gw_network: MipNetwork, face_engine: FaceEngine, mip: MipClients,
        tmp_path: Path) -> None:
    """The wallet's account list rebuilt from the keys alone (a wiped browser, another org's
    host): `account.find` signed by a derived key answers the account it speaks for."""
    school_account = await new_account(mip, SCHOOL)
    async with org_gateways(gw_network, face_engine, tmp_path, (HOSPITAL, SCHOOL)) as gws:
        for gw in gws.values():
            r = await gw.http.get("/api/v1/wallet/accounts",
                                  headers=find_header(school_account.key))
            assert r.status_code == 200, r.text
            found = r.json()
            assert (found["pseudonym"], found["institution"], found["status"]) == (
                school_account.pseudonym, SCHOOL, "open")
            assert "public_key" not in found and "face_commitment" not in found
        hospital = gws[HOSPITAL]
        url = "/api/v1/wallet/accounts"
        # A key that speaks for no account; a body other than {}; another action; no header.
        assert_error(await hospital.http.get(url, headers=find_header(HolderKey.generate())),
                     404, "not_found")
        assert_error(await hospital.http.get(url, headers=find_header(
            school_account.key, {"account": school_account.pseudonym})), 422, "invalid_request")
        assert_error(await hospital.http.get(url, headers={
            "X-MIP-Signed-Request": encode_header(school_account.sign(
                "account.view", {"account": school_account.pseudonym}))}), 422, "wrong_action")
        assert_error(await hospital.http.get(url), 401, "signed_request_required")
        # Someone holding only the public key cannot ask: the signature must be the key's.
        forged = HolderKey.generate().sign_request("account.find", {})
        forged["signer"] = school_account.key.public
        assert_error(await hospital.http.get(url, headers={
            "X-MIP-Signed-Request": encode_header(forged)}), 401, "bad_signature")
        expired = school_account.key.sign_request("account.find", {}, ttl=-5)
        assert_error(await hospital.http.get(url, headers={
            "X-MIP-Signed-Request": encode_header(expired)}), 410, "expired")


async def test_wallet_config_names_the_shared_relying_party(
        gw_network: MipNetwork, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "gw", gw_network.connection, org=SCHOOL,
                             wallet_rp_id="mip.example")
    state = build_state(settings)
    app = create_app(state=state)
    app.state.mip = state
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://school.mip.example") as http:
        r = await http.get("/api/v1/wallet/config")
    await state.close()
    assert r.json() == {"rp_id": "mip.example", "org": SCHOOL}
    assert make_settings(tmp_path / "gw2", gw_network.connection).wallet_rp_id is None
    for bad in ("Mip.Example", "mip.example:8443", "https://mip.example", "", "-mip.example",
                "mip..example"):
        with pytest.raises(ValidationError, match="wallet_rp_id"):
            make_settings(tmp_path / "gw3", gw_network.connection, wallet_rp_id=bad)


async def test_a_pickup_portrait_is_relayed_to_the_accounts_institution(
        gw_network: MipNetwork, face_engine: FaceEngine, mip: MipClients,
        tmp_path: Path) -> None:
    """The wallet served by the School's gateway approves a pickup for a Hospital account:
    the School's gateway relays the holder's `grant.portrait` to the Hospital's gateway over
    the peer channel (the reference and the portrait keys stay there), then carries the grant
    the holder signs with the portrait's commitment. Only a member gateway may ask there."""
    async with org_gateways(gw_network, face_engine, tmp_path) as gws:
        hospital, school, pharmacy = gws[HOSPITAL], gws[SCHOOL], gws[PHARMACY]
        for gw, org in ((hospital, HOSPITAL), (pharmacy, PHARMACY)):
            r = await gw.http.post("/api/v1/admin/portrait-keys", headers=gw.staff(org, "admin"))
            assert r.status_code == 200, r.text
        account = await new_account(mip, face=(hospital, "grace_hopper"))
        rx = (await issue(hospital, account, "prescription"))["credential_id"]
        terms = {"account": account.pseudonym, "grant_id": new_id("g"), "grantee_org": PHARMACY,
                 "scope": "medical.prescription", "credential_id": rx,
                 "expires": int(time.time()) + 3600}
        ask = account.sign("grant.portrait", terms)

        # Altered on the way in: refused at the School's gateway, nothing relayed.
        altered = copy.deepcopy(ask)
        altered["body"]["grantee_org"] = SCHOOL
        assert_error(await school.http.post("/api/v1/grants/portraits",
                                            json={"signed_request": altered}),
                     401, "bad_signature")
        # The custody route answers member gateways only (signed by their service identity).
        assert_error(await hospital.http.post("/api/v1/custody/portraits",
                                              json={"signed_request": ask}),
                     401, "peer_unauthenticated")

        r = await school.http.post("/api/v1/grants/portraits", json={"signed_request": ask})
        assert r.status_code == 200, r.text
        prepared = r.json()
        commitment = prepared["portrait_commitment"]
        assert prepared["grant_body"] == {**terms, "portrait_commitment": commitment}
        sealed = base64.b64decode(prepared["portrait"])
        header = read_header(sealed)
        assert (header.recipient_org, header.account, header.grant_id) == (
            PHARMACY, account.pseudonym, terms["grant_id"])
        # Sealed to the Pharmacy (which opens it), signed by the Hospital: the School's
        # gateway holds neither the reference nor any key that made it.
        opened = portrait_keys(pharmacy.state, PHARMACY).recipient().open(sealed)
        assert opened.statement.commitment == commitment
        assert face_service(school.state).reference(account.pseudonym, HOSPITAL) is None

        r = await school.http.post("/api/v1/grants", json={"signed_request": account.sign(
            "grant.create", prepared["grant_body"])})
        assert r.status_code == 201, r.text
        assert r.json()["portrait_commitment"] == commitment
        # Where the account's institution makes no portrait (the School registered no portrait
        # keys), its typed refusal comes back through the relay as it is (the wallet then
        # signs the plain terms).
        school_account = await new_account(mip, SCHOOL)
        other = school_account.sign("grant.portrait", {**terms, "account":
                                                       school_account.pseudonym})
        assert_error(await pharmacy.http.post("/api/v1/grants/portraits",
                                              json={"signed_request": other}),
                     409, "no_portrait")
