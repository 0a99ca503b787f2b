"""Streamed pickup face check: PUT .../frames/{index} per captured frame, then
POST .../verdict. Same faces as test_pickup.py (Grace Hopper enrolled, the astronaut is
someone else)."""

from __future__ import annotations

import base64
import os
import threading
from typing import Any

import pytest
from gateway_testkit import GatewayClient, assert_error
from ledger_kit import PHARMACY, mip
from mip_testkit import MipClients
from test_pickup import URL, frames_body, ready_prescription, start

from gateway.services import face_frames
from gateway.services.faces import face_service
from gateway.services.pickup import PickupService
from gateway.services.state import BACKGROUND_NICE

__all__ = ["mip"]


def stream_bodies(gw: GatewayClient, pickup: dict[str, Any], who: str
                  ) -> list[dict[str, Any]]:
    body = frames_body(gw, pickup["challenge"], who)
    return [{**frame, "challenge_id": body["challenge_id"]} for frame in body["frames"]]


async def send_frames(gw: GatewayClient, pickup: dict[str, Any], who: str,
                      order: list[int] | None = None) -> list[Any]:
    """PUT the frames one after another, in `order` (default: index order): each one's time
    is its arrival, so the order they arrive in is the order the gateway sees."""
    frames = stream_bodies(gw, pickup, who)
    pharmacist = gw.staff(PHARMACY, "pharmacist")
    indexes = order if order is not None else list(range(len(frames)))
    return [await gw.http.put(f"{URL}/{pickup['pickup_id']}/frames/{i}", json=frames[i],
                              headers=pharmacist) for i in indexes]


async def verdict(gw: GatewayClient, pickup: dict[str, Any], frames: int) -> Any:
    return await gw.http.post(f"{URL}/{pickup['pickup_id']}/verdict",
                              json={"challenge_id": pickup["challenge"]["challenge_id"],
                                    "frames": frames},
                              headers=gw.staff(PHARMACY, "pharmacist"))


async def test_streamed_check_verifies_and_dispenses(gw: GatewayClient,
                                                     mip: MipClients) -> None:
    _, rx = await ready_prescription(gw, mip)
    pickup = await start(gw, rx["credential_id"])
    replies = await send_frames(gw, pickup, "grace_hopper")
    assert all(r.status_code == 202 for r in replies), [r.text for r in replies]
    assert sorted(r.json()["frames_received"] for r in replies)[-1] == 3
    assert "score" not in "".join(r.text for r in replies)
    r = await verdict(gw, pickup, 3)
    assert r.status_code == 200 and r.json() == {"result": "verified", "reason": None}
    assert not face_service(gw.state)._streams  # nothing of the check is kept
    r = await gw.http.post(f"{URL}/{pickup['pickup_id']}/dispense",
                           headers=gw.staff(PHARMACY, "pharmacist"))
    assert r.status_code == 200 and r.json()["fills_used"] == 1
    # The pickup is spent: no more frames, no second verdict.
    assert_error((await send_frames(gw, pickup, "grace_hopper"))[0], 409, "pickup_used")
    assert_error(await verdict(gw, pickup, 3), 409, "pickup_used")


async def test_streamed_check_refusals(gw: GatewayClient, mip: MipClients) -> None:
    _, rx = await ready_prescription(gw, mip, refills=3)
    pharmacist = gw.staff(PHARMACY, "pharmacist")
    # Another face: refused as a mismatch, counted towards the lock.
    pickup = await start(gw, rx["credential_id"])
    await send_frames(gw, pickup, "astronaut")
    assert (await verdict(gw, pickup, 3)).json() == {"result": "refused",
                                                     "reason": "face_mismatch"}
    # A missing frame, or a verdict over more frames than were sent: refused as a bad
    # capture (frames out of protocol say nothing about the person: not counted).
    pickup = await start(gw, rx["credential_id"])
    await send_frames(gw, pickup, "grace_hopper", order=[0, 2])
    assert (await verdict(gw, pickup, 3)).json() == {"result": "refused",
                                                     "reason": "bad_capture"}
    # The same index twice: refused at the verdict.
    pickup = await start(gw, rx["credential_id"])
    await send_frames(gw, pickup, "grace_hopper", order=[0, 0, 1, 2])
    assert (await verdict(gw, pickup, 3)).json()["reason"] == "bad_capture"
    assert PickupService(gw.state).lockouts.failures(rx["credential_id"]) == 1  # the mismatch
    # Not an image: the frame is taken (202), the verdict refuses it.
    pickup = await start(gw, rx["credential_id"])
    frames = stream_bodies(gw, pickup, "grace_hopper")
    bad = {**frames[0], "image": base64.b64encode(b"not an image").decode()}
    r = await gw.http.put(f"{URL}/{pickup['pickup_id']}/frames/0", json=bad,
                          headers=pharmacist)
    assert r.status_code == 202
    assert (await verdict(gw, pickup, 3)).json() == {"result": "refused",
                                                     "reason": "bad_image"}

    # Malformed or misaddressed requests change nothing: the challenge stays unanswered.
    pickup = await start(gw, rx["credential_id"])
    frames = stream_bodies(gw, pickup, "grace_hopper")
    base = f"{URL}/{pickup['pickup_id']}"
    for url, body in ((f"{base}/frames/12", frames[0]), (f"{base}/frames/-1", frames[0]),
                      (f"{base}/frames/0", {**frames[0], "image": "@@@"}),
                      # A client time is not part of the API: refused, never trusted.
                      (f"{base}/frames/0", {**frames[0], "offset_s": 0.5}),
                      (f"{base}/frames/0", {**frames[0], "extra": 1})):
        assert_error(await gw.http.put(url, json=body, headers=pharmacist), 422,
                     "invalid_request")
    assert_error(await gw.http.put(f"{base}/frames/0",
                                   json={**frames[0], "challenge_id": "x" * 32},
                                   headers=pharmacist), 404, "challenge_not_found")
    other = {"Authorization": "Bearer " + gw.state.staff.issue(PHARMACY, "pharmacist3",
                                                               "pharmacist")}
    assert_error(await gw.http.put(f"{base}/frames/0", json=frames[0], headers=other), 403,
                 "not_your_pickup")
    assert_error(await gw.http.put(f"{URL}/nope/frames/0", json=frames[0],
                                   headers=pharmacist), 404, "not_found")
    for body in ({"challenge_id": frames[0]["challenge_id"], "frames": 0},
                 {"challenge_id": frames[0]["challenge_id"], "frames": 13},
                 {"challenge_id": frames[0]["challenge_id"]}):
        assert_error(await gw.http.post(f"{base}/verdict", json=body, headers=pharmacist),
                     422, "invalid_request")
    # A verdict before any frame: nothing to decide, nothing spent.
    assert_error(await verdict(gw, pickup, 3), 404, "challenge_not_found")
    # ...so the untouched pickup still verifies.
    await send_frames(gw, pickup, "grace_hopper")
    assert (await verdict(gw, pickup, 3)).json()["result"] == "verified"


async def test_frames_sent_one_way_cannot_be_finished_the_other(gw: GatewayClient,
                                                                mip: MipClients) -> None:
    _, rx = await ready_prescription(gw, mip)
    # Batch after streaming: the challenge was spent by the first streamed frame.
    pickup = await start(gw, rx["credential_id"])
    await send_frames(gw, pickup, "grace_hopper", order=[0])
    r = await gw.http.post(f"{URL}/{pickup['pickup_id']}/frames",
                           json=frames_body(gw, pickup["challenge"], "grace_hopper"),
                           headers=gw.staff(PHARMACY, "pharmacist"))
    assert_error(r, 409, "challenge_used")
    # Streaming after a batch answer: the pickup is done.
    pickup = await start(gw, rx["credential_id"])
    r = await gw.http.post(f"{URL}/{pickup['pickup_id']}/frames",
                           json=frames_body(gw, pickup["challenge"], "grace_hopper"),
                           headers=gw.staff(PHARMACY, "pharmacist"))
    assert r.json()["result"] == "verified"
    assert_error((await send_frames(gw, pickup, "grace_hopper"))[0], 409, "pickup_used")


async def test_streamed_frames_are_analysed_at_a_lower_priority(gw: GatewayClient) -> None:
    def nice_here() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    base = os.getpriority(os.PRIO_PROCESS, 0)
    background = await gw.state.run_face_background(nice_here)
    assert background == max(base, min(19, BACKGROUND_NICE))
    assert await gw.state.run_face(nice_here) == base  # interactive face work is not lowered
    # ...and its engine runs single-threaded models of its own, with no OpenCV pool thread
    # (which would run part of each detection at normal priority).
    assert gw.state.background_face_engine() is not gw.state.face_engine()
    import cv2

    assert cv2.getNumThreads() == 1


# --- timing: a frame's time is its arrival at the gateway ------------------------------------


async def test_frames_arriving_out_of_order_are_refused(gw: GatewayClient,
                                                        mip: MipClients) -> None:
    """Index order must be arrival order: a client cannot send a turn 'before' the frontal
    frame and label it later (the indexes claim an order; the arrivals decide it)."""
    _, rx = await ready_prescription(gw, mip)
    pickup = await start(gw, rx["credential_id"])
    replies = await send_frames(gw, pickup, "grace_hopper", order=[2, 0, 1])
    assert all(r.status_code == 202 for r in replies)
    assert (await verdict(gw, pickup, 3)).json() == {"result": "refused",
                                                     "reason": "bad_capture"}


async def test_a_frame_that_truly_arrives_late_is_refused(gw: GatewayClient, mip: MipClients,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """The last turn arrives after the challenge's deadline (the gateway's clock moved on by
    20 s): refused, whatever the client could have claimed about when it was taken."""
    _, rx = await ready_prescription(gw, mip)
    pickup = await start(gw, rx["credential_id"])
    frames = stream_bodies(gw, pickup, "grace_hopper")
    pharmacist = gw.staff(PHARMACY, "pharmacist")
    for i in (0, 1):
        r = await gw.http.put(f"{URL}/{pickup['pickup_id']}/frames/{i}", json=frames[i],
                              headers=pharmacist)
        assert r.status_code == 202
    # Deadlines are 14 or 18 s after issue; 20 s on is past it, within the answer grace.
    monkeypatch.setattr(face_frames, "_WALL_MINUS_MONOTONIC",
                        face_frames._WALL_MINUS_MONOTONIC + 20)
    r = await gw.http.put(f"{URL}/{pickup['pickup_id']}/frames/2", json=frames[2],
                          headers=pharmacist)
    assert r.status_code == 202
    assert (await verdict(gw, pickup, 3)).json() == {"result": "refused",
                                                     "reason": "challenge_expired"}


async def test_frames_are_timed_by_arrival(gw: GatewayClient, mip: MipClients,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """What the liveness check is given: each frame's arrival on the gateway's clock."""
    seen: list[float] = []
    options: list[dict[str, Any]] = []
    faces = face_service(gw.state)
    add = faces.add_live_frame

    async def spy(challenge_id: str, purpose: str, subject: str, index: int,
                  frame: Any, **kwargs: Any) -> int:
        seen.append(frame.timestamp)
        options.append(kwargs)
        return await add(challenge_id, purpose, subject, index, frame, **kwargs)

    monkeypatch.setattr(faces, "add_live_frame", spy)
    _, rx = await ready_prescription(gw, mip)
    pickup = await start(gw, rx["credential_id"])
    before = face_frames.gateway_time()
    await send_frames(gw, pickup, "grace_hopper")
    after = face_frames.gateway_time()
    assert len(seen) == 3 and before <= seen[0] <= seen[1] <= seen[2] <= after
    # a pickup screens for no duplicate: no multi-frame template is built
    assert options == [{"template": False}] * 3
    assert (await verdict(gw, pickup, 3)).json()["result"] == "verified"
