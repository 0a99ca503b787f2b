"""Guardian recovery: k shares and a matching live face give a new password; a changed face
needs every guardian and becomes the reference; each refusal changes nothing."""
# ruff: noqa: F811 (fixtures imported from enrolment_kit)

from __future__ import annotations

import json
from typing import Any

import httpx
import numpy as np
from enrolment_kit import (
    API,
    Enrolled,
    answer,
    ensure_enrolled,
    fix_poses,
    frames_of,
    holder_headers,
    hw,  # noqa: F401
    hw_data_dir,  # noqa: F401
    session_headers,
    unlock,
)
from gateway_testkit import GatewayClient, assert_error

from gateway.fabric import ChaincodeError
from gateway.services.faces import LiveFace, face_service
from gateway.services.holder_recovery import recovery_service
from gateway.services.holders import holder_service

DESK = ("HospitalMSP", "doctor")


def _wrapped(gw: GatewayClient, passport_id: str) -> tuple[str, bytes]:
    row = gw.state.db.query_one(
        "SELECT wrapped_secret, face_key_sealed FROM holders WHERE passport_id = ?",
        (passport_id,))
    assert row is not None
    return str(row["wrapped_secret"]), bytes(row["face_key_sealed"])


async def _passport(gw: GatewayClient, passport_id: str) -> dict[str, Any]:
    return dict(json.loads(await gw.state.ledger.carrier("HospitalMSP").evaluate(
        "Passport:Get", [passport_id])))


async def _start(gw: GatewayClient, passport_id: str) -> dict[str, Any]:
    r = await gw.http.post(f"{API}/holders/recoveries", headers=gw.staff(*DESK),
                           json={"passport_id": passport_id})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    fix_poses(gw, body["challenge"]["challenge_id"])
    return body


async def _share(gw: GatewayClient, rid: str, guardian: Enrolled) -> httpx.Response:
    headers = await holder_headers(gw, guardian)
    return await gw.http.post(f"{API}/holders/recoveries/{rid}/shares", headers=headers)


async def _finish(gw: GatewayClient, rid: str, challenge_id: str, who: str, password: str,
                  staff: tuple[str, str] = DESK) -> httpx.Response:
    body = answer(challenge_id, frames_of(who, gw.state.face_engine()))
    body["new_password"] = password
    return await gw.http.post(f"{API}/holders/recoveries/{rid}/finish",
                              headers=gw.staff(*staff), json=body)


async def _new_challenge(gw: GatewayClient, rid: str) -> str:
    r = await gw.http.post(f"{API}/holders/recoveries/{rid}/challenge",
                           headers=gw.staff(*DESK))
    assert r.status_code == 201, r.text
    cid = str(r.json()["challenge_id"])
    fix_poses(gw, cid)
    return cid


async def test_k_shares_and_matching_face_set_a_new_password(hw: GatewayClient) -> None:
    grace = await ensure_enrolled(hw, "grace_hopper")  # guardians bush, stoiber; k = 1
    bush = await ensure_enrolled(hw, "bush")
    stoiber = await ensure_enrolled(hw, "stoiber")
    started = await _start(hw, grace.passport_id)
    rid, cid = started["recovery_id"], started["challenge"]["challenge_id"]
    assert started["guardians"] == sorted([bush.passport_id, stoiber.passport_id])
    assert started["threshold"] == 1
    before = _wrapped(hw, grace.passport_id)
    new_password = "recovered-Pa55word-grace!"
    # Too few shares; a level-1 guardian session; the holder is not their own guardian.
    assert_error(await _finish(hw, rid, cid, "grace_hopper", new_password), 409,
                 "too_few_shares")
    level1 = await unlock(hw, "stoiber", stoiber.passport_id)
    assert_error(await hw.http.post(f"{API}/holders/recoveries/{rid}/shares",
                                    headers=session_headers(level1)),
                 403, "holder_level_too_low")
    assert_error(await _share(hw, rid, grace), 403, "not_a_guardian")
    # Bush gives a share, once.
    r = await _share(hw, rid, bush)
    assert r.status_code == 201, r.text
    assert r.json()["shares"] == 1 and r.json()["threshold"] == 1
    assert_error(await _share(hw, rid, bush), 409, "share_already_given")
    # Weak password; another desk; malformed body: nothing changes, the challenge survives.
    assert_error(await _finish(hw, rid, cid, "grace_hopper", "short"), 422, "weak_password")
    assert_error(await _finish(hw, rid, cid, "grace_hopper", new_password,
                               staff=("SchoolMSP", "registrar")), 404, "recovery_not_found")
    assert_error(await hw.http.post(f"{API}/holders/recoveries/{rid}/finish",
                                    headers=hw.staff(*DESK), json={"new_password": "x"}),
                 422, "invalid_request")
    assert _wrapped(hw, grace.passport_id) == before
    r = await _finish(hw, rid, cid, "grace_hopper", new_password)
    assert r.status_code == 200, r.text
    assert r.json() == {"passport_id": grace.passport_id, "face_reenrolled": False,
                        "shares": 1}
    # The recovery is over; the old password no longer unlocks, the new one does.
    assert_error(await _finish(hw, rid, cid, "grace_hopper", new_password), 404,
                 "recovery_not_found")
    assert_error(await unlock(hw, "grace_hopper", grace.passport_id, password=grace.password),
                 401, "unlock_failed")
    grace.password = new_password
    r = await unlock(hw, "grace_hopper", grace.passport_id, password=new_password)
    assert r.status_code == 200 and r.json()["level"] == 2
    row = hw.state.db.query_one("SELECT * FROM holder_recoveries WHERE recovery_id = ?", (rid,))
    assert row is not None and row["face_reenrolled"] == 0 and row["shares"] == 1


async def test_changed_face_needs_every_guardian_and_is_reenrolled(hw: GatewayClient) -> None:
    grace = await ensure_enrolled(hw, "grace_hopper")
    bush = await ensure_enrolled(hw, "bush")
    stoiber = await ensure_enrolled(hw, "stoiber")
    # Test-only: the reference now holds another face (as if hers had changed a lot), and,
    # as for any re-enrolment, the ledger its commitment (signed with her passport key from a
    # session she unlocked while her face still matched).
    session = holder_service(hw.state).session(
        (await holder_headers(hw, grace))["X-MIP-Holder-Session"])
    assert session is not None
    old_commitment = (await _passport(hw, grace.passport_id))["face_commitment"]
    rng = np.random.default_rng(7)
    other = rng.standard_normal(128).astype(np.float32)  # the engine's embedding size
    changed = face_service(hw.state).enrol_reference(LiveFace(other / np.linalg.norm(other)),
                                                     grace.passport_id, "HospitalMSP")
    await hw.state.ledger.carrier("HospitalMSP").submit("Passport:SetFaceCommitment", [
        grace.passport_id, json.dumps(session.passport_sign("passport.face", {
            "passport_id": grace.passport_id, "face_commitment": changed.commitment,
            "previous": old_commitment}))])
    assert_error(await unlock(hw, "grace_hopper", grace.passport_id), 401, "unlock_failed")
    started = await _start(hw, grace.passport_id)
    rid, cid = started["recovery_id"], started["challenge"]["challenge_id"]
    assert (await _share(hw, rid, bush)).status_code == 201
    before = _wrapped(hw, grace.passport_id)
    new_password = "new-face-Pa55word-grace!"
    # k = 1 shares are in, but the face does not match: every guardian must give theirs.
    assert_error(await _finish(hw, rid, cid, "grace_hopper", new_password), 403,
                 "face_mismatch_needs_all_guardians")
    assert _wrapped(hw, grace.passport_id) == before
    assert (await _share(hw, rid, stoiber)).status_code == 201
    # The spent challenge cannot be replayed; a new one is answered.
    assert_error(await _finish(hw, rid, cid, "grace_hopper", new_password), 409,
                 "challenge_used")
    r = await _finish(hw, rid, await _new_challenge(hw, rid), "grace_hopper", new_password)
    assert r.status_code == 200, r.text
    assert r.json()["face_reenrolled"] is True and r.json()["shares"] == 2
    # The recovery wrote the new reference's commitment to the ledger; the replaced one stays
    # refused there (used once).
    reference = face_service(hw.state).reference(grace.passport_id, "HospitalMSP")
    assert reference is not None
    assert (await _passport(hw, grace.passport_id))["face_commitment"] == reference.commitment
    assert reference.commitment not in (changed.commitment, old_commitment)
    grace.password = new_password
    r = await unlock(hw, "grace_hopper", grace.passport_id, password=new_password)
    assert r.status_code == 200 and r.json()["level"] == 2
    assert grace.passport_id in face_service(hw.state).dedup()


async def test_a_refused_ledger_write_keeps_the_old_reference(hw: GatewayClient,
                                                              monkeypatch: Any) -> None:
    """The new face's commitment must reach the ledger: if it does not, the old reference is
    current again and the recovery changed nothing."""
    grace = await ensure_enrolled(hw, "grace_hopper")
    bush = await ensure_enrolled(hw, "bush")
    stoiber = await ensure_enrolled(hw, "stoiber")
    faces = face_service(hw.state)
    honest = faces.reference(grace.passport_id, "HospitalMSP")
    assert honest is not None
    ledger = await _passport(hw, grace.passport_id)
    started = await _start(hw, grace.passport_id)
    rid = started["recovery_id"]
    for guardian in (bush, stoiber):
        assert (await _share(hw, rid, guardian)).status_code == 201
    before = _wrapped(hw, grace.passport_id)

    async def refused(*_args: Any) -> None:
        error = ChaincodeError("the ledger refused (test)")
        error.chaincode_status, error.chaincode_message = 409, "conflict: test refusal"
        raise error

    service = recovery_service(hw.state)
    monkeypatch.setattr(service, "_set_face_commitment", refused)
    # The astronaut's face is not grace's reference: with every guardian's share it would be
    # re-enrolled, but the ledger refuses its commitment.
    r = await _finish(hw, rid, started["challenge"]["challenge_id"], "astronaut",
                      "never-set-Pa55word-grace!")
    assert_error(r, 409, "conflict")
    assert faces.reference(grace.passport_id, "HospitalMSP") == honest
    assert await _passport(hw, grace.passport_id) == ledger
    assert _wrapped(hw, grace.passport_id) == before
    r = await unlock(hw, "grace_hopper", grace.passport_id, password=grace.password)
    assert r.status_code == 200 and r.json()["level"] == 2, r.text


async def test_someone_elses_face_is_a_duplicate(hw: GatewayClient) -> None:
    stoiber = await ensure_enrolled(hw, "stoiber")  # one guardian (bush), k = 1
    bush = await ensure_enrolled(hw, "bush")
    started = await _start(hw, stoiber.passport_id)
    rid, cid = started["recovery_id"], started["challenge"]["challenge_id"]
    assert (await _share(hw, rid, bush)).status_code == 201
    before = _wrapped(hw, stoiber.passport_id)
    # Bush's face: it is not stoiber's reference, and it is enrolled for another passport.
    assert_error(await _finish(hw, rid, cid, "bush", "taken-over-Pa55word!"), 409,
                 "duplicate_face")
    assert _wrapped(hw, stoiber.passport_id) == before
    r = await unlock(hw, "stoiber", stoiber.passport_id, password=stoiber.password)
    assert r.status_code == 200 and r.json()["level"] == 2


async def test_recovery_refusals(hw: GatewayClient) -> None:
    desk = hw.staff(*DESK)
    bush = await ensure_enrolled(hw, "bush")
    grace = await ensure_enrolled(hw, "grace_hopper")
    url = f"{API}/holders/recoveries"
    assert_error(await hw.http.post(url, json={"passport_id": bush.passport_id}), 401,
                 "unauthenticated")
    assert_error(await hw.http.post(url, headers=desk, json={"passport_id": "ab" * 32}), 404,
                 "passport_not_found")
    assert_error(await hw.http.post(url, headers=desk, json={"passport_id": bush.passport_id}),
                 409, "no_guardians")
    assert_error(await hw.http.post(url, headers=desk, json={"passport_id": "nope"}), 422,
                 "invalid_request")
    assert_error(await hw.http.post(f"{url}/{'0' * 64}/shares",
                                    headers=await holder_headers(hw, bush)),
                 404, "recovery_not_found")
    assert_error(await hw.http.post(f"{url}/{'0' * 64}/shares"), 401, "holder_session_required")
    # A capture that does not perform the challenge fails liveness and changes nothing.
    started = await _start(hw, grace.passport_id)
    rid, cid = started["recovery_id"], started["challenge"]["challenge_id"]
    assert (await _share(hw, rid, bush)).status_code == 201
    before = _wrapped(hw, grace.passport_id)
    frontal = frames_of("grace_hopper", hw.state.face_engine())[0]
    body = answer(cid, [frontal, frontal, frontal])
    body["new_password"] = "another-Pa55word-grace!"
    r = await hw.http.post(f"{url}/{rid}/finish", headers=desk, json=body)
    assert_error(r, 422, "liveness_failed")
    assert _wrapped(hw, grace.passport_id) == before
    # Expired.
    recovery_service(hw.state)._recoveries[rid].expires = 0.0
    assert_error(await hw.http.post(f"{url}/{rid}/challenge", headers=desk), 410,
                 "recovery_expired")
    # Once seen expired it is gone (its opened shares wiped).
    assert_error(await _finish(hw, rid, cid, "grace_hopper", "another-Pa55word-grace!"), 404,
                 "recovery_not_found")
    assert _wrapped(hw, grace.passport_id) == before
