"""Desk unlock: face -> level 1, face + password -> level 2; refusals say nothing of which
factor failed; lockout after repeated failures; the holder-session header."""
# ruff: noqa: F811 (fixtures imported from enrolment_kit)

from __future__ import annotations

import asyncio
import time
from typing import Any

from enrolment_kit import (
    API,
    ensure_enrolled,
    frames_of,
    hw,  # noqa: F401
    hw_data_dir,  # noqa: F401
    session_headers,
    unlock,
)
from gateway_testkit import GatewayClient, assert_error

from gateway.services.faces import face_service
from gateway.services.holders import (
    MAX_UNLOCK_FAILURES,
    UNLOCK_LOCKOUT_MAX_S,
    UNLOCK_LOCKOUT_S,
    holder_service,
)

DESK = "HospitalMSP/doctor"  # the staff member enrolment_kit.unlock's sessions start under
OTHER_DESK = ("HospitalMSP", "registrar")


async def test_face_alone_gives_level_1_and_password_level_2(hw: GatewayClient) -> None:
    bush = await ensure_enrolled(hw, "bush")
    r = await unlock(hw, "bush", bush.passport_id)
    assert r.status_code == 200, r.text
    assert r.json()["level"] == 1
    headers = session_headers(r)
    # Level 1 cannot use keys.
    assert_error(await hw.http.get(f"{API}/accounts", headers=headers), 403,
                 "holder_level_too_low")
    r = await unlock(hw, "bush", bush.passport_id, password=bush.password)
    assert r.status_code == 200, r.text
    assert r.json()["level"] == 2 and r.json()["expires_in_s"] <= 300
    session = holder_service(hw.state).session(r.json()["session_id"])
    assert session is not None
    request = session.passport_sign("passport.test", {"x": "y"})
    assert request["signer"] and request["signature"]


async def test_wrong_password_or_wrong_face_is_one_refusal(hw: GatewayClient) -> None:
    bush = await ensure_enrolled(hw, "bush")
    wrong_pw = await unlock(hw, "bush", bush.passport_id, password="not-the-password-1")
    wrong_face = await unlock(hw, "stoiber", bush.passport_id, password=bush.password)
    for r in (wrong_pw, wrong_face):
        assert_error(r, 401, "unlock_failed")
    assert wrong_pw.json() == wrong_face.json()  # identical: no hint of the factor
    # Face only, wrong person.
    assert_error(await unlock(hw, "stoiber", bush.passport_id), 401, "unlock_failed")
    holder_service(hw.state).lockouts.clear(bush.passport_id)


async def test_lockout_after_repeated_failures_holds_at_that_desk_only(hw: GatewayClient
                                                                       ) -> None:
    stoiber = await ensure_enrolled(hw, "stoiber")
    for _ in range(MAX_UNLOCK_FAILURES):
        assert_error(await unlock(hw, "stoiber", stoiber.passport_id, password="wrong-password-x"),
                     401, "unlock_failed")
    # Even the right factors are refused at that desk while locked, for UNLOCK_LOCKOUT_S.
    err = assert_error(await unlock(hw, "stoiber", stoiber.passport_id,
                                    password=stoiber.password), 423, "unlock_locked")
    assert UNLOCK_LOCKOUT_S - 60 < err["details"]["retry_after_s"] <= UNLOCK_LOCKOUT_S + 1
    # Another desk (another staff member) is not locked: the holder unlocks there.
    r = await unlock(hw, "stoiber", stoiber.passport_id, password=stoiber.password,
                     staff=OTHER_DESK)
    assert r.status_code == 200 and r.json()["level"] == 2, r.text
    # The lock at the first desk runs out: the holder gets through there too.
    lockouts = holder_service(hw.state).lockouts
    with hw.state.db.transaction() as conn:
        conn.execute("UPDATE face_locks SET until = 0 WHERE subject = ?",
                     (stoiber.passport_id,))
    r = await unlock(hw, "stoiber", stoiber.passport_id, password=stoiber.password)
    assert r.status_code == 200 and r.json()["level"] == 2
    assert lockouts.locks(stoiber.passport_id, DESK) == 0  # the success cleared the backoff


async def test_a_desk_that_keeps_failing_waits_twice_as_long_each_time(hw: GatewayClient
                                                                       ) -> None:
    bush = await ensure_enrolled(hw, "bush")
    lockouts = holder_service(hw.state).lockouts
    for n in range(3):
        for _ in range(MAX_UNLOCK_FAILURES):
            assert_error(await unlock(hw, "bush", bush.passport_id, password="wrong-pw-123"),
                         401, "unlock_failed")
        until = lockouts.locked_until(bush.passport_id, DESK)
        assert until is not None
        expected = min(UNLOCK_LOCKOUT_MAX_S, UNLOCK_LOCKOUT_S * 2 ** n)
        assert expected - 60 < until - time.time() <= expected
        with hw.state.db.transaction() as conn:  # as if the lock had run out
            conn.execute("UPDATE face_locks SET until = 0 WHERE subject = ?",
                         (bush.passport_id,))
            # ... and the helper org's count of unconfirmed password checks (its own budget,
            # 10 a day, tested in test_password_hardening_across_orgs.py) had too.
            conn.execute("DELETE FROM oprf_evaluations WHERE passport_id = ?",
                         (bush.passport_id,))
    assert lockouts.locks(bush.passport_id, DESK) == 3
    lockouts.clear(bush.passport_id)


async def test_concurrent_wrong_faces_get_at_most_the_limit_of_checks(hw: GatewayClient
                                                                      ) -> None:
    """Wrong faces sent together: the failure count and the attempts in flight are read and
    reserved in one transaction, so no more than MAX_UNLOCK_FAILURES are ever matched."""
    bush = await ensure_enrolled(hw, "bush")
    await ensure_enrolled(hw, "stoiber")
    faces = face_service(hw.state)
    matched: list[bool] = []
    real_matches = faces.matches

    def counting_matches(*args: Any) -> bool:
        matched.append(True)
        return real_matches(*args)

    faces.matches = counting_matches  # type: ignore[method-assign]
    try:
        replies = await asyncio.gather(*[unlock(hw, "stoiber", bush.passport_id)
                                         for _ in range(MAX_UNLOCK_FAILURES + 3)])
    finally:
        del faces.matches
    assert len(matched) == MAX_UNLOCK_FAILURES
    codes = sorted(r.json()["error"]["code"] for r in replies)
    assert codes == ["unlock_failed"] * MAX_UNLOCK_FAILURES + ["unlock_locked"] * 3
    # Locked now, even for the right face; every reservation was settled.
    assert_error(await unlock(hw, "bush", bush.passport_id), 423, "unlock_locked")
    assert hw.state.db.query_one("SELECT COUNT(*) AS n FROM face_attempts")["n"] == 0
    # Another desk still serves the holder.
    r = await unlock(hw, "bush", bush.passport_id, staff=OTHER_DESK)
    assert r.status_code == 200, r.text
    holder_service(hw.state).lockouts.clear(bush.passport_id)
    assert (await unlock(hw, "bush", bush.passport_id)).status_code == 200


async def test_unknown_passport_and_replayed_challenge(hw: GatewayClient) -> None:
    assert_error(await unlock(hw, "bush", "ab" * 32), 404, "passport_not_found")
    bush = await ensure_enrolled(hw, "bush")
    headers = hw.staff("HospitalMSP", "doctor")
    r = await hw.http.post(f"{API}/holders/sessions", headers=headers)
    sid, cid = r.json()["session_id"], r.json()["challenge"]["challenge_id"]
    from enrolment_kit import answer, fix_poses

    fix_poses(hw, cid)
    body = answer(cid, frames_of("bush")) | {"passport_id": bush.passport_id}
    mine = {**headers, "X-MIP-Holder-Session": sid}
    assert (await hw.http.post(f"{API}/holders/sessions/unlock", headers=mine,
                               json=body)).status_code == 200
    # Same answer again: the session is unlocked already, and the challenge is spent.
    assert_error(await hw.http.post(f"{API}/holders/sessions/unlock", headers=mine,
                                    json=body), 409, "already_unlocked")
    # Another staff member does not see this desk's session.
    assert_error(await hw.http.post(f"{API}/holders/sessions/unlock", json=body, headers={
        **hw.staff("SchoolMSP", "registrar"), "X-MIP-Holder-Session": sid}),
                 404, "holder_session_not_found")


async def test_holder_session_header(hw: GatewayClient) -> None:
    doctor = hw.staff("HospitalMSP", "doctor")
    assert_error(await hw.http.get(f"{API}/accounts", headers=doctor), 401,
                 "holder_session_required")
    assert_error(await hw.http.get(f"{API}/accounts", headers={
        **doctor, "X-MIP-Holder-Session": "x"}), 404, "holder_session_not_found")
    bush = await ensure_enrolled(hw, "bush")
    r = await unlock(hw, "bush", bush.passport_id, password=bush.password)
    sid = r.json()["session_id"]
    session = holder_service(hw.state).session(sid)
    assert session is not None
    session.expires = time.time() - 1
    # Expired, but told only to its own desk: the id alone gets the unknown session's answer.
    assert_error(await hw.http.get(f"{API}/accounts", headers={"X-MIP-Holder-Session": sid}),
                 404, "holder_session_not_found")
    assert session.level == 2
    assert_error(await hw.http.get(f"{API}/accounts", headers=session_headers(r)),
                 410, "holder_session_expired")
    assert session.level == 0  # wiped


async def test_staff_token_needed_to_start(hw: GatewayClient) -> None:
    assert_error(await hw.http.post(f"{API}/holders/sessions"), 401, "unauthenticated")
