"""The consortium-wide screening runs in the background of an enrolment
(gateway/services/enrolment_screening.py, docs/face.md 5.4): the frames request returns
before any other org answered; finish waits (bounded) for the outcome; a worker that dies
mid-screening is resumed, a restart abandons cleanly; an org that does not answer in time
gives a typed, retryable failure with nothing enrolled.

The Hospital's gateway reaches the other two through a gate (`Gate`): a transport that holds
every screening request until the test opens it (the `transports` seam of
services/peer_requests.py).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
from enrolment_kit import (
    CURRENT,
    PASSWORDS,
    REGISTRAR,
    answer,
    frames_of,
    in_session,
    open_session,
)
from gateway_testkit import GatewayClient, assert_error
from mip_testkit import MipNetwork
from org_gateways_kit import org_gateways

from chaincode.protocol.orgs import HOSPITAL, PHARMACY, SCHOOL
from face_engine.engine import FaceEngine
from gateway.services.enrolment import enrolment_service
from gateway.services.enrolment_screening import enrolment_screenings
from gateway.services.faces import face_service
from gateway.services.peer_requests import peer_requests
from gateway.services.screening_consortium import consortium_screening


class Gate(httpx.AsyncBaseTransport):
    """Holds each screening request until `opened` is set, then passes it to the real
    transport (other calls, e.g. the password's OPRF helper, pass at once)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.opened = asyncio.Event()
        self.seen = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/api/v1/screening/"):
            self.seen.set()
            await self.opened.wait()
        return await self.inner.handle_async_request(request)


def gate(hospital: GatewayClient) -> dict[str, Gate]:
    transports = peer_requests(hospital.state).transports
    gates = {org: Gate(transports[org]) for org in (SCHOOL, PHARMACY)}
    transports.update(gates)
    return gates


def open_all(gates: dict[str, Gate]) -> None:
    for g in gates.values():
        g.opened.set()


async def state_of(gw: GatewayClient, sid: str) -> dict[str, Any]:
    r = await gw.http.get(CURRENT, headers=in_session(gw.staff(*REGISTRAR), sid))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def settled(gw: GatewayClient, sid: str, timeout: float = 180.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (state := await state_of(gw, sid))["screening"] == "pending":
        assert time.monotonic() < deadline, "the screening did not settle"
        await asyncio.sleep(0.2)
    return state


async def captured(gw: GatewayClient, who: str) -> tuple[str, float]:
    """A session whose face is captured (frames answered 204); the frames request's time."""
    session = await open_session(gw)
    sid = session["session_id"]
    started = time.perf_counter()
    r = await gw.http.post(f"{CURRENT}/frames", headers=in_session(gw.staff(*REGISTRAR), sid),
                           json=answer(session["challenge"]["challenge_id"],
                                       frames_of(who, gw.state.face_engine())))
    assert r.status_code == 204, r.text
    seconds = time.perf_counter() - started
    r = await gw.http.put(f"{CURRENT}/password", headers=in_session(gw.staff(*REGISTRAR), sid),
                          json={"password": PASSWORDS[who]})
    assert r.status_code == 204, r.text
    return sid, seconds


def holders(gw: GatewayClient) -> int:
    return int(gw.state.db.query("SELECT COUNT(*) AS n FROM holders")[0]["n"])


async def test_the_frames_request_returns_before_the_screening_and_finish_waits_for_it(
        gw_network: MipNetwork, face_engine: FaceEngine, tmp_path: Path) -> None:
    async with org_gateways(gw_network, face_engine, tmp_path) as gws:
        hospital = gws[HOSPITAL]
        gates = gate(hospital)
        sid, _ = await captured(hospital, "astronaut")
        # Answered while no other org has been answered (the gate is closed): the desk did
        # not wait for the screening.
        state = await state_of(hospital, sid)
        assert (state["status"], state["face_checked"], state["screening"]) == \
            ("open", True, "pending"), state
        await asyncio.wait_for(gates[SCHOOL].seen.wait(), 60)
        # Finish waits for the outcome (bounded): here it is released meanwhile.
        finish = asyncio.ensure_future(hospital.http.post(
            f"{CURRENT}/finish", headers=in_session(hospital.staff(*REGISTRAR), sid)))
        await asyncio.sleep(0.5)
        assert not finish.done() and holders(hospital) == 0
        open_all(gates)
        r = await finish
        assert r.status_code == 201, r.text
        assert (await state_of(hospital, sid))["screening"] == "clear"
        assert holders(hospital) == 1


async def test_finish_is_bounded_and_a_stopped_worker_resumes(
        gw_network: MipNetwork, face_engine: FaceEngine, tmp_path: Path) -> None:
    async with org_gateways(gw_network, face_engine, tmp_path) as gws:
        hospital = gws[HOSPITAL]
        gates = gate(hospital)
        jobs = enrolment_screenings(hospital.state)
        jobs.finish_wait_s = 0.5
        sid, _ = await captured(hospital, "grace_hopper")
        await asyncio.wait_for(gates[SCHOOL].seen.wait(), 60)
        assert_error(await hospital.http.post(f"{CURRENT}/finish",
                                              headers=in_session(hospital.staff(*REGISTRAR), sid)),
                     409, "screening_pending")
        # The worker stops mid-screening (its task dies): the row stays pending, attempt 1.
        task = jobs._tasks[sid]
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert sid not in jobs._tasks
        row = hospital.state.db.query_one(
            "SELECT status, attempt FROM enrolment_screenings WHERE session_id = ?", (sid,))
        assert row is not None and (row["status"], row["attempt"]) == ("pending", 1)
        # The next read finds no task behind it and resumes it (a new recorded request).
        open_all(gates)
        state = await settled(hospital, sid)
        assert state["screening"] == "clear", state
        row = hospital.state.db.query_one(
            "SELECT attempt FROM enrolment_screenings WHERE session_id = ?", (sid,))
        assert row is not None and row["attempt"] == 2
        r = await hospital.http.post(f"{CURRENT}/finish",
                                     headers=in_session(hospital.staff(*REGISTRAR), sid))
        assert r.status_code == 201, r.text


async def test_a_restart_mid_screening_abandons_it_cleanly(
        gw_network: MipNetwork, face_engine: FaceEngine, tmp_path: Path) -> None:
    async with org_gateways(gw_network, face_engine, tmp_path) as gws:
        hospital = gws[HOSPITAL]
        gates = gate(hospital)
        sid, _ = await captured(hospital, "astronaut")
        await asyncio.wait_for(gates[SCHOOL].seen.wait(), 60)
        # A restart: the services' memory (the live face, the session's secrets, the
        # worker's tasks) is gone; the database stays.
        state = hospital.state
        await enrolment_screenings(state).aclose()
        for name in ("enrolment", "enrolment_screenings"):
            state._services.pop(name)
        open_all(gates)
        assert (await settled(hospital, sid))["screening"] == "abandoned"
        assert_error(await hospital.http.post(f"{CURRENT}/finish",
                                              headers=in_session(hospital.staff(*REGISTRAR), sid)),
                     409, "enrolment_incomplete")
        assert holders(hospital) == 0
        assert not face_service(state).dedup().references()[0]


async def test_an_org_that_does_not_answer_gives_a_typed_retryable_failure(
        gw_network: MipNetwork, face_engine: FaceEngine, tmp_path: Path) -> None:
    async with org_gateways(gw_network, face_engine, tmp_path) as gws:
        hospital = gws[HOSPITAL]
        gates = gate(hospital)
        consortium_screening(hospital.state).timeout = 1.0
        sid, _ = await captured(hospital, "astronaut")
        state = await settled(hospital, sid, timeout=60)
        assert (state["screening"], state["screening_error"], state["screening_retryable"],
                state["status"]) == ("failed", "screening_unavailable", True, "open"), state
        r = await hospital.http.post(f"{CURRENT}/finish",
                                     headers=in_session(hospital.staff(*REGISTRAR), sid))
        assert_error(r, 503, "screening_failed")
        assert holders(hospital) == 0
        assert not face_service(hospital.state).dedup().references()[0]
        assert enrolment_service(hospital.state)._pending[sid].live is not None
        # The org answers again: a retry (a new recorded request) clears, finish registers.
        consortium_screening(hospital.state).timeout = 60.0
        open_all(gates)
        r = await hospital.http.post(f"{CURRENT}/screening",
                                     headers=in_session(hospital.staff(*REGISTRAR), sid))
        assert r.status_code == 202, r.text
        assert_error(await hospital.http.post(f"{CURRENT}/screening",
                                              headers=in_session(hospital.staff(*REGISTRAR), sid)),
                     409, "screening_not_failed")
        r = await hospital.http.post(f"{CURRENT}/finish",
                                     headers=in_session(hospital.staff(*REGISTRAR), sid))
        assert r.status_code == 201, r.text
        assert holders(hospital) == 1
