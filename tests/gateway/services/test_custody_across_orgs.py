"""Holders at another org's desk (docs/gateway.md): one org-scoped gateway per org over one
devnet, each reaching the others' custody API in process (httpx's ASGI transport in place of
the network; the requests are signed and checked exactly as over https).

The holder "astronaut" is enrolled at the Hospital (its vault and passport reference live
there only). At the School's desk: a wrong password is `unlock_failed`; face and password
give a level-2 session; the holder opens a School account (the ledger shows it, the School's
database holds the School's own reference and nothing of the Hospital's, the Hospital's
directory lists it); a School registrar issues a diploma to it; the holder grants an
employer its diploma scope, then closes the account. The School cannot make the Hospital
sign for the holder's Hospital account (403), nor get a custody request through unsigned,
forged, replayed, outside the clock window, or with a certificate that is not its own
gateway's. Vouching
works between holders enrolled at different orgs, both at the voucher's own org and at
another org's desk. Failed unlocks (wrong faces) at the School's desk lock the holder out
there only.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest
from enrolment_kit import API, PASSWORDS, enrol
from gateway_testkit import GatewayClient, assert_error
from ledger_kit import content_of
from mip_testkit import MipNetwork
from org_gateways_kit import CUSTODY, desk_unlock, holder, org_gateways, peer_signer, raw_custody
from test_org_isolation import files_under, found_in

from chaincode.protocol.orgs import HOSPITAL, PHARMACY, SCHOOL
from face_engine.engine import FaceEngine
from gateway.core.ca import LocalCA
from gateway.core.errors import ApiError
from gateway.services.custody import custody_service
from gateway.services.custody_client import custody_client
from gateway.services.holders import MAX_UNLOCK_FAILURES, holder_service
from gateway.services.ledger import SERVICE_USER


async def test_a_holder_enrolled_at_the_hospital_at_the_schools_desk(
        gw_network: MipNetwork, face_engine: FaceEngine, tmp_path: Path) -> None:
    connection = gw_network.connection
    async with org_gateways(gw_network, face_engine, tmp_path) as gws:
        hospital, school, pharmacy = gws[HOSPITAL], gws[SCHOOL], gws[PHARMACY]
        astro = (await enrol(hospital, "astronaut"))["passport_id"]
        grace = (await enrol(school, "grace_hopper", staff=(SCHOOL, "registrar")))["passport_id"]
        password = PASSWORDS["astronaut"]

        # The holder's own desk: a Hospital account (the School must never sign for it).
        at_hospital = holder(await desk_unlock(hospital, HOSPITAL, "astronaut", astro, password))
        r = await hospital.http.post(f"{API}/accounts", headers=at_hospital,
                                     json={"institution": HOSPITAL})
        assert r.status_code == 201, r.text
        hospital_account = r.json()["pseudonym"]

        # At the School's desk: a wrong password is one code; face and password give level 2.
        assert_error(await desk_unlock(school, SCHOOL, "astronaut", astro, "wrong-Pa55word!"),
                     401, "unlock_failed")
        r = await desk_unlock(school, SCHOOL, "astronaut", astro, password)
        at_school = holder(r)
        assert r.json()["level"] == 2
        # It shows none of the holder's Hospital accounts.
        r = await school.http.get(f"{API}/accounts", headers=at_school)
        assert r.status_code == 200 and r.json()["accounts"] == [], r.text
        # Nor is it any use for reading the holder's profile (test_linkage_across_orgs.py:
        # records can be added at this desk, never read).
        assert_error(await school.http.get(f"{API}/profile/records", headers=at_school),
                     409, "custody_elsewhere")

        # A School account, opened at the School's desk.
        r = await school.http.post(f"{API}/accounts", headers=at_school,
                                   json={"institution": SCHOOL})
        assert r.status_code == 201, r.text
        school_account = r.json()["pseudonym"]
        assert r.json()["status"] == "open"
        record = json.loads(await school.state.ledger.carrier(SCHOOL).evaluate(
            "Account:Get", [school_account]))
        assert record["institution"] == SCHOOL and record["status"] == "open"
        # The School's database holds the School's own reference for it (besides Grace's
        # passport reference: she enrolled at the School), and none of the Hospital's.
        grace_passport = json.loads(await school.state.ledger.carrier(SCHOOL).evaluate(
            "Passport:Get", [grace]))
        school_refs = {r["commitment"] for r in school.state.db.query(
            "SELECT commitment FROM face_references")}
        assert school_refs == {record["face_commitment"], grace_passport["face_commitment"]}
        passport = json.loads(await school.state.ledger.carrier(SCHOOL).evaluate(
            "Passport:Get", [astro]))
        hospital_refs = {r["commitment"] for r in hospital.state.db.query(
            "SELECT commitment FROM face_references")}
        assert passport["face_commitment"] in hospital_refs
        assert not hospital_refs & school_refs
        r = await school.http.get(f"{API}/accounts", headers=at_school)
        assert [a["pseudonym"] for a in r.json()["accounts"]] == [school_account]
        # The Hospital's directory lists it (read back from the ledger).
        at_hospital = holder(await desk_unlock(hospital, HOSPITAL, "astronaut", astro,
                                               password))
        listed = (await hospital.http.get(f"{API}/accounts", headers=at_hospital)).json()
        assert {(a["pseudonym"], a["institution"], a["status"]) for a in listed["accounts"]} \
            == {(hospital_account, HOSPITAL, "open"), (school_account, SCHOOL, "open")}

        # A School registrar issues a diploma; the holder, at the School's desk, grants an
        # employer its diploma scope (signed at the Hospital, carried by the School).
        r = await school.http.post(f"{API}/credentials",
                                   headers=school.staff(SCHOOL, "school_registrar"),
                                   json={"type": "diploma", "subject_account": school_account,
                                         "content": content_of("diploma")})
        assert r.status_code == 201, r.text
        diploma = r.json()["credential_id"]
        r = await school.http.post(f"{API}/grants", headers=at_school, json={
            "account": school_account, "grantee_org": HOSPITAL, "scope": "education.diploma",
            "credential_id": diploma, "ttl_s": 3600})
        assert r.status_code == 201, r.text
        listed_grants = (await school.http.get(f"{API}/grants", headers=at_school,
                                               params={"account": school_account})).json()
        assert [g["scope"] for g in listed_grants] == ["education.diploma"]

        # The School cannot have the Hospital sign for the holder's Hospital account: not
        # through its API (the session shows no such account) nor straight at the relay.
        r = await school.http.post(f"{API}/grants", headers=at_school, json={
            "account": hospital_account, "grantee_org": SCHOOL, "scope": "medical.record",
            "credential_type": "record"})
        assert_error(r, 404, "account_not_found")
        remote = holder_service(school.state)._sessions[at_school["X-MIP-Holder-Session"]]
        handle = remote.handle
        with pytest.raises(ApiError) as refused:
            await custody_client(school.state).call(HOSPITAL, "/sessions/signatures", {
                "handle": handle, "account": hospital_account, "action": "grant.create",
                "body": {"account": hospital_account, "grant_id": "g-intrude",
                         "grantee_org": SCHOOL, "scope": "medical.record",
                         "expires": int(time.time()) + 60}})
        assert (refused.value.status, refused.value.code) == (403, "not_caller_institution")
        # Nor open an account at another institution through its session.
        with pytest.raises(ApiError) as refused:
            await custody_client(school.state).call(HOSPITAL, "/sessions/accounts", {
                "handle": handle, "pseudonym": "ab" * 32, "institution": PHARMACY,
                "min_level": 2, "face_commitment": "cd" * 32})
        assert refused.value.code == "not_caller_institution"
        # Another org's gateway cannot use the School's session.
        with pytest.raises(ApiError) as refused:
            await custody_client(pharmacy.state).call(HOSPITAL, "/sessions/signatures", {
                "handle": handle, "account": school_account, "action": "grant.list",
                "body": {"account": school_account}})
        assert refused.value.code == "custody_session_not_found"

        # The holder closes the School account at the School's desk (signed at the Hospital,
        # carried by the School); the Hospital's directory follows the ledger.
        r = await school.http.delete(f"{API}/accounts/{school_account}", headers=at_school)
        assert r.status_code == 204, r.text
        record = json.loads(await school.state.ledger.carrier(SCHOOL).evaluate(
            "Account:Get", [school_account]))
        assert record["status"] == "closed"
        r = await school.http.get(f"{API}/accounts", headers=at_school)
        assert [(a["pseudonym"], a["status"]) for a in r.json()["accounts"]] == [
            (school_account, "closed")]
        custody = next(s for s in custody_service(hospital.state)._sessions.values()
                       if s.caller_org == SCHOOL)
        assert [(a.pseudonym, a.status) for a in custody.visible_accounts()] == [
            (school_account, "closed")]

        await _custody_requests_are_authenticated(hospital, connection)
        await _vouching_across_orgs(gws, astro, grace)
        await _school_failures_lock_out_the_school_only(gws, astro, password)

        # Canaries: the School's files hold nothing of the Hospital's custody.
        with hospital.state.db.transaction() as conn:
            row = conn.execute("SELECT * FROM holders WHERE passport_id = ?", (astro,)
                               ).fetchone()
        canaries = {"wrapped secret": row["wrapped_secret"].encode()[:48],
                    "sealed face key": bytes(row["face_key_sealed"])[:48],
                    "sealed holder state": bytes(row["state_sealed"])[:48],
                    "password": password.encode()}
        for i, ref in enumerate(hospital.state.db.query("SELECT reference FROM face_references")):
            canaries[f"face reference #{i}"] = ref["reference"].encode()[:48]
        unlocked = holder_service(hospital.state).session(at_hospital["X-MIP-Holder-Session"])
        assert unlocked is not None
        canaries["master secret"] = unlocked.master
        canaries["master secret (hash)"] = hashlib.sha256(unlocked.master).digest()

    hospital_files = files_under(tmp_path / HOSPITAL / "gateway")
    for name, value in canaries.items():
        if name not in ("password", "master secret", "master secret (hash)"):
            assert found_in(hospital_files, value), f"{name} not in the Hospital's own files"
    for org in (SCHOOL, PHARMACY):
        files = files_under(tmp_path / org / "gateway")
        assert files
        for name, value in canaries.items():
            assert not found_in(files, value), f"the Hospital's {name} is in {org}'s files"


async def _custody_requests_are_authenticated(hospital: GatewayClient,
                                              connection: Path) -> None:
    """Unsigned, forged, replayed, stale, self-addressed or wrongly certified requests to
    the custody API are refused before anything is done."""
    payload = {"handle": "0" * 64}
    body = json.dumps(payload).encode()
    path = CUSTODY + "/sessions/end"
    school = peer_signer(connection, SCHOOL, SERVICE_USER)
    assert_error(await raw_custody(hospital, "/sessions/end", payload, {}),
                 401, "peer_unauthenticated")
    good = school.headers("POST", path, body, HOSPITAL)
    assert (await raw_custody(hospital, "/sessions/end", payload, good)).status_code == 204
    # The same request again: a replay.
    assert_error(await raw_custody(hospital, "/sessions/end", payload, good),
                 401, "peer_unauthenticated")
    # Forged: signed for another body.
    forged = school.headers("POST", path, b'{"handle":"1"}', HOSPITAL)
    assert_error(await raw_custody(hospital, "/sessions/end", payload, forged),
                 401, "peer_unauthenticated")
    # Made for another org's gateway, or another path.
    for other in (school.headers("POST", path, body, PHARMACY),
                  school.headers("POST", CUSTODY + "/unlocks", body, HOSPITAL)):
        assert_error(await raw_custody(hospital, "/sessions/end", payload, other),
                     401, "peer_unauthenticated")
    # Outside the clock window (either way).
    for skew in (-120, 120):
        stale = school.headers("POST", path, body, HOSPITAL, timestamp=int(time.time()) + skew)
        assert_error(await raw_custody(hospital, "/sessions/end", payload, stale),
                     401, "peer_unauthenticated")
    # Another org's certificate claimed as the School's; the Hospital calling itself.
    pharmacy = peer_signer(connection, PHARMACY, SERVICE_USER)
    posing = pharmacy.headers("POST", path, body, HOSPITAL)
    posing["X-MIP-Peer-Org"] = SCHOOL
    itself = peer_signer(connection, HOSPITAL, SERVICE_USER)
    for headers in (posing, itself.headers("POST", path, body, HOSPITAL)):
        r = await raw_custody(hospital, "/sessions/end", payload, headers)
        assert_error(r, 401, "peer_unauthenticated")
    # A School staff member's own identity (role school_registrar), well signed: known, but
    # not the School's gateway.
    staff = peer_signer(connection, SCHOOL, "school_registrar")
    assert_error(await raw_custody(hospital, "/sessions/end", payload,
                                   staff.headers("POST", path, body, HOSPITAL)),
                 403, "peer_not_gateway")
    # A second gateway identity of the School's passes until the School's CA revokes it (the
    # CRL the profile names, read at each request).
    ca = LocalCA(connection.parent)
    ca.add_identity(SCHOOL, "custody-gw-revoked", {"mip.role": "gateway"})
    spare = peer_signer(connection, SCHOOL, "custody-gw-revoked")
    assert (await raw_custody(hospital, "/sessions/end", payload,
                              spare.headers("POST", path, body, HOSPITAL))).status_code == 204
    ca.revoke_identity(SCHOOL, "custody-gw-revoked")
    assert_error(await raw_custody(hospital, "/sessions/end", payload,
                                   spare.headers("POST", path, body, HOSPITAL)),
                 401, "peer_unauthenticated")
    # The refusals left no custody session behind for anyone.
    assert not [s for s in custody_service(hospital.state)._sessions.values()
                if s.caller_org == PHARMACY]


async def _vouching_across_orgs(gws: dict[str, GatewayClient], astro: str,
                                grace: str) -> None:
    """Grace (enrolled at the School) vouches for the astronaut (enrolled at the Hospital) at
    her own org's desk; the astronaut vouches for Grace at the Pharmacy's desk (his keys at
    the Hospital, carried by the Pharmacy)."""
    school, pharmacy = gws[SCHOOL], gws[PHARMACY]
    at_school = holder(await desk_unlock(school, SCHOOL, "grace_hopper", grace,
                                         PASSWORDS["grace_hopper"]))
    r = await school.http.post(f"{API}/passports/{astro}/vouches", headers=at_school)
    assert r.status_code == 201, r.text
    assert r.json()["vouches"] == 1
    at_pharmacy = holder(await desk_unlock(pharmacy, PHARMACY, "astronaut", astro,
                                           PASSWORDS["astronaut"]))
    r = await pharmacy.http.post(f"{API}/passports/{grace}/vouches", headers=at_pharmacy)
    assert r.status_code == 201, r.text
    assert r.json()["vouches"] == 1
    ledger = json.loads(await pharmacy.state.ledger.carrier(PHARMACY).evaluate(
        "Passport:Get", [grace]))
    assert ledger["vouches"] == 1


async def _school_failures_lock_out_the_school_only(gws: dict[str, GatewayClient], astro: str,
                                                   password: str) -> None:
    """Wrong faces shown at the School's desk (another person claiming the passport, with
    its right password, then a wrong password) exhaust the School's budget for the passport;
    the Hospital's own desk and the Pharmacy's desk still unlock."""
    school, hospital, pharmacy = gws[SCHOOL], gws[HOSPITAL], gws[PHARMACY]
    for _ in range(MAX_UNLOCK_FAILURES - 1):
        assert_error(await desk_unlock(school, SCHOOL, "grace_hopper", astro, password),
                     401, "unlock_failed")
    assert_error(await desk_unlock(school, SCHOOL, "astronaut", astro, "wrong-Pa55word!"),
                 401, "unlock_failed")
    # Counted at the Hospital against (passport, School), none against its own desk.
    # The fifth failure locked the pair (passport, the School's desks) at the Hospital.
    at_hospital = holder_service(hospital.state).lockouts
    assert at_hospital.locked_until(astro, custody_service(hospital.state)._source(SCHOOL))
    assert_error(await desk_unlock(school, SCHOOL, "astronaut", astro, password),
                 423, "unlock_locked")
    assert (await desk_unlock(hospital, HOSPITAL, "astronaut", astro, password)).json()[
        "level"] == 2
    assert (await desk_unlock(pharmacy, PHARMACY, "astronaut", astro, password)).json()[
        "level"] == 2
    # And the Hospital's desk failures are its own: the School's budget did not move them.
    hospital_desks = holder_service(hospital.state).lockouts
    assert hospital_desks.failures(astro, f"{HOSPITAL}/registrar") == 0
    assert hospital_desks.locked_until(astro, f"{HOSPITAL}/registrar") is None
