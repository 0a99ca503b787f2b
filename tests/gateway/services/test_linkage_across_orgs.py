"""Linkage proofs at another org's desk (docs/gateway.md, "Holders at another org's desk"):
the astronaut, enrolled at the Hospital, proves at the School's desk that his School account
and his Hospital account are his. The Hospital makes the proof with his keys, designated to
the School's own verifier key, and returns only the proof; the School's staff check it with
the School's key. A proof for another org's verifier is refused at the School; a pseudonym
that is not the holder's ends the custody session and counts as a failed unlock from the
School (the desk cannot try pseudonyms read off the ledger). The smart profile at the
School's desk: its public key and adding a record (stored at the Hospital), nothing that reads.
"""

from __future__ import annotations

from pathlib import Path

from enrolment_kit import API, PASSWORDS, enrol
from gateway_testkit import GatewayClient, assert_error
from mip_testkit import MipNetwork
from org_gateways_kit import desk_unlock, holder, org_gateways
from test_org_isolation import files_under, found_in

from chaincode.protocol.encoding import b64
from chaincode.protocol.orgs import HOSPITAL, PHARMACY, SCHOOL
from face_engine.engine import FaceEngine
from gateway.services.custody import custody_service
from gateway.services.holders import holder_service

RECORD = b"school-desk-profile-record-canary-7f3a"


async def test_a_linkage_proof_for_the_desks_org(gw_network: MipNetwork,
                                                face_engine: FaceEngine,
                                                tmp_path: Path) -> None:
    async with org_gateways(gw_network, face_engine, tmp_path) as gws:
        hospital, school = gws[HOSPITAL], gws[SCHOOL]
        astro = (await enrol(hospital, "astronaut"))["passport_id"]
        password = PASSWORDS["astronaut"]
        r = await school.http.post(f"{API}/admin/linkage-key", headers=school.staff(SCHOOL,
                                                                                  "admin"))
        assert r.status_code == 200, r.text
        at_hospital = holder(await desk_unlock(hospital, HOSPITAL, "astronaut", astro, password))
        r = await hospital.http.post(f"{API}/accounts", headers=at_hospital,
                                     json={"institution": HOSPITAL})
        assert r.status_code == 201, r.text
        hospital_account = r.json()["pseudonym"]

        at_school = holder(await desk_unlock(school, SCHOOL, "astronaut", astro, password))
        r = await school.http.post(f"{API}/accounts", headers=at_school,
                                   json={"institution": SCHOOL})
        assert r.status_code == 201, r.text
        school_account = r.json()["pseudonym"]

        nonce = "school-desk-nonce-0001"
        r = await school.http.post(f"{API}/linkage/proofs", headers=at_school, json={
            "account_a": school_account, "account_b": hospital_account,
            "verifier_org": SCHOOL, "nonce": nonce})
        assert r.status_code == 201, r.text
        proof = r.json()["proof"]
        assert {proof["pseudonym_a"], proof["pseudonym_b"]} == {school_account,
                                                               hospital_account}
        r = await school.http.post(f"{API}/linkage/verifications",
                                   headers=school.staff(SCHOOL, "school_registrar"),
                                   json={"proof": proof, "nonce": nonce})
        assert r.status_code == 200, r.text
        assert r.json()["linked"] is True
        assert {(a["pseudonym"], a["institution"]) for a in r.json()["accounts"]} == {
            (school_account, SCHOOL), (hospital_account, HOSPITAL)}

        await _profile_at_the_schools_desk(hospital, school, at_hospital, at_school)

        # Only for the desk's own org.
        assert_error(await school.http.post(f"{API}/linkage/proofs", headers=at_school, json={
            "account_a": school_account, "account_b": hospital_account,
            "verifier_org": PHARMACY}), 403, "verifier_not_desk_org")
        # A pseudonym that is not his: refused, the custody session ended, counted.
        assert_error(await school.http.post(f"{API}/linkage/proofs", headers=at_school, json={
            "account_a": school_account, "account_b": "ab" * 32, "verifier_org": SCHOOL}),
            404, "account_not_found")
        assert not [s for s in custody_service(hospital.state)._sessions.values()
                    if s.caller_org == SCHOOL]
        school_desks = custody_service(hospital.state)._source(SCHOOL)
        assert holder_service(hospital.state).lockouts.failures(astro, school_desks) == 1
        assert_error(await school.http.post(f"{API}/linkage/proofs", headers=at_school, json={
            "account_a": school_account, "account_b": hospital_account,
            "verifier_org": SCHOOL}), 404, "custody_session_not_found")

    # The record went through the School's gateway; none of its files keeps it.
    files = files_under(tmp_path / SCHOOL / "gateway")
    assert files and not found_in(files, RECORD)


async def _profile_at_the_schools_desk(hospital: GatewayClient, school: GatewayClient,
                                       at_hospital: dict[str, str],
                                       at_school: dict[str, str]) -> None:
    """At the School's desk the holder's profile key comes from the Hospital and a record
    can be added (stored at the Hospital, sealed to his key, its source the School), never
    listed, opened or shared there."""
    r = await school.http.get(f"{API}/profile/key", headers=at_school)
    assert r.status_code == 200, r.text
    own = holder_service(hospital.state).session(at_hospital["X-MIP-Holder-Session"])
    assert own is not None
    assert r.json()["public_key"] == b64(bytes(own.profile_key().public_key))
    record = {"kind": "education.note", "source": SCHOOL, "data": b64(RECORD)}
    assert_error(await school.http.post(f"{API}/profile/records", headers=at_school,
                                        json={**record, "source": HOSPITAL}),
                 403, "not_caller_institution")
    r = await school.http.post(f"{API}/profile/records", headers=at_school, json=record)
    assert r.status_code == 201, r.text
    assert (r.json()["source"], r.json()["owned"]) == (SCHOOL, True)
    record_id = r.json()["record_id"]
    for path in ("/profile/records", f"/profile/records/{record_id}"):
        assert_error(await school.http.get(f"{API}{path}", headers=at_school), 409,
                     "custody_elsewhere")
    assert_error(await school.http.post(f"{API}/profile/records/{record_id}/shares",
                                        headers=at_school,
                                        json={"grantee_public_key": b64(bytes(32))}),
                 409, "custody_elsewhere")
    # The holder reads it at his own org's desk.
    r = await hospital.http.get(f"{API}/profile/records/{record_id}", headers=at_hospital)
    assert r.status_code == 200, r.text
    assert r.json()["data"] == b64(RECORD)
