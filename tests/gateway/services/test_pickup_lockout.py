"""Pickup lockout (issue #16): concurrent wrong answers get no more face matches than the
lockout allows; the lock holds only at the counter (pharmacist) that failed, with backoff;
a bad capture or a late answer is refused with its own code and is not counted towards the
lock. Same faces as test_pickup.py (Grace Hopper enrolled, the
astronaut someone else)."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import cv2
import numpy as np
import pytest
from gateway_testkit import GatewayClient, assert_error
from ledger_kit import PHARMACY, mip
from mip_testkit import MipClients, MipNetwork
from test_pickup import URL, _model, answer, frames_body, ready_prescription, start

from gateway.core.security import StaffMember
from gateway.demo.camera import posed_frame
from gateway.services.face_frames import gateway_time
from gateway.services.faces import ANSWER_GRACE_S, face_service
from gateway.services.pickup import PickupService

__all__ = ["mip"]


def _jpeg(image: np.ndarray) -> str:
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return base64.b64encode(data.tobytes()).decode()


PHARMACIST = StaffMember(PHARMACY, "pharmacist", "pharmacist")
OTHER_COUNTER = "pharmacist-2"


def _failures(gw: GatewayClient, prescription_id: str) -> int:
    return PickupService(gw.state).lockouts.failures(prescription_id)


def _locked_until(gw: GatewayClient, prescription_id: str) -> float | None:
    return PickupService(gw.state).locked_until(prescription_id, PHARMACIST)


@pytest.fixture
def other_counter(gw: GatewayClient, gw_network: MipNetwork) -> dict[str, str]:
    """A second pharmacist of the same pharmacy (another counter): own Fabric identity and
    token."""
    from network.devnet.pki import IdentityExistsError, add_identity

    try:
        add_identity(gw_network.data_dir, PHARMACY, OTHER_COUNTER, {"mip.role": "pharmacist"})
    except IdentityExistsError:
        pass
    token = gw.state.staff.issue(PHARMACY, OTHER_COUNTER, "pharmacist")
    return {"Authorization": f"Bearer {token}"}


async def _start_at(gw: GatewayClient, headers: dict[str, str], rx: dict[str, Any]
                    ) -> dict[str, Any]:
    r = await gw.http.post(URL, json={"prescription_id": rx["credential_id"]},
                           headers=headers)
    assert r.status_code == 201, r.text
    pickup = dict(r.json())
    with gw.state.db.transaction() as conn:  # as test_pickup.start: left/right turns
        conn.execute("UPDATE face_challenges SET poses = ? WHERE challenge_id = ?",
                     ('["left", "right"]', pickup["challenge"]["challenge_id"]))
    pickup["challenge"]["poses"] = ["left", "right"]
    return pickup


def _expire_lock(gw: GatewayClient, prescription_id: str) -> None:
    with gw.state.db.transaction() as conn:
        conn.execute("UPDATE face_locks SET until = ? WHERE subject = ?",
                     (0.0, prescription_id))


def _in_flight(gw: GatewayClient) -> int:
    row = gw.state.db.query_one("SELECT COUNT(*) AS n FROM face_attempts")
    assert row is not None
    return int(row["n"])


async def test_twelve_concurrent_wrong_answers_get_exactly_the_limit_of_matches(
        gw: GatewayClient, mip: MipClients, other_counter: dict[str, str]) -> None:
    limit = gw.state.settings.pickup_max_failures
    assert limit < 12
    _, rx = await ready_prescription(gw, mip, refills=2)
    pickups = [await start(gw, rx["credential_id"]) for _ in range(12)]
    faces = face_service(gw.state)
    evaluated: list[bool] = []
    real_matches = faces.matches

    def counting_matches(*args: Any) -> bool:
        evaluated.append(True)
        return real_matches(*args)

    faces.matches = counting_matches  # type: ignore[method-assign]
    try:
        replies = await asyncio.gather(*[answer(gw, p, "astronaut") for p in pickups])
    finally:
        del faces.matches
    refused = [r for r in replies if r.status_code == 200]
    assert all(r.json() == {"result": "refused", "reason": "face_mismatch"} for r in refused)
    assert len(refused) == len(evaluated) == limit
    for r in replies:
        if r.status_code != 200:
            assert_error(r, 423, "locked")
            assert r.headers["retry-after"] == str(r.json()["error"]["details"]["retry_after_s"])
    assert _locked_until(gw, rx["credential_id"]) is not None
    assert _in_flight(gw) == 0  # every reservation settled
    # The lock holds at this counter only: another pharmacist serves the real patient.
    pickup = await _start_at(gw, other_counter, rx)
    r = await gw.http.post(f"{URL}/{pickup['pickup_id']}/frames", headers=other_counter,
                           json=frames_body(gw, pickup["challenge"], "grace_hopper"))
    assert r.json()["result"] == "verified", r.text
    assert_error(await gw.http.post(URL, json={"prescription_id": rx["credential_id"]},
                                    headers=gw.staff(PHARMACY, "pharmacist")), 423, "locked")


async def test_each_further_lock_at_a_counter_lasts_twice_as_long(gw: GatewayClient,
                                                                  mip: MipClients) -> None:
    settings = gw.state.settings
    _, rx = await ready_prescription(gw, mip, refills=1)
    service = PickupService(gw.state)
    durations = []
    for _ in range(3):
        for _ in range(settings.pickup_max_failures):
            pickup = await start(gw, rx["credential_id"])
            assert (await answer(gw, pickup, "astronaut")).json()["reason"] == "face_mismatch"
        until = _locked_until(gw, rx["credential_id"])
        assert until is not None
        durations.append(until - time.time())
        _expire_lock(gw, rx["credential_id"])  # as if the lock had run out
    base = settings.pickup_lockout_s
    for n, duration in enumerate(durations):
        expected = min(settings.pickup_lockout_max_s, base * 2 ** n)
        assert expected - 60 < duration <= expected, (n, duration)
    assert service.lockouts.locks(rx["credential_id"], "PharmacyMSP/pharmacist") == 3
    # The real patient at this counter after the lock ends: verified, and the backoff is
    # forgotten.
    pickup = await start(gw, rx["credential_id"])
    assert (await answer(gw, pickup, "grace_hopper")).json()["result"] == "verified"
    assert service.lockouts.locks(rx["credential_id"], "PharmacyMSP/pharmacist") == 0
    assert _failures(gw, rx["credential_id"]) == 0


async def _refusal(gw: GatewayClient, rx: dict[str, Any], frames: list[str]) -> Any:
    pickup = await start(gw, rx["credential_id"])
    body = frames_body(gw, pickup["challenge"], "grace_hopper")
    body["frames"] = [{"image": image} for image in frames]
    r = await gw.http.post(f"{URL}/{pickup['pickup_id']}/frames", json=body,
                           headers=gw.staff(PHARMACY, "pharmacist"))
    assert r.status_code == 200, r.text
    return r.json()


async def test_bad_captures_have_their_own_codes_and_do_not_lock(gw: GatewayClient,
                                                                 mip: MipClients) -> None:
    limit = gw.state.settings.pickup_max_failures
    _, rx = await ready_prescription(gw, mip, refills=1)
    engine = gw.state.face_engine()
    frontal = posed_frame(_model("grace_hopper", engine), "center")
    picture = cv2.imdecode(np.frombuffer(frontal, np.uint8), cv2.IMREAD_COLOR)
    good = frames_body(gw, {"challenge_id": "", "poses": ["left", "right"]},
                       "grace_hopper")["frames"]
    good_images = [f["image"] for f in good]
    blank = _jpeg(np.full_like(picture, 128))
    two_faces = _jpeg(np.hstack([picture, picture]))
    corrupt = base64.b64encode(b"\xff\xd8\xff\xe0 not really a jpeg").decode()
    cases = {"no_face": [blank, *good_images[1:]],
             "multiple_faces": [two_faces, *good_images[1:]],
             "bad_image": [corrupt, *good_images[1:]]}
    for _ in range(limit):  # more than the lockout allows, were they counted
        for code, frames in cases.items():
            assert await _refusal(gw, rx, frames) == {"result": "refused", "reason": code}
    assert _failures(gw, rx["credential_id"]) == 0
    assert _locked_until(gw, rx["credential_id"]) is None
    # The real patient, once the camera works, is verified.
    pickup = await start(gw, rx["credential_id"])
    assert (await answer(gw, pickup, "grace_hopper")).json()["result"] == "verified"
    assert _in_flight(gw) == 0


async def test_late_answers_are_challenge_expired_and_do_not_lock(gw: GatewayClient,
                                                                  mip: MipClients) -> None:
    limit = gw.state.settings.pickup_max_failures
    _, rx = await ready_prescription(gw, mip)
    for i in range(limit + 1):
        pickup = await start(gw, rx["credential_id"])
        now = gateway_time()
        # Past the deadline but within the answer grace (the liveness check's timeout), or
        # past the grace too (refused before any face work): both are a late answer.
        deadline = now - 2 if i % 2 else now - ANSWER_GRACE_S - 5
        with gw.state.db.transaction() as conn:
            conn.execute("UPDATE face_challenges SET issued_at = ?, deadline = ? "
                         "WHERE challenge_id = ?",
                         (deadline - 18, deadline, pickup["challenge"]["challenge_id"]))
        assert (await answer(gw, pickup, "grace_hopper")).json() == {
            "result": "refused", "reason": "challenge_expired"}
    assert _failures(gw, rx["credential_id"]) == 0
    pickup = await start(gw, rx["credential_id"])
    assert (await answer(gw, pickup, "grace_hopper")).json()["result"] == "verified"


async def test_a_failed_liveness_still_counts(gw: GatewayClient, mip: MipClients) -> None:
    """A face that does not perform the challenge (three frontal frames: no turn) is
    evidence against the person at the counter: counted."""
    _, rx = await ready_prescription(gw, mip)
    good = frames_body(gw, {"challenge_id": "", "poses": ["left", "right"]},
                       "grace_hopper")["frames"]
    still = [good[0]["image"]] * 3
    assert await _refusal(gw, rx, still) == {"result": "refused", "reason": "liveness_failed"}
    assert _failures(gw, rx["credential_id"]) == 1
