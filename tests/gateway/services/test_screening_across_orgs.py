"""The consortium-wide private screening wired into enrolment (docs/face.md, 5b): one
org-scoped gateway per org over one devnet, each reaching the others' screening steps in
process (httpx's ASGI transport in place of the network; requests and messages signed with
each org's gateway identity and checked as over https).

A face enrolled at the Hospital; the same person at the School's desk is caught by the
consortium screening (the Hospital's gallery, scored under the Pharmacy's key) and sent to
review; a different person is not; the School's registrar resolves the review. Every
screening is a request recorded on the ledger, and runs in the background of the frames
request (enrolment_screening.py). With the Pharmacy down, the School's screening fails
(typed, retryable) with nothing enrolled, and a retry completes it once the Pharmacy answers
again. No gateway's files or logs hold another org's template (canaries:
the live templates themselves, in every encoding a file could hold them).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from enrolment_kit import API, CURRENT, answer, enrol, frames_of, in_session, open_session
from gateway_testkit import GatewayClient, assert_error
from mip_testkit import MipNetwork
from org_gateways_kit import org_gateways, peer_signer
from test_org_isolation import files_under, found_in

from chaincode.protocol.orgs import HOSPITAL, PHARMACY, SCHOOL
from face_engine.engine import FaceEngine
from gateway.services.enrolment import enrolment_service
from gateway.services.faces import face_service
from gateway.services.peer_requests import peer_requests
from gateway.services.screening_consortium import consortium_screening

SCHOOL_DESK = (SCHOOL, "registrar")


def template_forms(template: np.ndarray) -> list[bytes]:
    """A template as a file could hold it: float32 and float64, whole and its first half."""
    out = []
    for dtype in (np.float32, np.float64):
        raw = np.asarray(template, dtype=dtype).tobytes()
        out += [raw, raw[: len(raw) // 2]]
    return out


def in_logs(text: str, template: np.ndarray) -> bool:
    """Whether the log text shows the template's first components as numbers."""
    return all(f"{v:.5f}" in text for v in np.asarray(template, dtype=np.float64)[:4])


async def frames(gw: GatewayClient, sid: str, challenge_id: str, who: str) -> httpx.Response:
    return await gw.http.post(f"{CURRENT}/frames", headers=in_session(gw.staff(*SCHOOL_DESK), sid),
                              json=answer(challenge_id, frames_of(who, gw.state.face_engine())))


async def settled(gw: GatewayClient, sid: str, timeout: float = 180.0) -> dict[str, Any]:
    """The enrolment's state once its background screening is no longer pending."""
    deadline = time.monotonic() + timeout
    while True:
        r = await gw.http.get(CURRENT, headers=in_session(gw.staff(*SCHOOL_DESK), sid))
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if body["screening"] != "pending":
            return body
        assert time.monotonic() < deadline, "the screening did not settle"
        await asyncio.sleep(0.2)


async def new_challenge(gw: GatewayClient, sid: str) -> str:
    r = await gw.http.post(f"{CURRENT}/challenge", headers=in_session(gw.staff(*SCHOOL_DESK), sid))
    assert r.status_code == 201, r.text
    challenge_id = str(r.json()["challenge_id"])
    with gw.state.db.transaction() as conn:  # the poses the still frames show
        conn.execute("UPDATE face_challenges SET poses = '[\"left\", \"right\"]' "
                     "WHERE challenge_id = ?", (challenge_id,))
    return challenge_id


async def test_the_same_person_at_a_second_org_is_caught_and_reviewed(
        gw_network: MipNetwork, face_engine: FaceEngine, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with org_gateways(gw_network, face_engine, tmp_path) as gws:
        hospital, school, pharmacy = gws[HOSPITAL], gws[SCHOOL], gws[PHARMACY]
        for gw in gws.values():
            assert consortium_screening(gw.state).enabled()
        # The Hospital's enrolment is itself screened against the School's and the
        # Pharmacy's (empty) galleries.
        astro = (await enrol(hospital, "astronaut"))["passport_id"]
        hospital_ids, hospital_refs = face_service(hospital.state).dedup().references()
        assert hospital_ids == [astro]
        assert not face_service(school.state).dedup().references()[0]

        # The same person at the School's desk: the Hospital's gallery has a candidate.
        session = await open_session(school, SCHOOL_DESK)
        sid = session["session_id"]
        r = await frames(school, sid, session["challenge"]["challenge_id"], "astronaut")
        # The School's own index has no candidate: the frames request ends there, the
        # consortium screening runs in the background and sends the session to review.
        assert r.status_code == 204, r.text
        state = await settled(school, sid)
        assert (state["screening"], state["status"]) == ("in_review", "in_review"), state
        review_id = state["review_id"]
        live = enrolment_service(school.state)._pending[sid].live
        assert live is not None
        school_template = np.array(live.screening_template)
        r = await school.http.get(f"{API}/reviews?status=open",
                                  headers=school.staff(*SCHOOL_DESK))
        assert [(v["review_id"], v["candidates"]) for v in r.json()] == [(review_id, [astro])]
        # The review names the org whose gallery holds the candidate (its /reviews/named).
        assert r.json()[0]["candidate_orgs"] == {astro: HOSPITAL}
        assert_error(await school.http.post(f"{CURRENT}/finish",
                                            headers=in_session(school.staff(*SCHOOL_DESK), sid)),
                     409, "enrolment_in_review")
        # The Hospital learns that a School review concerns its passport, nothing else.
        named = consortium_screening(hospital.state).candidates_named()
        assert [(n["querier"], n["passport_id"]) for n in named] == [(SCHOOL, astro)]
        assert not consortium_screening(pharmacy.state).candidates_named()
        r = await hospital.http.get(f"{API}/reviews/named",
                                    headers=hospital.staff(HOSPITAL, "registrar"))
        assert [(n["querier"], n["passport_id"]) for n in r.json()] == [(SCHOOL, astro)]
        r = await school.http.get(f"{API}/reviews/named", headers=school.staff(*SCHOOL_DESK))
        assert r.status_code == 200 and r.json() == []
        # Each screening was a request on the ledger, read by every org's own peer.
        request = json.loads(await pharmacy.state.ledger.carrier(PHARMACY).evaluate(
            "Screening:Get", [named[0]["request_id"]]))
        assert request["org"] == SCHOOL
        served = {(r["party"], r["gallery"]) for r in pharmacy.state.db.query(
            "SELECT party, gallery FROM screening_served WHERE request_id = ?",
            (request["request_id"],))}
        # once as V for the Hospital's gallery, once as G for its own (empty) gallery
        assert served == {(PHARMACY, HOSPITAL), (PHARMACY, PHARMACY)}

        # A different person at the School's desk is not caught and enrols.
        grace = await enrol(school, "grace_hopper", staff=SCHOOL_DESK)
        assert grace["passport_id"] != astro

        # The School's registrar resolves the review: the same person.
        r = await school.http.post(f"{API}/reviews/{review_id}/decision",
                                   headers=school.staff(*SCHOOL_DESK),
                                   json={"decision": "same_person",
                                         "reason": "the Hospital's holder, seen in person",
                                         "candidates": [astro]})
        assert r.status_code == 200 and r.json()["status"] == "refused", r.text
        assert_error(await school.http.post(f"{CURRENT}/finish",
                                            headers=in_session(school.staff(*SCHOOL_DESK), sid)),
                     409, "duplicate_face")
        assert [pid for (pid,) in school.state.db.query(
            "SELECT passport_id FROM holders")] == [grace["passport_id"]]

        # The Pharmacy stops answering: the School's next enrolment stays pending.
        def down(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("the Pharmacy's gateway is down", request=request)

        saved = {org: peer_requests(gws[org].state).transports[PHARMACY]
                 for org in (HOSPITAL, SCHOOL)}
        for org in saved:
            peer_requests(gws[org].state).transports[PHARMACY] = httpx.MockTransport(down)
        session = await open_session(school, SCHOOL_DESK)
        sid = session["session_id"]
        r = await frames(school, sid, session["challenge"]["challenge_id"], "astronaut")
        assert r.status_code == 204, r.text
        state = await settled(school, sid)
        assert (state["screening"], state["screening_error"], state["screening_retryable"]) \
            == ("failed", "screening_unavailable", True), state
        assert state["status"] == "open"
        assert_error(await school.http.post(f"{CURRENT}/finish",
                                            headers=in_session(school.staff(*SCHOOL_DESK), sid)),
                     503, "screening_failed")
        assert school.state.db.query("SELECT COUNT(*) AS n FROM holders")[0]["n"] == 1
        # Back up: a retry completes the screening (and finds the Hospital's holder).
        for org, transport in saved.items():
            peer_requests(gws[org].state).transports[PHARMACY] = transport
        r = await school.http.post(f"{CURRENT}/screening",
                                   headers=in_session(school.staff(*SCHOOL_DESK), sid))
        assert r.status_code == 202 and r.json()["screening"] == "pending", r.text
        assert (await settled(school, sid))["screening"] == "in_review"

        # Canaries: no gateway's files or logs hold another org's template.
        time.sleep(0.1)
        logs = caplog.text
        for org, template in ((SCHOOL, school_template), (HOSPITAL, hospital_refs[0])):
            assert not in_logs(logs, template)
            for other in set(gws) - {org}:
                files = files_under(tmp_path / other)
                for form in template_forms(template):
                    assert not found_in(files, form), (org, other)


async def test_the_screening_steps_take_only_signed_recorded_requests_of_gateways(
        gw_network: MipNetwork, face_engine: FaceEngine, tmp_path: Path) -> None:
    """At the steps: unsigned requests, another identity of the org, a message claiming
    another org, and an unrecorded request are all refused, before any scoring."""

    from gateway.services import private_screening as svc
    from gateway.services.ledger import SERVICE_USER
    from gateway.services.screening_consortium import IdentityKeys

    async with org_gateways(gw_network, face_engine, tmp_path) as gws:
        hospital = gws[HOSPITAL]
        connection = gw_network.connection
        path = "/api/v1/screening/score"

        def keys_of(org: str, user: str) -> IdentityKeys:
            requests = peer_requests(hospital.state)
            return IdentityKeys(org, peer_signer(connection, org, user), requests.ca_roots(),
                                requests.crl_of)

        async def post(body: bytes, org: str, user: str) -> httpx.Response:
            headers = peer_signer(connection, org, user).headers("POST", path, body, HOSPITAL)
            return await hospital.http.post(path, content=body, headers={
                "content-type": "application/octet-stream", **headers})

        school_gateway = keys_of(SCHOOL, SERVICE_USER)
        body = svc.seal(school_gateway, HOSPITAL, svc.KIND_QUERY, "0" * 32, b"\x00" * 64)
        r = await hospital.http.post(path, content=body,
                                     headers={"content-type": "application/octet-stream"})
        assert_error(r, 401, "peer_unauthenticated")
        # The School's registrar is not the School's gateway.
        assert_error(await post(body, SCHOOL, "registrar"), 403, "peer_not_gateway")
        # The School's gateway carrying a message that claims to be the Pharmacy's.
        claimed = svc.seal(keys_of(PHARMACY, SERVICE_USER), HOSPITAL, svc.KIND_QUERY,
                           "0" * 32, b"\x00" * 64)
        assert_error(await post(claimed, SCHOOL, SERVICE_USER), 401, "peer_unauthenticated")
        # A message signed by the School's registrar inside the gateway's request.
        staff_signed = svc.seal(keys_of(SCHOOL, "registrar"), HOSPITAL, svc.KIND_QUERY,
                                "0" * 32, b"\x00" * 64)
        assert_error(await post(staff_signed, SCHOOL, SERVICE_USER), 401,
                     "peer_unauthenticated")
        # Well signed, but no such request on the ledger.
        assert_error(await post(body, SCHOOL, SERVICE_USER), 403,
                     "screening_request_unrecorded")
        assert not hospital.state.db.query("SELECT * FROM screening_served")
