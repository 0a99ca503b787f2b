"""Pharmacy pickup: POST /pharmacy/pickups, .../frames, .../dispense, POST /admin/counter-key.

Faces come from the two public-domain demo portraits through the simulated camera
(gateway/demo/camera.py): the account's reference is Grace Hopper's; the astronaut is
another person.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
from typing import Any

from gateway_testkit import GatewayClient, assert_error
from ledger_kit import PHARMACY, grant, issue, mip, new_account
from mip_testkit import Account, MipClients

from face_engine.engine import FaceEngine
from gateway.core.security import StaffMember
from gateway.demo.camera import HeadModel, challenge_poses, posed_frame, prepare_portrait
from gateway.demo.faces import demo_portrait
from gateway.services.face_frames import gateway_time
from gateway.services.faces import LiveFace, face_service
from gateway.services.pickup import PickupService

__all__ = ["mip"]

URL = "/api/v1/pharmacy/pickups"
TURNS = ("left", "right")


@functools.cache
def _model(name: str, engine: FaceEngine) -> HeadModel:
    return prepare_portrait(demo_portrait(name), engine)


@functools.cache
def _pose_jpeg(name: str, pose: str, engine: FaceEngine) -> str:
    return base64.b64encode(posed_frame(_model(name, engine), pose)).decode()


def frames_body(gw: GatewayClient, challenge: dict[str, Any], who: str) -> dict[str, Any]:
    """The simulated camera's answer to `challenge`: frontal, then each pose (frames carry no
    time: the gateway times them by arrival)."""
    engine = gw.state.face_engine()
    poses = challenge_poses(challenge["poses"])
    return {"challenge_id": challenge["challenge_id"],
            "frames": [{"image": _pose_jpeg(who, pose, engine)} for pose in poses]}


async def ready_prescription(gw: GatewayClient, mip: MipClients, *, refills: int = 0,
                             with_grant: bool = True, face: bool = True
                             ) -> tuple[Account, dict[str, Any]]:
    """An account whose reference is Grace Hopper's (its commitment on the ledger; with
    `face=False` the gateway holds no reference) and a prescription of it."""
    r = await gw.http.post("/api/v1/admin/counter-key", headers=gw.staff(PHARMACY, "admin"))
    assert r.status_code == 200, r.text
    account = await new_account(mip, face=(gw, "grace_hopper") if face else None)
    rx = await issue(gw, account, "prescription", refills=refills)
    if with_grant:
        await grant(gw, account, PHARMACY, "medical.prescription",
                    credential_id=rx["credential_id"])
    return account, rx


async def start(gw: GatewayClient, credential_id: str) -> dict[str, Any]:
    r = await gw.http.post(URL, json={"prescription_id": credential_id},
                           headers=gw.staff(PHARMACY, "pharmacist"))
    assert r.status_code == 201, r.text
    pickup = dict(r.json())
    # Both portraits can turn left and right (each lacks one of up/down): fix the poses.
    with gw.state.db.transaction() as conn:
        conn.execute("UPDATE face_challenges SET poses = ? WHERE challenge_id = ?",
                     (json.dumps(TURNS), pickup["challenge"]["challenge_id"]))
    pickup["challenge"]["poses"] = list(TURNS)
    return pickup


async def answer(gw: GatewayClient, pickup: dict[str, Any], who: str) -> Any:
    return await gw.http.post(f"{URL}/{pickup['pickup_id']}/frames",
                              json=frames_body(gw, pickup["challenge"], who),
                              headers=gw.staff(PHARMACY, "pharmacist"))


async def test_verified_pickup_dispenses_exactly_once(gw: GatewayClient,
                                                      mip: MipClients) -> None:
    _, rx = await ready_prescription(gw, mip)
    pickup = await start(gw, rx["credential_id"])
    assert pickup["prescription"] == {"drug": "amoxicillin", "strength": "500 mg",
                                      "quantity": 21}
    assert pickup["challenge"]["poses"] and pickup["challenge"]["expires_in_s"] > 0
    pharmacist = gw.staff(PHARMACY, "pharmacist")
    dispense_url = f"{URL}/{pickup['pickup_id']}/dispense"
    assert_error(await gw.http.post(dispense_url, headers=pharmacist), 409, "not_verified")

    r = await answer(gw, pickup, "grace_hopper")
    assert r.status_code == 200 and r.json() == {"result": "verified", "reason": None}
    assert "score" not in r.text
    # The challenge was answered once: the pickup takes no second answer.
    assert_error(await answer(gw, pickup, "grace_hopper"), 409, "pickup_used")

    results = await asyncio.gather(*[gw.http.post(dispense_url, headers=pharmacist)
                                     for _ in range(3)])
    ok = [r for r in results if r.status_code == 200]
    assert len(ok) == 1 and ok[0].json() == {"dispensed": True, "fills_used": 1,
                                             "fills_allowed": 1}
    for r in results:
        if r.status_code != 200:
            assert_error(r, 409, "already_dispensed")
    # Used up: a new pickup is refused, and the ledger's counter says one fill.
    assert_error(await gw.http.post(URL, json={"prescription_id": rx["credential_id"]},
                                    headers=pharmacist), 409, "precondition_failed")
    record = (await gw.http.get(f"/api/v1/credentials/{rx['credential_id']}")).json()
    assert record["fills"]["used"] == 1


async def test_contract_takes_one_fill_of_concurrent_pickups(gw: GatewayClient,
                                                             mip: MipClients) -> None:
    _, rx = await ready_prescription(gw, mip)
    pickups = [await start(gw, rx["credential_id"]) for _ in range(2)]
    for pickup in pickups:
        assert (await answer(gw, pickup, "grace_hopper")).json()["result"] == "verified"
    pharmacist = gw.staff(PHARMACY, "pharmacist")
    results = await asyncio.gather(*[
        gw.http.post(f"{URL}/{p['pickup_id']}/dispense", headers=pharmacist) for p in pickups])
    assert sorted(r.status_code for r in results) == [200, 409], [r.text for r in results]
    loser = next(r for r in results if r.status_code == 409)
    assert_error(loser, 409, "precondition_failed")
    record = (await gw.http.get(f"/api/v1/credentials/{rx['credential_id']}")).json()
    assert record["fills"]["used"] == 1


async def test_five_refusals_lock_the_prescription(gw: GatewayClient,
                                                   mip: MipClients) -> None:
    _, rx = await ready_prescription(gw, mip, refills=2)
    pickups = [await start(gw, rx["credential_id"]) for _ in range(6)]
    for pickup in pickups[:5]:
        r = await answer(gw, pickup, "astronaut")
        assert r.status_code == 200 and r.json() == {"result": "refused",
                                                     "reason": "face_mismatch"}
    # The sixth, started before the lock, is refused too, as is any new pickup.
    assert_error(await answer(gw, pickups[5], "grace_hopper"), 423, "locked")
    err = assert_error(await gw.http.post(URL, json={"prescription_id": rx["credential_id"]},
                                          headers=gw.staff(PHARMACY, "pharmacist")),
                       423, "locked")
    assert err["details"]["retry_after_s"] > 1000
    # Refused pickups cannot dispense; nothing was dispensed.
    assert_error(await gw.http.post(f"{URL}/{pickups[0]['pickup_id']}/dispense",
                                    headers=gw.staff(PHARMACY, "pharmacist")),
                 409, "not_verified")
    record = (await gw.http.get(f"/api/v1/credentials/{rx['credential_id']}")).json()
    assert record["fills"]["used"] == 0
    # The lock is in the database: a restarted service (new instance) still sees it.
    assert PickupService(gw.state).locked_until(rx["credential_id"], StaffMember(
        PHARMACY, "pharmacist", "pharmacist")) is not None


async def test_pickup_refusals(gw: GatewayClient, mip: MipClients) -> None:
    pharmacist = gw.staff(PHARMACY, "pharmacist")
    # No grant to the pharmacy.
    _, no_grant = await ready_prescription(gw, mip, with_grant=False)
    assert_error(await gw.http.post(URL, json={"prescription_id": no_grant["credential_id"]},
                                    headers=pharmacist), 403, "no_grant")
    assert_error(await gw.http.post(URL, json={"prescription_id": "no-such-rx"},
                                    headers=pharmacist), 404, "not_found")
    assert_error(await gw.http.post(URL, json={"prescription_id": no_grant["credential_id"]},
                                    headers=gw.staff(PHARMACY, "doctor")), 403, "wrong_role")
    assert_error(await gw.http.post(URL, json={"prescription_id": no_grant["credential_id"]},
                                    headers=gw.staff("HospitalMSP", "pharmacist")),
                 403, "wrong_org")
    assert_error(await gw.http.post(URL, json={"prescription_id": ""}, headers=pharmacist),
                 422, "invalid_request")

    # No face reference for the account: refused with a reason, never an error page.
    _, rx = await ready_prescription(gw, mip, face=False)
    pickup = await start(gw, rx["credential_id"])
    assert (await answer(gw, pickup, "grace_hopper")).json() == {
        "result": "refused", "reason": "no_reference"}

    pickup = await start(gw, rx["credential_id"])
    frames_url = f"{URL}/{pickup['pickup_id']}/frames"
    body = frames_body(gw, pickup["challenge"], "grace_hopper")
    # Malformed frames change nothing (the challenge is still unanswered afterwards).
    for bad in ({**body, "frames": body["frames"] * 5},
                {**body, "frames": [{"image": "@@@"}]},
                {**body, "frames": []},
                # A client time is no longer part of the API: refused, not trusted.
                {**body, "frames": [{**body["frames"][0], "offset_s": 0.5}]}):
        assert_error(await gw.http.post(frames_url, json=bad, headers=pharmacist), 422,
                     "invalid_request")
    assert_error(await gw.http.post(frames_url, json={**body, "challenge_id": "x" * 32},
                                    headers=pharmacist), 404, "challenge_not_found")
    other = {"Authorization": "Bearer " + gw.state.staff.issue(PHARMACY, "pharmacist2",
                                                               "pharmacist")}
    assert_error(await gw.http.post(frames_url, json=body, headers=other), 403,
                 "not_your_pickup")
    assert_error(await gw.http.post(f"{URL}/nope/frames", json=body, headers=pharmacist),
                 404, "not_found")
    # Bytes that are not an image (more such cases: test_pickup_lockout.py).
    blank = {**body, "frames": [{"image": base64.b64encode(b"not an image").decode()},
                                *body["frames"][1:]]}
    r = await gw.http.post(frames_url, json=blank, headers=pharmacist)
    assert r.json() == {"result": "refused", "reason": "bad_image"}

    # A revoked prescription is refused at the start.
    r = await gw.http.post(f"/api/v1/credentials/{rx['credential_id']}/revoke",
                           json={"reason": "stop"}, headers=gw.staff("HospitalMSP", "doctor"))
    assert r.status_code == 200
    assert_error(await gw.http.post(URL, json={"prescription_id": rx["credential_id"]},
                                    headers=pharmacist), 409, "precondition_failed")


async def test_counter_key_needs_a_pharmacy_admin(gw: GatewayClient) -> None:
    url = "/api/v1/admin/counter-key"
    assert_error(await gw.http.post(url, headers=gw.staff(PHARMACY, "pharmacist")), 403,
                 "wrong_role")
    assert_error(await gw.http.post(url, headers=gw.staff("HospitalMSP", "admin")), 403,
                 "wrong_org")
    first = (await gw.http.post(url, headers=gw.staff(PHARMACY, "admin"))).json()
    again = (await gw.http.post(url, headers=gw.staff(PHARMACY, "admin"))).json()
    assert first["key_id"] == again["key_id"] and again["newly_registered"] is False


async def test_batch_answer_is_timed_by_its_arrival(gw: GatewayClient, mip: MipClients) -> None:
    """All frames of one request share its arrival time: an answer that arrives after the
    deadline is refused (`challenge_expired`), even if its frames could have been taken in
    time."""
    _, rx = await ready_prescription(gw, mip, refills=1)
    pickup = await start(gw, rx["credential_id"])
    now = gateway_time()
    with gw.state.db.transaction() as conn:
        conn.execute("UPDATE face_challenges SET issued_at = ?, deadline = ? "
                     "WHERE challenge_id = ?",
                     (now - 20, now - 2, pickup["challenge"]["challenge_id"]))
    assert (await answer(gw, pickup, "grace_hopper")).json() == {
        "result": "refused", "reason": "challenge_expired"}
    # Answered in time, the same frames verify.
    pickup = await start(gw, rx["credential_id"])
    assert (await answer(gw, pickup, "grace_hopper")).json()["result"] == "verified"


async def test_a_reference_the_ledger_does_not_name_is_refused(gw: GatewayClient,
                                                               mip: MipClients) -> None:
    """A swapped reference (another face re-enrolled into the account's slot, or the slot
    pointing at another account's reference row) is refused before the verdict: 409
    `face_reference_mismatch`, the pickup stays `challenged`, no failure is counted, nothing
    is attested or dispensed. Restored, the honest patient is verified."""
    account, rx = await ready_prescription(gw, mip, refills=1)
    other, _ = await ready_prescription(gw, mip)
    faces = face_service(gw.state)
    honest = faces.reference(account.pseudonym, account.institution)
    theirs = faces.reference(other.pseudonym, other.institution)
    assert honest is not None and theirs is not None
    ledger = json.loads(await gw.state.ledger.carrier(PHARMACY).evaluate(
        "Account:Get", [account.pseudonym]))
    assert ledger["face_commitment"] == honest.commitment
    pharmacist = gw.staff(PHARMACY, "pharmacist")

    async def refused_pickup() -> None:
        pickup = await start(gw, rx["credential_id"])
        assert_error(await answer(gw, pickup, "astronaut"), 409, "face_reference_mismatch")
        row = gw.state.db.query_one("SELECT status, attestation FROM pickups "
                                    "WHERE pickup_id = ?", (pickup["pickup_id"],))
        assert row is not None and row["status"] == "challenged" and row["attestation"] is None
        assert_error(await gw.http.post(f"{URL}/{pickup['pickup_id']}/dispense",
                                        headers=pharmacist), 409, "not_verified")

    # The astronaut's face re-enrolled as the account's reference, the ledger not told: the
    # astronaut would collect grace's prescription.
    swapped = faces.enrol_reference(LiveFace(gw.state.face_engine().embed(
        demo_portrait("astronaut"))), account.pseudonym, account.institution)
    await refused_pickup()
    # Another account's reference row behind this account's slot.
    with gw.state.db.transaction() as conn:
        conn.execute("UPDATE face_slots SET commitment = ? WHERE holder_pseudonym = ? "
                     "AND institution = ?", (theirs.commitment, *honest.slot))
    await refused_pickup()
    assert PickupService(gw.state).lockouts.failures(rx["credential_id"]) == 0
    record = (await gw.http.get(f"/api/v1/credentials/{rx['credential_id']}")).json()
    assert record["fills"]["used"] == 0
    faces.restore_reference(honest, swapped)
    pickup = await start(gw, rx["credential_id"])
    assert (await answer(gw, pickup, "grace_hopper")).json()["result"] == "verified"
