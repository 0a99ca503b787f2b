"""Pickup lockout (issue #16): concurrent wrong answers get no more face matches than the
lockout allows; a bad capture or a late answer is refused with its own code and is not
counted towards the lock. Same faces as test_pickup.py (Grace Hopper enrolled, the
astronaut someone else)."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import cv2
import numpy as np
from gateway_testkit import GatewayClient
from ledger_kit import PHARMACY, mip
from mip_testkit import MipClients
from test_pickup import URL, _model, answer, frames_body, ready_prescription, start

from gateway.demo.camera import posed_frame
from gateway.services.face_frames import gateway_time
from gateway.services.faces import ANSWER_GRACE_S, face_service
from gateway.services.pickup import PickupService

__all__ = ["mip"]


def _jpeg(image: np.ndarray) -> str:
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return base64.b64encode(data.tobytes()).decode()


def _failures(gw: GatewayClient, prescription_id: str) -> int:
    row = gw.state.db.query_one("SELECT COUNT(*) AS n FROM pickup_failures "
                                "WHERE prescription_id = ?", (prescription_id,))
    assert row is not None
    return int(row["n"])


def _in_flight(gw: GatewayClient) -> int:
    row = gw.state.db.query_one("SELECT COUNT(*) AS n FROM face_attempts")
    assert row is not None
    return int(row["n"])


async def test_concurrent_wrong_answers_get_at_most_the_limit_of_matches(
        gw: GatewayClient, mip: MipClients) -> None:
    limit = gw.state.settings.pickup_max_failures
    _, rx = await ready_prescription(gw, mip, refills=2)
    pickups = [await start(gw, rx["credential_id"]) for _ in range(limit + 3)]
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
    assert len(evaluated) <= limit
    refused = [r for r in replies if r.status_code == 200]
    assert all(r.json() == {"result": "refused", "reason": "face_mismatch"} for r in refused)
    assert len(refused) == len(evaluated) == limit
    assert all(r.status_code == 423 and r.json()["error"]["code"] == "locked"
               for r in replies if r.status_code != 200)
    assert PickupService(gw.state).locked_until(rx["credential_id"]) is not None
    assert _in_flight(gw) == 0  # every reservation settled


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
             "invalid_image": [corrupt, *good_images[1:]]}
    for _ in range(limit):  # more than the lockout allows, were they counted
        for code, frames in cases.items():
            assert await _refusal(gw, rx, frames) == {"result": "refused", "reason": code}
    assert _failures(gw, rx["credential_id"]) == 0
    assert PickupService(gw.state).locked_until(rx["credential_id"]) is None
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
