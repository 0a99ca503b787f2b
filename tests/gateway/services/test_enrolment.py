"""Enrolment at a registration desk: the whole flow, and every refusal changing nothing."""
# ruff: noqa: F811 (fixtures imported from enrolment_kit)

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from enrolment_kit import (
    _ENROLLED,
    API,
    CURRENT,
    GUARDIANS,
    PASSWORDS,
    SHARED,
    Enrolled,
    answer,
    collage,
    ensure_enrolled,
    frames_of,
    hw,  # noqa: F401 (fixture)
    hw_data_dir,  # noqa: F401 (fixture)
    in_session,
    open_session,
    serving,
    unlock,
)
from gateway_testkit import GatewayClient, assert_error
from mip_testkit import MipNetwork

from face_engine.engine import FaceEngine
from gateway.fabric import DeadlineExceeded
from gateway.services.enrolment import EnrolmentService, enrolment_service
from gateway.services.face_frames import gateway_time
from gateway.services.holders import holder_service


async def _ledger_passport(gw: GatewayClient, pid: str) -> dict[str, object]:
    raw = await gw.state.ledger.contract("HospitalMSP", "registrar").evaluate(
        "Passport:Get", [pid])
    return dict(json.loads(raw))


async def test_enrolment_registers_a_level_2_passport(hw: GatewayClient) -> None:
    bush = await ensure_enrolled(hw, "bush")
    assert bush.finish["kyc_level"] == 2 and bush.finish["guardian_shares"] == 0
    record = await _ledger_passport(hw, bush.passport_id)
    assert record["enrolling_org"] == "HospitalMSP" and record["kyc_level"] == 2
    assert record["status"] == "active"
    assert holder_service(hw.state).record(bush.passport_id) is not None
    view = await hw.http.get(CURRENT, headers=in_session(hw.staff("HospitalMSP", "registrar"),
                                                         bush.finish["session_id"]))
    assert view.json()["status"] == "finished"
    assert view.json()["passport_id"] == bush.passport_id


async def _counts(gw: GatewayClient) -> tuple[int, int, int]:
    db = gw.state.db
    holders = db.query_one("SELECT COUNT(*) AS n FROM holders")
    sessions = db.query_one(
        "SELECT COUNT(*) AS n FROM enrolment_sessions WHERE status = 'finished'")
    from gateway.services.faces import face_service

    assert holders is not None and sessions is not None
    return int(holders["n"]), int(sessions["n"]), len(face_service(gw.state).dedup())


async def test_refusals_change_nothing(hw: GatewayClient) -> None:
    registrar = hw.staff("HospitalMSP", "registrar")
    await ensure_enrolled(hw, "bush")
    before = await _counts(hw)
    # Wrong role; no token.
    assert_error(await hw.http.post(f"{API}/enrolments", headers=hw.staff("HospitalMSP",
                                                                            "doctor")),
                 403, "wrong_role")
    assert_error(await hw.http.post(f"{API}/enrolments"), 401, "unauthenticated")
    session = await open_session(hw)
    sid, cid = session["session_id"], session["challenge"]["challenge_id"]
    # The session is named in its header only: another registrar does not see it; unknown
    # and malformed ids are the same 404; no header is 401; the id in a path is no route.
    other = hw.staff("SchoolMSP", "registrar")
    for headers in (in_session(other, sid), in_session(registrar, "0" * 64),
                    in_session(registrar, "nope"), in_session(registrar, sid.upper())):
        assert_error(await hw.http.get(CURRENT, headers=headers), 404, "enrolment_not_found")
    assert_error(await hw.http.get(CURRENT, headers=registrar), 401,
                 "enrolment_session_required")
    assert_error(await hw.http.get(CURRENT, headers=in_session({}, sid)), 401,
                 "unauthenticated")
    assert (await hw.http.get(f"{API}/enrolments/{sid}", headers=registrar)).status_code in (
        404, 405)
    # Short password; finish before face and password.
    assert_error(await hw.http.put(f"{CURRENT}/password", headers=in_session(registrar, sid),
                                   json={"password": "short"}), 422, "weak_password")
    assert_error(await hw.http.post(f"{CURRENT}/finish", headers=in_session(registrar, sid)),
                 409, "enrolment_incomplete")
    # Unknown guardian; bad threshold.
    assert_error(await hw.http.put(f"{CURRENT}/guardians", headers=in_session(registrar, sid),
                                   json={"guardians": ["ef" * 32], "threshold": 1}),
                 422, "unknown_guardian")
    assert_error(await hw.http.put(f"{CURRENT}/guardians", headers=in_session(registrar, sid),
                                   json={"guardians": [], "threshold": 1}),
                 422, "invalid_guardians")
    # The same person again: sent to review (tests/gateway/services/test_enrolment_review.py),
    # nothing enrolled; the desk learns only the review's id.
    r = await hw.http.post(f"{CURRENT}/frames", headers=in_session(registrar, sid),
                           json=answer(cid, frames_of("bush")))
    assert r.status_code == 202, r.text
    assert set(r.json()) == {"status", "review_id"}
    # Replaying the answer is refused: the session waits for its review.
    assert_error(await hw.http.post(f"{CURRENT}/frames", headers=in_session(registrar, sid),
                                    json=answer(cid, frames_of("bush"))), 409,
                 "enrolment_in_review")
    await _refuse_review(hw, r.json()["review_id"])
    assert await _counts(hw) == before


async def _refuse_review(gw: GatewayClient, review_id: str) -> None:
    registrar = gw.staff("HospitalMSP", "registrar")
    listed = (await gw.http.get(f"{API}/reviews", headers=registrar)).json()
    candidates = next(x["candidates"] for x in listed if x["review_id"] == review_id)
    r = await gw.http.post(f"{API}/reviews/{review_id}/decision", headers=registrar,
                           json={"decision": "same_person", "reason": "the same person",
                                 "candidates": candidates})
    assert r.status_code == 200, r.text


async def test_answer_timed_by_arrival_not_by_client_claims(hw: GatewayClient) -> None:
    """A one-request answer carries one time, its arrival: claimed capture times change
    nothing, and an answer that truly arrives after the deadline is refused."""
    registrar = hw.staff("HospitalMSP", "registrar")
    await ensure_enrolled(hw, "bush")
    session = await open_session(hw)
    sid, cid = session["session_id"], session["challenge"]["challenge_id"]
    # Claims of frames taken long after the deadline (the former `offset_s`) are ignored:
    # the liveness check passes and the flow goes on to duplicate screening.
    claimed = answer(cid, frames_of("bush"))
    for i, frame in enumerate(claimed["frames"]):
        frame["offset_s"] = 100.0 + i
    r = await hw.http.post(f"{CURRENT}/frames", headers=in_session(registrar, sid), json=claimed)
    assert r.status_code == 202, r.text  # screened: bush is a candidate of himself
    await _refuse_review(hw, r.json()["review_id"])
    # A challenge issued 20 s ago with its deadline 2 s past: an answer arriving now is late,
    # whatever the frames could say about when they were taken.
    sid = (await open_session(hw))["session_id"]
    r = await hw.http.post(f"{CURRENT}/challenge", headers=in_session(registrar, sid))
    cid = r.json()["challenge_id"]
    now = gateway_time()
    with hw.state.db.transaction() as conn:
        conn.execute("UPDATE face_challenges SET poses = '[\"left\", \"right\"]', "
                     "issued_at = ?, deadline = ? WHERE challenge_id = ?",
                     (now - 20, now - 2, cid))
    body = assert_error(await hw.http.post(f"{CURRENT}/frames",
                                           headers=in_session(registrar, sid),
                                           json=answer(cid, frames_of("bush"))),
                        422, "liveness_failed")
    assert "deadline" in body["message"]


async def test_bad_images_are_refused(hw: GatewayClient) -> None:
    registrar = hw.staff("HospitalMSP", "registrar")
    nonface = (SHARED / "nonface" / "brick.png").read_bytes()
    frames = frames_of("stoiber")
    cases = [
        [nonface, frames[1], frames[2]],                       # no face
        [collage(frames[0], frames_of("bush")[0]), frames[1], frames[2]],  # two faces
        [b"\xff\xd8 not a jpeg", frames[1], frames[2]],        # corrupt
    ]
    before = await _counts(hw)
    for images in cases:
        session = await open_session(hw)
        r = await hw.http.post(f"{CURRENT}/frames",
                               headers=in_session(registrar, session["session_id"]),
                               json=answer(session["challenge"]["challenge_id"], images))
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] in {"liveness_failed", "no_face", "multiple_faces",
                                             "invalid_image"}
    # Malformed: not base64, too many frames.
    session = await open_session(hw)
    bad = answer(session["challenge"]["challenge_id"], frames)
    bad["frames"][0]["image"] = "***"
    assert_error(await hw.http.post(f"{CURRENT}/frames", json=bad,
                                    headers=in_session(registrar, session["session_id"])),
                 422, "invalid_request")
    many = answer(session["challenge"]["challenge_id"], frames * 5)
    assert_error(await hw.http.post(f"{CURRENT}/frames", json=many,
                                    headers=in_session(registrar, session["session_id"])),
                 422, "invalid_request")
    assert await _counts(hw) == before


async def test_finish_twice_and_expired_session(hw: GatewayClient) -> None:
    registrar = hw.staff("HospitalMSP", "registrar")
    bush = await ensure_enrolled(hw, "bush")
    sid = bush.finish["session_id"]
    assert_error(await hw.http.post(f"{CURRENT}/finish", headers=in_session(registrar, sid)),
                 409, "already_finished")
    session = await open_session(hw)
    with hw.state.db.transaction() as conn:
        conn.execute("UPDATE enrolment_sessions SET expires = 0 WHERE session_id = ?",
                     (session["session_id"],))
    assert_error(await hw.http.put(f"{CURRENT}/password", json={"password": PASSWORDS["bush"]},
                                   headers=in_session(registrar, session["session_id"])),
                 410, "enrolment_expired")


async def test_guardians_get_sealed_shares(hw: GatewayClient) -> None:
    bush = await ensure_enrolled(hw, "bush")
    out = (await ensure_enrolled(hw, "stoiber")).finish  # GUARDIANS: bush, k = 1
    assert out["guardian_shares"] == 1
    assert out["shares"][0]["guardian_passport_id"] == bush.passport_id
    record = await _ledger_passport(hw, out["passport_id"])
    assert record["guardian_threshold"] == 1 and len(record["guardians"]) == 1  # type: ignore[arg-type]


async def test_nothing_private_in_the_database_or_logs(
        hw: GatewayClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bush = await ensure_enrolled(hw, "bush")
    r = await unlock(hw, "bush", bush.passport_id, password=bush.password)
    session = holder_service(hw.state).session(r.json()["session_id"])
    assert session is not None
    master = session.master
    hw.state.db.close()
    blobs = b""
    for path in hw.state.settings.data_dir.rglob("*"):
        if path.is_file() and path.suffix != ".json":
            blobs += path.read_bytes()
    for canary in (bush.password.encode(), master, master.hex().encode(),
                   base64.b64encode(master)):
        assert canary not in blobs
    assert bush.password not in caplog.text and master.hex() not in caplog.text


# --- crash recovery: a finish interrupted after (or during) Passport:Register ------------------

async def _through_password(gw: GatewayClient, who: str, guardians: list[str],
                            threshold: int) -> str:
    """A session with face, password and guardians set; returns its id."""
    headers = gw.staff("HospitalMSP", "registrar")
    session = await open_session(gw)
    sid = str(session["session_id"])
    r = await gw.http.post(f"{CURRENT}/frames", headers=in_session(headers, sid),
                           json=answer(session["challenge"]["challenge_id"],
                                       frames_of(who, gw.state.face_engine())))
    assert r.status_code == 204, r.text
    r = await gw.http.put(f"{CURRENT}/password", headers=in_session(headers, sid),
                          json={"password": PASSWORDS[who]})
    assert r.status_code == 204, r.text
    if guardians:
        r = await gw.http.put(f"{CURRENT}/guardians", headers=in_session(headers, sid),
                              json={"guardians": guardians, "threshold": threshold})
        assert r.status_code == 204, r.text
    return sid


def _restart(gw: GatewayClient, sid: str) -> None:
    """What kill -9 and a restart leave of the service's memory: nothing of this session."""
    service = enrolment_service(gw.state)
    service._pending.pop(sid, None)
    assert sid not in service._finishing


async def _recovered(gw: GatewayClient, who: str, sid: str) -> str:
    """The second finish answers the passport id and the enrolment is complete."""
    registrar = gw.staff("HospitalMSP", "registrar")
    r = await gw.http.post(f"{CURRENT}/finish", headers=in_session(registrar, sid))
    assert r.status_code == 201, r.text
    out = r.json()
    pid = str(out["passport_id"])
    names, threshold = GUARDIANS[who]
    assert out["guardian_shares"] == len(names)
    view = (await gw.http.get(CURRENT, headers=in_session(registrar, sid))).json()
    assert (view["status"], view["passport_id"]) == ("finished", pid)
    record = await _ledger_passport(gw, pid)
    assert record["status"] == "active" and record["guardian_threshold"] == threshold
    holder = gw.state.db.query_one("SELECT status FROM holders WHERE passport_id = ?", (pid,))
    assert holder is not None and holder["status"] == "active"
    assert_error(await gw.http.post(f"{CURRENT}/finish", headers=in_session(registrar, sid)),
                 409, "already_finished")
    # Later tests of this session find the person enrolled (ensure_enrolled's cache).
    out["session_id"] = sid
    _ENROLLED[(str(gw.state.settings.data_dir), who)] = Enrolled(who, pid, PASSWORDS[who], out)
    return pid


def _fresh(gw: GatewayClient, who: str) -> None:
    assert (str(gw.state.settings.data_dir), who) not in _ENROLLED, \
        f"{who} is enrolled already: this test needs a face not yet in the dedup index"


@pytest.fixture
async def own_hw(gw_network: MipNetwork, tmp_path: Path,
                 face_engine: FaceEngine) -> AsyncIterator[GatewayClient]:
    """A gateway with a data dir (and dedup index) of its own over the session's devnet: the
    crash tests enrol faces that later tests of the shared gateway (`hw`) need unenrolled,
    e.g. the recovery tests' stranger (tests/gateway/services/test_recovery.py)."""
    async with serving(tmp_path / "gateway", gw_network, face_engine) as client:
        yield client


async def test_crash_right_after_register_commits_is_recovered(
        own_hw: GatewayClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue #16: the gateway dies right after Passport:Register committed."""
    hw = own_hw
    who = "astronaut"
    _fresh(hw, who)
    sid = await _through_password(hw, who, [], 0)
    registrar = hw.staff("HospitalMSP", "registrar")

    register = EnrolmentService._register

    async def crash(self: EnrolmentService, *args: Any) -> None:
        await register(self, *args)
        raise RuntimeError("injected crash right after Passport:Register committed")

    with monkeypatch.context() as patch:
        patch.setattr(EnrolmentService, "_register", crash)
        r = await hw.http.post(f"{CURRENT}/finish", headers=in_session(registrar, sid))
    assert r.status_code == 500
    _restart(hw, sid)
    view = (await hw.http.get(CURRENT, headers=in_session(registrar, sid))).json()
    assert view["status"] == "finishing" and view["passport_id"] is None
    await _recovered(hw, who, sid)


async def test_unknown_register_outcome_is_submitted_again(
        own_hw: GatewayClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """The submission's outcome is unknown and the ledger unreachable, then the gateway
    restarts: the retry submits the recorded request and completes the enrolment."""
    hw = own_hw
    who = "grace_hopper"
    _fresh(hw, who)
    names, threshold = GUARDIANS[who]
    guardians = [(await ensure_enrolled(hw, name)).passport_id for name in names]
    sid = await _through_password(hw, who, guardians, threshold)
    registrar = hw.staff("HospitalMSP", "registrar")

    async def unreachable(*_args: object) -> bool:
        raise DeadlineExceeded("injected: the ledger did not answer")

    with monkeypatch.context() as patch:
        patch.setattr(EnrolmentService, "_register", unreachable)
        patch.setattr(EnrolmentService, "_on_ledger", unreachable)
        r = await hw.http.post(f"{CURRENT}/finish", headers=in_session(registrar, sid))
    assert r.status_code >= 500
    _restart(hw, sid)
    row = hw.state.db.query_one("SELECT status, register_request FROM enrolment_sessions "
                                "WHERE session_id = ?", (sid,))
    assert row is not None and row["status"] == "finishing" and row["register_request"]
    await _recovered(hw, who, sid)
