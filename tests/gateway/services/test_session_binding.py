"""A holder session is bound to the desk that started it (issue #16, item 1).

Its id alone is no credential: with no staff token, another staff member's, another org's,
or another token of the same member, every use (grant, account listing or opening, unlock,
end) is refused as an unknown session would be (404 `holder_session_not_found`), the
refusal does not echo the id, and nothing changes; the desk's own token works throughout.
"""
# ruff: noqa: F811 (fixtures imported from enrolment_kit)

from __future__ import annotations

import time
from typing import Any

import httpx
from enrolment_kit import (
    API,
    answer,
    ensure_enrolled,
    fix_poses,
    frames_of,
    holder_headers,
    hw,  # noqa: F401
    hw_data_dir,  # noqa: F401
)
from gateway_testkit import GatewayClient, assert_error

from gateway.core.security import StaffMember
from gateway.services.holders import HolderSession, holder_service

SESSION = "X-MIP-Holder-Session"


def thieves(hw: GatewayClient, session_id: str) -> dict[str, dict[str, str]]:
    """The session id with every token but the desk's own (HospitalMSP doctor's)."""
    return {
        "no token": {SESSION: session_id},
        "a malformed token": {"Authorization": "Bearer not-a-token", SESSION: session_id},
        "another staff member": {**hw.staff("HospitalMSP", "pharmacist"), SESSION: session_id},
        "another org's staff": {**hw.staff("SchoolMSP", "registrar"), SESSION: session_id},
        # The same member's second token is another desk (another device).
        "the member's other token": {
            "Authorization": f"Bearer {hw.state.staff.issue('HospitalMSP', 'doctor', 'doctor')}",
            SESSION: session_id},
    }


def refused(response: httpx.Response, session_id: str, who: str) -> None:
    assert_error(response, 404, "holder_session_not_found")
    assert session_id not in response.text, who


async def test_a_stolen_session_id_opens_nothing(hw: GatewayClient) -> None:
    bush = await ensure_enrolled(hw, "bush")
    mine = await holder_headers(hw, bush)
    sid = mine[SESSION]
    r = await hw.http.post(f"{API}/accounts", headers=mine, json={"institution": "HospitalMSP"})
    assert r.status_code == 201, r.text
    account = r.json()["pseudonym"]
    accounts_before = (await hw.http.get(f"{API}/accounts", headers=mine)).json()["accounts"]
    grant: dict[str, Any] = {"account": account, "grantee_org": "SchoolMSP",
                             "scope": "medical.record", "credential_type": "record"}

    for who, headers in thieves(hw, sid).items():
        refused(await hw.http.post(f"{API}/grants", headers=headers, json=grant), sid, who)
        refused(await hw.http.get(f"{API}/grants", headers=headers,
                                  params={"account": account}), sid, who)
        refused(await hw.http.get(f"{API}/accounts", headers=headers), sid, who)
        refused(await hw.http.post(f"{API}/accounts", headers=headers,
                                   json={"institution": "HospitalMSP"}), sid, who)
        refused(await hw.http.get(f"{API}/audit/holder", headers=headers,
                                  params={"account": account}), sid, who)
        refused(await hw.http.delete(f"{API}/holders/sessions/current", headers=headers),
                sid, who)

    # Nothing changed: no grant, no account; the session lives on for its own desk.
    assert (await hw.http.get(f"{API}/grants", headers=mine,
                              params={"account": account})).json() == []
    assert (await hw.http.get(f"{API}/accounts", headers=mine)).json()["accounts"] \
        == accounts_before
    log = (await hw.http.get(f"{API}/audit/holder", headers=mine,
                             params={"account": account})).json()
    assert [e["action"] for e in log] == []
    r = await hw.http.post(f"{API}/grants", headers=mine, json=grant)
    assert r.status_code == 201, r.text
    ended = await hw.http.delete(f"{API}/holders/sessions/current", headers=mine)
    assert ended.status_code == 204, ended.text
    assert holder_service(hw.state).session(sid) is None


async def test_a_stolen_id_cannot_unlock_nor_learn_that_it_exists(hw: GatewayClient) -> None:
    bush = await ensure_enrolled(hw, "bush")
    doctor = hw.staff("HospitalMSP", "doctor")
    started = (await hw.http.post(f"{API}/holders/sessions", headers=doctor)).json()
    sid, cid = started["session_id"], started["challenge"]["challenge_id"]
    fix_poses(hw, cid)
    body = answer(cid, frames_of("bush", hw.state.face_engine())) | {
        "passport_id": bush.passport_id, "password": bush.password}
    unknown = "ab" * 32
    for who, headers in thieves(hw, sid).items():
        # Unlocking with the holder's own face and password at the wrong desk: refused
        # before any face work, the challenge not spent, the session not unlocked.
        refused(await hw.http.post(f"{API}/holders/sessions/unlock", headers=headers,
                                   json=body), sid, who)
        # The same answer as for an id that was never issued.
        other = await hw.http.post(f"{API}/holders/sessions/unlock", json=body,
                                   headers={**headers, SESSION: unknown})
        assert other.json() == (await hw.http.post(
            f"{API}/holders/sessions/unlock", headers=headers, json=body)).json()
    session = holder_service(hw.state).session(sid)
    assert session is not None and session.level == 0
    # Expired: still the unknown session's answer to anyone but its desk.
    session.expires = time.time() - 1
    refused(await hw.http.post(f"{API}/holders/sessions/unlock", json=body,
                               headers={**hw.staff("SchoolMSP", "registrar"), SESSION: sid}),
            sid, "another org's staff, expired")
    session.expires = time.time() + 60
    # The desk's own token unlocks it (the challenge was never spent by the refusals).
    r = await hw.http.post(f"{API}/holders/sessions/unlock", json=body,
                           headers={**doctor, SESSION: sid})
    assert r.status_code == 200, r.text
    assert r.json()["level"] == 2


async def test_a_revoked_desk_token_ends_the_use_of_its_sessions(hw: GatewayClient) -> None:
    bush = await ensure_enrolled(hw, "bush")
    # A member of its own (revoking the shared test identities would touch other tests).
    token = hw.state.staff.issue("HospitalMSP", "desk-to-revoke", "doctor")
    desk = {"Authorization": f"Bearer {token}"}
    started = (await hw.http.post(f"{API}/holders/sessions", headers=desk)).json()
    sid, cid = started["session_id"], started["challenge"]["challenge_id"]
    fix_poses(hw, cid)
    body = answer(cid, frames_of("bush", hw.state.face_engine())) | {
        "passport_id": bush.passport_id, "password": bush.password}
    mine = {**desk, SESSION: sid}
    assert (await hw.http.post(f"{API}/holders/sessions/unlock", headers=mine,
                               json=body)).status_code == 200
    assert (await hw.http.get(f"{API}/accounts", headers=mine)).status_code == 200
    hw.state.staff.revoke_member("HospitalMSP", "desk-to-revoke")
    refused(await hw.http.get(f"{API}/accounts", headers=mine), sid, "revoked token")


def test_a_session_repr_holds_neither_its_id_nor_its_desk() -> None:
    session = HolderSession("ab" * 32, StaffMember("HospitalMSP", "doctor", "doctor"), "c",
                            0.0, None, "cd" * 32)  # type: ignore[arg-type]
    assert "ab" * 32 not in repr(session) and "cd" * 32 not in repr(session)
