"""Guardian recovery at another org's desk (docs/gateway.md, "Holders at another org's desk";
gateway/services/recovery_relay.py), over one org-scoped gateway per org (the fixture of
test_custody_across_orgs.py: requests signed and checked as over https).

Stoiber is enrolled at the Hospital (E) and names three guardians, k = 2: Bush enrolled at the
School, Grace at the Pharmacy, the astronaut at the Hospital. His face "changed" (test-only:
the Hospital's reference and the ledger's commitment now hold another face), so the recovery
needs every guardian. It runs at the School's desk (O): the School checks liveness, the
Hospital combines the shares, matches, makes the new reference from the relayed capture,
writes its commitment and rewraps the vault; each guardian's share is opened by the gateway
that holds that guardian's key. Refusals: too few shares, a changed face with only k shares,
a share given twice, the Pharmacy using the School's recovery or asking for a share of a
guardian it did not enrol, a replayed signed request, a finished recovery finished again.
None of the Hospital's stores reach the School's or the Pharmacy's files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from enrolment_kit import API, PASSWORDS, answer, enrol, fix_poses, frames_of
from gateway_testkit import GatewayClient, assert_error
from mip_testkit import MipNetwork
from org_gateways_kit import (
    desk_unlock,
    holder,
    org_gateways,
    peer_signer,
    raw_custody,
)
from test_org_isolation import files_under, found_in

from chaincode.protocol.orgs import HOSPITAL, PHARMACY, SCHOOL
from face_engine.engine import FaceEngine
from gateway.core.errors import ApiError
from gateway.services.custody import encode_embedding
from gateway.services.custody_client import custody_client
from gateway.services.faces import LiveFace, face_service
from gateway.services.holder_recovery import recovery_service
from gateway.services.holders import holder_service
from gateway.services.ledger import SERVICE_USER

DESK = (SCHOOL, "registrar")
NEW_PASSWORD = "recovered-at-school-Pa55word!"


async def _passport(gw: GatewayClient, org: str, passport_id: str) -> dict[str, Any]:
    return dict(json.loads(await gw.state.ledger.carrier(org).evaluate(
        "Passport:Get", [passport_id])))


def _wrapped(gw: GatewayClient, passport_id: str) -> str:
    row = gw.state.db.query_one("SELECT wrapped_secret FROM holders WHERE passport_id = ?",
                                (passport_id,))
    assert row is not None
    return str(row["wrapped_secret"])


async def _share(gw: GatewayClient, org: str, rid: str, who: str,
                 passport_id: str) -> httpx.Response:
    headers = holder(await desk_unlock(gw, org, who, passport_id, PASSWORDS[who]))
    return await gw.http.post(f"{API}/holders/recoveries/{rid}/shares", headers=headers)


async def _finish(gw: GatewayClient, rid: str, challenge_id: str, who: str) -> httpx.Response:
    body = answer(challenge_id, frames_of(who, gw.state.face_engine()))
    body["new_password"] = NEW_PASSWORD
    return await gw.http.post(f"{API}/holders/recoveries/{rid}/finish",
                              headers=gw.staff(*DESK), json=body)


async def _change_face(hospital: GatewayClient, passport_id: str) -> str:
    """Test-only: the Hospital's reference of `passport_id` now holds another face, and the
    ledger its commitment (signed with his passport key from a Hospital session)."""
    session = holder_service(hospital.state).session(holder(await desk_unlock(
        hospital, HOSPITAL, "stoiber", passport_id, PASSWORDS["stoiber"]))[
            "X-MIP-Holder-Session"])
    assert session is not None
    old = (await _passport(hospital, HOSPITAL, passport_id))["face_commitment"]
    other = np.random.default_rng(11).standard_normal(128).astype(np.float32)
    changed = face_service(hospital.state).enrol_reference(
        LiveFace(other / np.linalg.norm(other)), passport_id, HOSPITAL)
    await hospital.state.ledger.carrier(HOSPITAL).submit("Passport:SetFaceCommitment", [
        passport_id, json.dumps(session.passport_sign("passport.face", {
            "passport_id": passport_id, "face_commitment": changed.commitment,
            "previous": old}))])
    return str(changed.commitment)


async def test_recovery_at_the_schools_desk_of_a_hospital_holder(
        gw_network: MipNetwork, face_engine: FaceEngine, tmp_path: Path) -> None:
    connection = gw_network.connection
    async with org_gateways(gw_network, face_engine, tmp_path) as gws:
        hospital, school, pharmacy = gws[HOSPITAL], gws[SCHOOL], gws[PHARMACY]
        bush = (await enrol(school, "bush", staff=(SCHOOL, "registrar")))["passport_id"]
        grace = (await enrol(pharmacy, "grace_hopper",
                             staff=(PHARMACY, "registrar")))["passport_id"]
        astro = (await enrol(hospital, "astronaut"))["passport_id"]
        stoiber = (await enrol(hospital, "stoiber", guardians=[bush, grace, astro],
                               threshold=2))["passport_id"]
        changed = await _change_face(hospital, stoiber)
        before = _wrapped(hospital, stoiber)

        # Started at the School's desk: the Hospital holds the recovery, the School the
        # face challenge.
        r = await school.http.post(f"{API}/holders/recoveries", headers=school.staff(*DESK),
                                   json={"passport_id": stoiber})
        assert r.status_code == 201, r.text
        started = r.json()
        rid, cid = started["recovery_id"], started["challenge"]["challenge_id"]
        fix_poses(school, cid)
        assert started["guardians"] == sorted([bush, grace, astro])
        assert started["threshold"] == 2
        handle = recovery_service(school.state)._remote[rid].handle
        held = recovery_service(hospital.state)._recoveries[handle]
        assert held.caller_org == SCHOOL and held.staff is None
        assert rid not in recovery_service(hospital.state)._recoveries

        # Not enough guardians: refused at the Hospital before the School spends its
        # challenge.
        assert_error(await _finish(school, rid, cid, "stoiber"), 409, "too_few_shares")
        # Another desk of the School (another staff member) cannot finish it.
        body = answer(cid, frames_of("stoiber", face_engine))
        body["new_password"] = NEW_PASSWORD
        assert_error(await school.http.post(
            f"{API}/holders/recoveries/{rid}/finish", headers=school.staff(SCHOOL, "doctor"),
            json=body), 404, "recovery_not_found")

        # A third org cannot use the School's recovery, nor be handed the sealed share of a
        # guardian it did not enrol.
        unit = np.random.default_rng(3).standard_normal(128).astype(np.float32)
        for path in ("/recoveries/ready", "/recoveries/finish"):
            payload: dict[str, Any] = {"handle": handle}
            if path.endswith("finish"):
                payload.update(embedding=encode_embedding(LiveFace(unit / np.linalg.norm(unit))),
                               new_password=NEW_PASSWORD)
            with pytest.raises(ApiError) as refused:
                await custody_client(pharmacy.state).call(HOSPITAL, path, payload)
            assert (refused.value.status, refused.value.code) == (404, "recovery_not_found")
        with pytest.raises(ApiError) as refused:
            await custody_client(pharmacy.state).call(
                HOSPITAL, "/recoveries/shares/sealed", {"handle": handle, "guardian": bush})
        assert (refused.value.status, refused.value.code) == (403, "not_guardians_custodian")

        # Bush (enrolled at the School: the School holds his key) gives his share at the
        # School's desk; once only.
        r = await _share(school, SCHOOL, rid, "bush", bush)
        assert r.status_code == 201, r.text
        assert (r.json()["shares"], r.json()["threshold"]) == (1, 2)
        assert_error(await _share(school, SCHOOL, rid, "bush", bush), 409,
                     "share_already_given")
        # No org but the Hospital is ever handed k of his guardians' sealed shares (the
        # School, holding Bush's, may not be handed a second: it could combine them).
        with pytest.raises(ApiError) as refused:
            recovery_service(hospital.state).release_sealed(held, grace, SCHOOL)
        assert refused.value.code == "guardian_shares_one_org"
        assert {r["guardian_passport_id"] for r in hospital.state.db.query(
            "SELECT guardian_passport_id FROM recovery_share_releases WHERE org = ?",
            (SCHOOL,))} == {bush}

        # A replayed inter-gateway request is refused (its nonce was seen).
        path = "/api/v1/custody/recoveries/ready"
        payload = {"handle": handle}
        signed = peer_signer(connection, SCHOOL, SERVICE_USER).headers(
            "POST", path, json.dumps(payload).encode(), HOSPITAL)
        assert_error(await raw_custody(hospital, "/recoveries/ready", payload, signed),
                     409, "too_few_shares")
        assert_error(await raw_custody(hospital, "/recoveries/ready", payload, signed),
                     401, "peer_unauthenticated")

        # The astronaut (enrolled at the Hospital) at the School's desk: the Hospital opens
        # his share itself.
        r = await _share(school, SCHOOL, rid, "astronaut", astro)
        assert r.status_code == 201, r.text
        assert r.json()["shares"] == 2
        # k shares are in, but the face does not match the reference: every guardian must
        # give theirs. Nothing changed.
        assert_error(await _finish(school, rid, cid, "stoiber"), 403,
                     "face_mismatch_needs_all_guardians")
        assert _wrapped(hospital, stoiber) == before

        # Grace (enrolled at the Pharmacy) at the School's desk: the Pharmacy opens her
        # share with her key and gives it to the Hospital; the School sees neither.
        r = await _share(school, SCHOOL, rid, "grace_hopper", grace)
        assert r.status_code == 201, r.text
        assert r.json()["shares"] == 3

        r = await school.http.post(f"{API}/holders/recoveries/{rid}/challenge",
                                   headers=school.staff(*DESK))
        assert r.status_code == 201, r.text
        cid = r.json()["challenge_id"]
        fix_poses(school, cid)
        r = await _finish(school, rid, cid, "stoiber")
        assert r.status_code == 200, r.text
        assert r.json() == {"passport_id": stoiber, "face_reenrolled": True, "shares": 3}
        assert_error(await _finish(school, rid, cid, "stoiber"), 404, "recovery_not_found")

        # The Hospital made the new reference from the School's capture and wrote its
        # commitment; the School holds no reference of his, the Pharmacy neither.
        reference = face_service(hospital.state).reference(stoiber, HOSPITAL)
        assert reference is not None
        ledger = await _passport(school, SCHOOL, stoiber)
        assert ledger["face_commitment"] == reference.commitment != changed
        for org_gw in (school, pharmacy):
            commitments = {row["commitment"] for row in org_gw.state.db.query(
                "SELECT commitment FROM face_references")}
            assert reference.commitment not in commitments
        assert _wrapped(hospital, stoiber) != before
        assert hospital.state.db.query_one(
            "SELECT org, face_reenrolled, shares FROM holder_recoveries WHERE "
            "passport_id = ?", (stoiber,))["org"] == SCHOOL

        # The new password unlocks at the School's desk (and the old one no longer does).
        assert_error(await desk_unlock(school, SCHOOL, "stoiber", stoiber,
                                       PASSWORDS["stoiber"]), 401, "unlock_failed")
        r = await desk_unlock(school, SCHOOL, "stoiber", stoiber, NEW_PASSWORD)
        assert r.status_code == 200 and r.json()["level"] == 2, r.text

        with hospital.state.db.transaction() as conn:
            row = conn.execute("SELECT * FROM holders WHERE passport_id = ?",
                               (stoiber,)).fetchone()
        stored = hospital.state.db.query_one(
            "SELECT reference FROM face_references WHERE commitment = ?",
            (reference.commitment,))
        assert stored is not None
        canaries = {"wrapped secret": row["wrapped_secret"].encode()[:48],
                    "sealed face key": bytes(row["face_key_sealed"])[:48],
                    "face reference": str(stored["reference"]).encode()[:48]}
        for share in hospital.state.db.query(
                "SELECT share FROM guardian_shares WHERE holder_passport_id = ?", (stoiber,)):
            canaries[f"sealed share {len(canaries)}"] = str(share["share"]).encode()[-48:]

    for org in (SCHOOL, PHARMACY):
        files = files_under(tmp_path / org / "gateway")
        assert files
        for name, value in canaries.items():
            assert not found_in(files, value), f"the Hospital's {name} is in {org}'s files"
