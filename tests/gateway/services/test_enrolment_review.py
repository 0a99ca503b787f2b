"""Duplicate screening sends candidates to review (/api/v1/reviews) instead of refusing, and
a provisional passport (Config screening_required) starts at level 1 with this org's vote."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from enrolment_kit import (
    API,
    CURRENT,
    PASSWORDS,
    answer,
    enrol,
    frames_of,
    in_session,
    open_session,
    serving,
)
from gateway_testkit import GatewayClient, assert_error
from mip_testkit import MipClients, MipNetwork, set_screening_required

from face_engine.engine import FaceEngine
from gateway.services.faces import face_service


@pytest.fixture
async def rw(gw_network: MipNetwork, tmp_path: Path,
             face_engine: FaceEngine) -> AsyncIterator[GatewayClient]:
    """A gateway with a dedup index of its own: these tests enrol faces twice."""
    async with serving(tmp_path / "gateway", gw_network, face_engine) as client:
        yield client


async def _frames(gw: GatewayClient, who: str, session: dict[str, object]) -> object:
    challenge = session["challenge"]
    assert isinstance(challenge, dict)
    return await gw.http.post(
        f"{CURRENT}/frames",
        headers=in_session(gw.staff("HospitalMSP", "registrar"), session['session_id']),
        json=answer(challenge["challenge_id"], frames_of(who, gw.state.face_engine())))


def _counts(gw: GatewayClient) -> tuple[int, int]:
    row = gw.state.db.query_one("SELECT COUNT(*) AS n FROM holders")
    assert row is not None
    return int(row["n"]), len(face_service(gw.state).dedup())


async def test_a_candidate_goes_to_review_and_same_person_refuses(rw: GatewayClient) -> None:
    registrar = rw.staff("HospitalMSP", "registrar")
    first = await enrol(rw, "stoiber")
    before = _counts(rw)
    session = await open_session(rw)
    sid = session["session_id"]
    r = await _frames(rw, "stoiber", session)
    assert r.status_code == 202, r.text  # type: ignore[attr-defined]
    review_id = r.json()["review_id"]  # type: ignore[attr-defined]
    assert r.json()["status"] == "in_review"  # type: ignore[attr-defined]
    view = (await rw.http.get(CURRENT, headers=in_session(registrar, sid))).json()
    assert view["status"] == "in_review" and view["face_checked"]
    # Cannot finish, nor recapture, while the review is open.
    await rw.http.put(f"{CURRENT}/password", headers=in_session(registrar, sid),
                      json={"password": PASSWORDS["stoiber"]})
    assert_error(await rw.http.post(f"{CURRENT}/finish", headers=in_session(registrar, sid)),
                 409, "enrolment_in_review")
    assert_error(await _frames(rw, "stoiber", session), 409,  # type: ignore[arg-type]
                 "enrolment_in_review")
    # The same face at another desk meanwhile: a typed refusal, nothing changes.
    other = await open_session(rw)
    assert_error(await _frames(rw, "stoiber", other), 409,  # type: ignore[arg-type]
                 "face_in_review")
    # Who sees it: registrars of the enrolling org; another org's get neither list nor id.
    listed = (await rw.http.get(f"{API}/reviews?status=open", headers=registrar)).json()
    mine = [x for x in listed if x["review_id"] == review_id]
    assert len(mine) == 1 and mine[0]["candidates"] == [first["passport_id"]]
    assert set(mine[0]) >= {"candidates", "status"} and "score" not in json.dumps(mine[0])
    school = rw.staff("SchoolMSP", "registrar")
    assert review_id not in {x["review_id"] for x in (
        await rw.http.get(f"{API}/reviews", headers=school)).json()}
    decision = {"decision": "same_person", "reason": "the same person (desk check)",
                "candidates": [first["passport_id"]]}
    assert_error(await rw.http.post(f"{API}/reviews/{review_id}/decision", headers=school,
                                    json=decision), 404, "review_not_found")
    assert_error(await rw.http.get(f"{API}/reviews",
                                   headers=rw.staff("HospitalMSP", "doctor")),
                 403, "wrong_role")
    assert_error(await rw.http.post(f"{API}/reviews/{review_id}/decision", headers=registrar,
                                    json={"decision": "maybe", "reason": "x"}),
                 422, "invalid_request")
    assert_error(await rw.http.post(f"{API}/reviews/{'0' * 32}/decision", headers=registrar,
                                    json=decision), 404, "review_not_found")
    # A decision names the candidates it was made about (an empty list is malformed).
    assert_error(await rw.http.post(f"{API}/reviews/{review_id}/decision", headers=registrar,
                                    json={**decision, "candidates": []}),
                 422, "invalid_request")
    # The background screening adds a candidate after the registrar listed the review (as
    # EnrolmentService._screening_candidates merges one): the old list's decision is refused.
    grown = json.dumps(sorted([first["passport_id"], "f" * 64]))
    with rw.state.db.transaction() as conn:
        conn.execute("UPDATE enrolment_reviews SET candidates = ? WHERE review_id = ?",
                     (grown, review_id))
    assert_error(await rw.http.post(f"{API}/reviews/{review_id}/decision", headers=registrar,
                                    json=decision), 409, "review_changed")
    assert rw.state.db.query_one("SELECT status FROM enrolment_reviews WHERE review_id = ?",
                                 (review_id,))["status"] == "open"
    with rw.state.db.transaction() as conn:
        conn.execute("UPDATE enrolment_reviews SET candidates = ? WHERE review_id = ?",
                     (json.dumps([first["passport_id"]]), review_id))
    assert (await rw.http.get(CURRENT, headers=in_session(registrar, sid))).json()[
        "status"] == "in_review"
    # Same person: refused for good.
    r = await rw.http.post(f"{API}/reviews/{review_id}/decision", headers=registrar,
                           json=decision)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "refused" and r.json()["decided_by"]
    assert_error(await rw.http.post(f"{API}/reviews/{review_id}/decision", headers=registrar,
                                    json=decision), 409, "review_decided")
    assert_error(await rw.http.post(f"{CURRENT}/finish", headers=in_session(registrar, sid)),
                 409, "duplicate_face")
    assert _counts(rw) == before


async def test_different_person_lets_the_enrolment_finish_past_those_candidates(
        rw: GatewayClient) -> None:
    registrar = rw.staff("HospitalMSP", "registrar")
    first = await enrol(rw, "grace_hopper")
    session = await open_session(rw)
    sid = session["session_id"]
    r = await _frames(rw, "grace_hopper", session)
    assert r.status_code == 202, r.text  # type: ignore[attr-defined]
    review_id = r.json()["review_id"]  # type: ignore[attr-defined]
    r = await rw.http.post(f"{API}/reviews/{review_id}/decision", headers=registrar,
                           json={"decision": "different_person",
                                 "reason": "twin, documents checked",
                                 "candidates": [first["passport_id"]]})
    assert r.json()["status"] == "cleared"
    assert (await rw.http.get(CURRENT, headers=in_session(registrar, sid))).json()[
        "status"] == "open"
    await rw.http.put(f"{CURRENT}/password", headers=in_session(registrar, sid),
                      json={"password": PASSWORDS["grace_hopper"]})
    r = await rw.http.post(f"{CURRENT}/finish", headers=in_session(registrar, sid))
    assert r.status_code == 201, r.text
    assert r.json()["passport_id"] != first["passport_id"]
    assert len(face_service(rw.state).dedup()) == 2


async def test_a_provisional_passport_starts_at_level_1_with_this_orgs_vote(
        rw: GatewayClient, gw_network: MipNetwork) -> None:
    mip = MipClients(gw_network)
    try:
        await set_screening_required(mip, 1)
        try:
            out = await enrol(rw, "astronaut")
        finally:
            await set_screening_required(mip, 0)
        assert out["kyc_level"] == 1
        reader = await mip.client("SchoolMSP", None)
        record = json.loads(await reader.evaluate("Passport:Get", [out["passport_id"]]))
        assert record["kyc_level"] == 1
        screening = record["screening"]
        assert screening["status"] == "pending" and screening["level_on_clear"] == 2
        assert [d["org"] for d in screening["decisions"]] == ["HospitalMSP"]
        # a second org's registrar completes the majority through its gateway's API
        url = f"{API}/passports/{out['passport_id']}/screening"
        vote = {"decision": "clear", "reason": "no candidate at SchoolMSP"}
        assert_error(await rw.http.post(url, json=vote,
                                        headers=rw.staff("SchoolMSP", "doctor")),
                     403, "wrong_role")
        assert_error(await rw.http.post(url, json={**vote, "decision": "maybe"},
                                        headers=rw.staff("SchoolMSP", "registrar")),
                     422, "invalid_request")
        r = await rw.http.post(url, json=vote, headers=rw.staff("SchoolMSP", "registrar"))
        assert r.status_code == 200, r.text
        assert r.json() == {"passport_id": out["passport_id"], "status": "active",
                            "kyc_level": 2, "screening": "cleared",
                            "decisions": ["HospitalMSP", "SchoolMSP"]}
        # nothing pending any more: a typed refusal
        r = await rw.http.post(url, json=vote, headers=rw.staff("PharmacyMSP", "registrar"))
        assert r.status_code == 409, r.text
    finally:
        await mip.close()
