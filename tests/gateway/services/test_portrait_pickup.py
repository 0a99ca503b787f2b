"""The pharmacy pickup at the Pharmacy's OWN gateway, by the portrait (issue #15; docs/gateway.md
"Pharmacy face check: the portrait").

Two org-scoped gateways (HospitalMSP and PharmacyMSP, each its own data dir and development
keys) over one devnet. Each org's admin registers its portrait keys; the account's reference is
enrolled at the Hospital's gateway (Grace Hopper's face), a Hospital doctor prescribes, and the
holder grants the Pharmacy the prescription at the Hospital's gateway, which makes the portrait
(self-custody holder: `POST /grants/portraits`, then the holder signs the grant with its
commitment). The Pharmacy's gateway, holding no Hospital key or reference, verifies the face at
the counter against the portrait: the right face is verified and dispensed, another is
`face_mismatch`; a tampered, forged (unregistered key, another org's key), uncommitted
(the Hospital's own signature on a swapped portrait), wrongly sealed (to another key, to the
School: the School opens it, the Pharmacy cannot), relabelled or other account's portrait is a
typed error with nothing written or counted; no portrait is `no_reference`. A School gateway
is there as the third org. Finally the Pharmacy's data dir is scanned for the Hospital's
secrets and the portrait's embedding. The second test is the desk form: the holder's session
grant at the Hospital answers with the sealed portrait.
"""

from __future__ import annotations

import base64
import functools
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import nacl.public
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from enrolment_kit import PASSWORDS, Enrolled, enrol, holder_headers
from gateway_testkit import GatewayClient, assert_error, make_settings
from ledger_kit import content_of, holder_log, issue, mip, new_account
from mip_testkit import Account, MipClients, MipNetwork, new_id

from chaincode.protocol.orgs import HOSPITAL, PHARMACY, SCHOOL
from face_engine.engine import FaceEngine
from face_engine.portrait import PortraitIssuer, PortraitWrongRecipient, read_header, seal
from gateway.core.config import Settings
from gateway.core.org_scope import NotThisOrg
from gateway.demo.camera import HeadModel, challenge_poses, posed_frame, prepare_portrait
from gateway.demo.faces import demo_portrait
from gateway.main import create_app
from gateway.services.faces import face_service
from gateway.services.pickup import ATTEMPT_FLOW
from gateway.services.portrait_keys import portrait_keys
from gateway.services.state import build_state

API = "/api/v1"
PICKUPS = f"{API}/pharmacy/pickups"
TURNS = ("left", "right")
__all__ = ["mip"]  # the fixture


@asynccontextmanager
async def org_gateway(settings: Settings, engine: FaceEngine) -> AsyncIterator[GatewayClient]:
    state = build_state(settings)
    state._face = engine
    app = create_app(state=state)
    app.state.mip = state  # httpx's ASGI transport does not run the lifespan
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway",
                                 timeout=120) as http:
        try:
            yield GatewayClient(state, http)
        finally:
            await state.close()


@functools.cache
def _model(name: str, engine: FaceEngine) -> HeadModel:
    return prepare_portrait(demo_portrait(name), engine)


@functools.cache
def _pose_jpeg(name: str, pose: str, engine: FaceEngine) -> str:
    return base64.b64encode(posed_frame(_model(name, engine), pose)).decode()


async def start(gw: GatewayClient, rx: str, portrait: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"prescription_id": rx}
    if portrait is not None:
        body["portrait"] = portrait
    return await gw.http.post(PICKUPS, json=body, headers=gw.staff(PHARMACY, "pharmacist"))


async def face_check(gw: GatewayClient, pickup: dict[str, Any], who: str) -> httpx.Response:
    challenge = pickup["challenge"]
    with gw.state.db.transaction() as conn:  # test-only: both demo portraits turn left/right
        conn.execute("UPDATE face_challenges SET poses = ? WHERE challenge_id = ?",
                     (json.dumps(TURNS), challenge["challenge_id"]))
    engine = gw.state.face_engine()
    frames = [{"image": _pose_jpeg(who, pose, engine)} for pose in challenge_poses(list(TURNS))]
    return await gw.http.post(f"{PICKUPS}/{pickup['pickup_id']}/frames",
                              json={"challenge_id": challenge["challenge_id"], "frames": frames},
                              headers=gw.staff(PHARMACY, "pharmacist"))


async def portrait_grant(hospital: GatewayClient, account: Account, rx: str
                         ) -> tuple[str, dict[str, Any]]:
    """A self-custody holder's grant of `rx` to the Pharmacy with a portrait: prepared at the
    Hospital's gateway, then signed with its commitment."""
    terms = {"account": account.pseudonym, "grant_id": new_id("g"), "grantee_org": PHARMACY,
             "scope": "medical.prescription", "credential_id": rx,
             "expires": int(time.time()) + 3600}
    r = await hospital.http.post(f"{API}/grants/portraits", json={
        "signed_request": account.sign("grant.portrait", terms)})
    assert r.status_code == 200, r.text
    prepared = r.json()
    assert prepared["grant_body"] == {**terms,
                                      "portrait_commitment": prepared["portrait_commitment"]}
    r = await hospital.http.post(f"{API}/grants", json={
        "signed_request": account.sign("grant.create", prepared["grant_body"])})
    assert r.status_code == 201, r.text
    grant = r.json()
    assert grant["portrait_commitment"] == prepared["portrait_commitment"]
    return str(prepared["portrait"]), grant


def counts(gw: GatewayClient) -> tuple[int, int, int]:
    """Pickups, kept portraits and counted pickup failures (face_lockouts.py)."""
    def count(sql: str, *params: str) -> int:
        row = gw.state.db.query_one(sql, params)
        assert row is not None
        return int(row["n"])

    return (count("SELECT COUNT(*) AS n FROM pickups"),
            count("SELECT COUNT(*) AS n FROM pharmacy_portraits"),
            count("SELECT COUNT(*) AS n FROM face_failures WHERE flow = ?", ATTEMPT_FLOW))


def forget_portraits(gw: GatewayClient) -> None:
    with gw.state.db.transaction() as conn:
        conn.execute("DELETE FROM pharmacy_portraits")


def relabel(sealed_b64: str, **header: str) -> str:
    body = json.loads(base64.b64decode(sealed_b64))
    body.update(header)
    return base64.b64encode(json.dumps(body).encode()).decode()


def files_under(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def encodings(value: bytes) -> set[bytes]:
    forms = {value, value.hex().encode()}
    for encoded in (base64.b64encode(value), base64.urlsafe_b64encode(value)):
        forms |= {encoded, encoded.rstrip(b"=")}
    return forms


async def test_pickup_at_the_pharmacys_own_gateway_matches_the_portrait(
        gw_network: MipNetwork, face_engine: FaceEngine, mip: MipClients, tmp_path: Path
) -> None:
    connection = gw_network.connection
    hospital_dir, pharmacy_dir = tmp_path / "hospital", tmp_path / "pharmacy"
    async with org_gateway(make_settings(hospital_dir, connection, org=HOSPITAL),
                           face_engine) as hospital, \
            org_gateway(make_settings(pharmacy_dir, connection, org=PHARMACY),
                        face_engine) as pharmacy, \
            org_gateway(make_settings(tmp_path / "school", connection, org=SCHOOL),
                        face_engine) as school:
        # Each org's admin registers its portrait keys (idempotent), the Pharmacy its counter.
        for gw, org in ((hospital, HOSPITAL), (pharmacy, PHARMACY), (school, SCHOOL)):
            for _ in range(2):
                r = await gw.http.post(f"{API}/admin/portrait-keys", headers=gw.staff(org, "admin"))
                assert r.status_code == 200, r.text
            assert r.json()["newly_registered"] is False
            assert r.json()["signing_key_id"] == portrait_keys(gw.state, org).signing_key_id
        # (a staff member who is no admin registers nothing)
        assert_error(await pharmacy.http.post(f"{API}/admin/portrait-keys",
                                              headers=pharmacy.staff(PHARMACY, "pharmacist")),
                     403, "wrong_role")
        r = await pharmacy.http.post(f"{API}/admin/counter-key",
                                     headers=pharmacy.staff(PHARMACY, "admin"))
        assert r.status_code == 200, r.text

        # Grace Hopper's reference enrolled at the Hospital; a Hospital doctor prescribes.
        account = await new_account(mip, face=(hospital, "grace_hopper"))
        rx = (await issue(hospital, account, "prescription", refills=1))["credential_id"]
        portrait, grant = await portrait_grant(hospital, account, rx)
        header = read_header(base64.b64decode(portrait))
        assert (header.recipient_org, header.account, header.grant_id) == (
            PHARMACY, account.pseudonym, grant["grant_id"])
        # The Pharmacy's gateway holds no reference of the account.
        assert face_service(pharmacy.state).reference(account.pseudonym, HOSPITAL) is None
        assert pharmacy.state.db.query_one("SELECT COUNT(*) AS n FROM face_references"
                                           )["n"] == 0  # type: ignore[index]

        # Without a portrait: no reference to match, refused without counting.
        r = await start(pharmacy, rx)
        assert r.status_code == 201, r.text
        r = await face_check(pharmacy, r.json(), "grace_hopper")
        assert r.json() == {"result": "refused", "reason": "no_reference"}, r.text

        # Bad portraits: typed refusals, nothing written, nothing counted, and no audited
        # read on the ledger (its Access:Request is endorsed early, never sent).
        before = counts(pharmacy)
        log_before = await holder_log(hospital, account)
        raw = bytearray(base64.b64decode(portrait))
        body = json.loads(raw)
        flipped = bytearray(base64.b64decode(body["body"]))
        flipped[-1] ^= 1
        body["body"] = base64.b64encode(bytes(flipped)).decode()
        tampered = base64.b64encode(json.dumps(body).encode()).decode()
        # sealed under the Pharmacy's name and key id to another key (a carrier's swap)
        hospital_keys = portrait_keys(hospital.state, HOSPITAL)
        pharmacy_key = bytes(portrait_keys(pharmacy.state, PHARMACY).sealing.public_key)
        reference = face_service(hospital.state).reference(account.pseudonym, HOSPITAL)
        assert reference is not None
        embedding = np.random.default_rng(3).standard_normal(128)
        statement = hospital_keys.issuer().build(
            embedding, account=account.pseudonym, grant_id=grant["grant_id"],
            recipient_org=PHARMACY, recipient_key_id=header.recipient_key_id,
            reference_commitment="0" * 64, issued_at=int(time.time()),
            expires=int(time.time()) + 600)
        misdirected = base64.b64encode(seal(hospital_keys.issuer().sign(statement), bytes(
            nacl.public.PrivateKey.generate().public_key))).decode()
        # a portrait signed by an org that is not the account's institution
        with pytest.raises(NotThisOrg):  # the Pharmacy's gateway holds no Hospital key
            portrait_keys(pharmacy.state, HOSPITAL)
        rogue = PortraitIssuer(HOSPITAL, Ed25519PrivateKey.generate(),
                               hospital_keys.signing_key_id)
        forged = base64.b64encode(seal(rogue.sign(statement), pharmacy_key)).decode()
        # signed by another org (the School, under its own registered key) for the account
        school_keys = portrait_keys(school.state, SCHOOL)
        by_school = school_keys.issuer().build(
            embedding, account=account.pseudonym, grant_id=grant["grant_id"],
            recipient_org=PHARMACY, recipient_key_id=header.recipient_key_id,
            reference_commitment="0" * 64, issued_at=int(time.time()),
            expires=int(time.time()) + 600)
        wrong_issuer = base64.b64encode(seal(school_keys.issuer().sign(by_school), pharmacy_key)
                                        ).decode()
        # the Hospital's genuine signature on another portrait for the same grant (the
        # enrolling org swapping the face after the holder signed): not the grant's commitment
        swapped = hospital_keys.issuer().build(
            embedding, account=account.pseudonym, grant_id=grant["grant_id"],
            recipient_org=PHARMACY, recipient_key_id=header.recipient_key_id,
            reference_commitment=reference.commitment, issued_at=int(time.time()),
            expires=int(time.time()) + 600)
        not_committed = base64.b64encode(seal(hospital_keys.issuer().sign(swapped),
                                              pharmacy_key)).decode()
        # sealed to the School (its registered key): the School opens it, the Pharmacy cannot,
        # under the School's name or relabelled with its own
        to_school = hospital_keys.issuer().build(
            embedding, account=account.pseudonym, grant_id=grant["grant_id"],
            recipient_org=SCHOOL, recipient_key_id=school_keys.sealing_key_id,
            reference_commitment=reference.commitment, issued_at=int(time.time()),
            expires=int(time.time()) + 600)
        for_school = base64.b64encode(seal(hospital_keys.issuer().sign(to_school), bytes(
            school_keys.sealing.public_key))).decode()
        assert school_keys.recipient().open(base64.b64decode(for_school)).statement == to_school
        with pytest.raises(PortraitWrongRecipient):
            portrait_keys(pharmacy.state, PHARMACY).recipient().open(
                base64.b64decode(relabel(for_school, recipient_org=PHARMACY,
                                         recipient_key_id=header.recipient_key_id)))
        # another holder's portrait (their own grant) for this prescription
        other = await new_account(mip, face=(hospital, "astronaut"))
        other_rx = (await issue(hospital, other, "prescription"))["credential_id"]
        other_portrait, _ = await portrait_grant(hospital, other, other_rx)
        # Only the account's holder (its key on the ledger) has a portrait made, and only for
        # the pickup scope.
        terms = {"account": account.pseudonym, "grant_id": new_id("g"), "grantee_org": PHARMACY,
                 "scope": "medical.prescription", "credential_id": rx,
                 "expires": int(time.time()) + 600}
        assert_error(await hospital.http.post(f"{API}/grants/portraits", json={
            "signed_request": other.sign("grant.portrait", terms)}), 401, "bad_signature")
        assert_error(await hospital.http.post(f"{API}/grants/portraits", json={
            "signed_request": account.sign("grant.portrait", {**terms, "scope": "medical.record"})
        }), 409, "no_portrait")
        for bad, status, code in (
                ("bm90IGEgcG9ydHJhaXQ=", 422, "portrait_malformed"),
                (tampered, 409, "portrait_tampered"),
                (relabel(portrait, grant_id=new_id("g")), 404, "portrait_grant_not_found"),
                (relabel(portrait, recipient_org=HOSPITAL), 409, "portrait_wrong_recipient"),
                (misdirected, 409, "portrait_wrong_recipient"),
                (forged, 409, "portrait_bad_signature"),
                (wrong_issuer, 409, "portrait_wrong_issuer"),
                (not_committed, 409, "portrait_commitment_mismatch"),
                (for_school, 409, "portrait_wrong_recipient"),
                (relabel(for_school, recipient_org=PHARMACY,
                         recipient_key_id=header.recipient_key_id),
                 409, "portrait_wrong_recipient"),
                (other_portrait, 409, "portrait_binding_mismatch")):
            assert_error(await start(pharmacy, rx, bad), status, code)
            r = await pharmacy.http.post(f"{API}/pharmacy/portraits", json={"portrait": bad},
                                         headers=pharmacy.staff(PHARMACY, "pharmacist"))
            if code != "portrait_binding_mismatch":  # a deposit names no prescription
                assert_error(r, status, code)
            else:
                assert r.status_code == 201, r.text  # the other holder's, for its own grant
                forget_portraits(pharmacy)
            assert counts(pharmacy) == before, code
        assert await holder_log(hospital, account) == log_before

        # Another face against the portrait: face_mismatch, counted.
        r = await start(pharmacy, rx, portrait)
        assert r.status_code == 201, r.text
        r = await face_check(pharmacy, r.json(), "astronaut")
        assert r.json() == {"result": "refused", "reason": "face_mismatch"}, r.text
        assert counts(pharmacy)[2] == before[2] + 1
        # The right face: verified, and one fill dispensed.
        r = await start(pharmacy, rx, portrait)
        assert r.status_code == 201, r.text
        pickup = r.json()
        assert pickup["prescription"]["drug"] == "amoxicillin"
        r = await face_check(pharmacy, pickup, "grace_hopper")
        assert r.json() == {"result": "verified", "reason": None}, r.text
        assert "score" not in r.text
        r = await pharmacy.http.post(f"{PICKUPS}/{pickup['pickup_id']}/dispense",
                                     headers=pharmacy.staff(PHARMACY, "pharmacist"))
        assert r.status_code == 200 and r.json()["fills_used"] == 1, r.text
        kept = pharmacy.state.db.query("SELECT account, grant_id FROM pharmacy_portraits")
        assert [tuple(row) for row in kept] == [(account.pseudonym, grant["grant_id"])]
        # A portrait deposited before is used by the next pickup (a restart forgets what the
        # ledger said: the verdict reads it again); the last fill deletes it.
        forget_portraits(pharmacy)
        r = await pharmacy.http.post(f"{API}/pharmacy/portraits", json={"portrait": portrait},
                                     headers=pharmacy.staff(PHARMACY, "pharmacist"))
        assert r.status_code == 201 and r.json()["grant_id"] == grant["grant_id"], r.text
        r = await start(pharmacy, rx)
        assert r.status_code == 201, r.text
        pickup = r.json()
        assert (await face_check(pharmacy, pickup, "grace_hopper")).json()["result"] == "verified"
        r = await pharmacy.http.post(f"{PICKUPS}/{pickup['pickup_id']}/dispense",
                                     headers=pharmacy.staff(PHARMACY, "pharmacist"))
        assert r.status_code == 200 and r.json()["fills_used"] == 2, r.text
        assert counts(pharmacy)[1] == 0  # used up: the portrait is gone

        # A revoked grant: its portrait is refused (and not kept).
        revoke = account.sign("grant.revoke", {"account": account.pseudonym,
                                               "grant_id": grant["grant_id"]})
        r = await hospital.http.post(f"{API}/grants/{grant['grant_id']}/revoke",
                                     json={"signed_request": revoke})
        assert r.status_code == 200, r.text
        r = await pharmacy.http.post(f"{API}/pharmacy/portraits", json={"portrait": portrait},
                                     headers=pharmacy.staff(PHARMACY, "pharmacist"))
        assert_error(r, 410, "portrait_grant_ended")
        assert counts(pharmacy)[1] == 0

        hospital_secrets = hospital.state.keys.secrets  # type: ignore[attr-defined]
        canaries = {name: getattr(hospital_secrets, name) for name in (
            "face_kek", "face_transform_key", "face_factor_kek", "counter_key_seed",
            "linkage_key_seed", "portrait_key_seed")}
        canaries["portrait signing key"] = hospital_keys.signing.private_bytes_raw()
        canaries["portrait sealing key"] = bytes(hospital_keys.sealing)
        canaries["embedding"] = face_service(hospital.state).protector.open_embedding(
            reference, account.pseudonym).astype("<f4").tobytes()[:32]
        canaries["reference"] = reference.to_json().encode()[:48]

    hospital_files, pharmacy_files = files_under(hospital_dir), files_under(pharmacy_dir)
    assert any(form in hospital_files for form in encodings(canaries["face_kek"]))
    for name, canary in canaries.items():
        assert not any(form in pharmacy_files for form in encodings(canary)), name


async def test_a_session_grant_answers_with_the_sealed_portrait(
        gw_network: MipNetwork, face_engine: FaceEngine, tmp_path: Path) -> None:
    """The desk form: the holder, unlocked at the Hospital's gateway, opens an account there
    and grants the Pharmacy a prescription; the grant's answer carries the sealed portrait,
    whose commitment is the holder-signed grant's, and the Pharmacy's gateway matches the
    holder's face against it (another face is refused)."""
    connection = gw_network.connection
    async with org_gateway(make_settings(tmp_path / "hospital", connection, org=HOSPITAL),
                           face_engine) as hospital, \
            org_gateway(make_settings(tmp_path / "pharmacy", connection, org=PHARMACY),
                        face_engine) as pharmacy:
        for gw, org in ((hospital, HOSPITAL), (pharmacy, PHARMACY)):
            r = await gw.http.post(f"{API}/admin/portrait-keys", headers=gw.staff(org, "admin"))
            assert r.status_code == 200, r.text
        r = await pharmacy.http.post(f"{API}/admin/counter-key",
                                     headers=pharmacy.staff(PHARMACY, "admin"))
        assert r.status_code == 200, r.text
        enrolled = await enrol(hospital, "astronaut")
        holder = await holder_headers(hospital, Enrolled(
            "astronaut", enrolled["passport_id"], PASSWORDS["astronaut"], enrolled))
        r = await hospital.http.post(f"{API}/accounts", headers=holder,
                                     json={"institution": HOSPITAL})
        assert r.status_code == 201, r.text
        pseudonym = r.json()["pseudonym"]
        r = await hospital.http.post(f"{API}/credentials", headers=hospital.staff(
            HOSPITAL, "doctor"), json={"type": "prescription", "subject_account": pseudonym,
                                       "content": content_of("prescription")})
        assert r.status_code == 201, r.text
        rx = r.json()["credential_id"]
        # A grant of another scope carries no portrait.
        r = await hospital.http.post(f"{API}/grants", headers=holder, json={
            "account": pseudonym, "grantee_org": PHARMACY, "scope": "medical.record",
            "credential_type": "record", "ttl_s": 600})
        assert r.status_code == 201, r.text
        assert "portrait" not in r.json() and "portrait_commitment" not in r.json()
        r = await hospital.http.post(f"{API}/grants", headers=holder, json={
            "account": pseudonym, "grantee_org": PHARMACY, "scope": "medical.prescription",
            "credential_id": rx, "ttl_s": 3600})
        assert r.status_code == 201, r.text
        grant = r.json()
        sealed = base64.b64decode(grant["portrait"])
        header = read_header(sealed)
        assert (header.recipient_org, header.account, header.grant_id) == (
            PHARMACY, pseudonym, grant["grant_id"])
        opened = portrait_keys(pharmacy.state, PHARMACY).recipient().open(sealed)
        assert opened.statement.commitment == grant["portrait_commitment"]
        assert opened.statement.issuer_org == HOSPITAL

        r = await start(pharmacy, rx, grant["portrait"])
        assert r.status_code == 201, r.text
        r = await face_check(pharmacy, r.json(), "grace_hopper")
        assert r.json() == {"result": "refused", "reason": "face_mismatch"}, r.text
        r = await start(pharmacy, rx, grant["portrait"])
        assert r.status_code == 201, r.text
        r = await face_check(pharmacy, r.json(), "astronaut")
        assert r.json() == {"result": "verified", "reason": None}, r.text
