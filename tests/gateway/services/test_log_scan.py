"""No staff token and no session id in any log line (issue #16): a desk flow like the demo's
(enrolment session, desk unlock, holder-session use, refused uses of the stolen ids, session
end) through the gateway with its access log, then every token and id it issued is looked
for in the log. A holder session id travels only in the `X-MIP-Holder-Session` header and an
enrolment session id only in `X-MIP-Enrolment-Session` (never a path:
tests/gateway/api/test_ids_in_paths.py), and the access log names routes by template, so
the other ids in paths (`/api/v1/pharmacy/pickups/{pickup_id}/frames`) never reach it
either. (`mip demo`'s logs are scanned for tokens, ids in paths and the enrolment ids it
issued, and their file modes checked, in tests/gateway/cli/test_demo_logs.py.)"""
# ruff: noqa: F811 (fixtures imported from enrolment_kit)

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from enrolment_kit import (
    API,
    CURRENT,
    SHARED,
    answer,
    ensure_enrolled,
    frames_of,
    hw,  # noqa: F401
    hw_data_dir,  # noqa: F401
    in_session,
    open_session,
    unlock,
)
from gateway_testkit import GatewayClient

from gateway.core.logging import RedactingFilter


@pytest.fixture
def gateway_log(tmp_path: Path) -> Iterator[Path]:
    """Every `mip` logger's line (the access log included) into a file, as `mip serve`
    writes gateway.log (gateway/core/logging.py's filter and format)."""
    path = tmp_path / "gateway.log"
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("mip")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield path
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        handler.close()


async def test_no_token_or_session_id_reaches_the_log(hw: GatewayClient,
                                                      gateway_log: Path) -> None:
    issued: list[str] = []
    bush = await ensure_enrolled(hw, "bush")
    if "session_id" in bush.finish:
        issued.append(bush.finish["session_id"])
    # An enrolment session (its id in the X-MIP-Enrolment-Session header) whose frames are
    # refused, then a retake challenge and its progress; the stolen id refused.
    registrar = hw.staff("HospitalMSP", "registrar")
    session = await open_session(hw)
    sid = session["session_id"]
    issued += [sid, session["challenge"]["challenge_id"]]
    nonface = (SHARED / "nonface" / "brick.png").read_bytes()
    r = await hw.http.post(f"{CURRENT}/frames", headers=in_session(registrar, sid), json=answer(
        session["challenge"]["challenge_id"],
        [nonface, *frames_of("bush", hw.state.face_engine())[1:]]))
    assert r.status_code == 422, r.text
    r = await hw.http.post(f"{CURRENT}/challenge", headers=in_session(registrar, sid))
    assert r.status_code == 201, r.text
    issued.append(r.json()["challenge_id"])
    assert (await hw.http.get(CURRENT, headers=in_session(registrar, sid))).status_code == 200
    for thief in ({}, hw.staff("SchoolMSP", "registrar")):
        stolen = await hw.http.get(CURRENT, headers=in_session(thief, sid))
        assert stolen.status_code in (401, 404), stolen.text
        assert sid not in stolen.text
    # Desk unlocks: a refused one and a level-2 one, whose session is used and ended.
    refused = await unlock(hw, "stoiber", bush.passport_id)
    assert refused.status_code in (401, 404), refused.text
    r = await unlock(hw, "bush", bush.passport_id, password=bush.password)
    assert r.status_code == 200, r.text
    holder = r.json()["session_id"]
    issued.append(holder)
    doctor = hw.staff("HospitalMSP", "doctor")
    mine = {**doctor, "X-MIP-Holder-Session": holder}
    listed = await hw.http.get(f"{API}/accounts", headers=mine)
    assert listed.status_code == 200, listed.text
    # The stolen id, alone and with another staff member's token: refused, and not logged.
    for thief in ({}, hw.staff("HospitalMSP", "pharmacist")):
        stolen = await hw.http.get(f"{API}/accounts",
                                   headers={**thief, "X-MIP-Holder-Session": holder})
        assert stolen.status_code == 404, stolen.text
        assert holder not in stolen.text
    ended = await hw.http.delete(f"{API}/holders/sessions/current", headers=mine)
    assert ended.status_code == 204, ended.text
    # Not found after its end: the id of an unknown session is not logged either.
    gone = await hw.http.delete(f"{API}/holders/sessions/current", headers=mine)
    assert gone.status_code == 404
    issued += list(hw._tokens.values())

    text = gateway_log.read_text()
    # The scan reads real access lines.
    for template in ("POST /api/v1/holders/sessions/unlock 200",
                     "DELETE /api/v1/holders/sessions/current 204",
                     "DELETE /api/v1/holders/sessions/current 404",
                     "GET /api/v1/accounts 404",
                     "POST /api/v1/enrolments/current/frames 422",
                     "POST /api/v1/enrolments/current/challenge 201",
                     "GET /api/v1/enrolments/current 200",
                     "GET /api/v1/enrolments/current 404",
                     "GET /api/v1/accounts 200"):
        assert template in text, template
    assert len(issued) >= 6
    for secret in issued:
        assert secret and secret not in text, f"the log holds an issued id {secret[:8]}..."
    # No header is ever dumped into a line (the session's header by name, either case).
    assert "x-mip-holder-session" not in text.lower()
    assert "x-mip-enrolment-session" not in text.lower()
