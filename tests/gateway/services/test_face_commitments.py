"""Face references against their ledger commitments: a reference swapped in the gateway's
database (another enrolled person's row, or a face re-enrolled without the ledger) is refused
with 409 `face_reference_mismatch` at the desk unlock, the account opening and the guardian
recovery, and nothing changes; restored, the honest paths pass. (The pharmacy pickup's case
is in test_pickup.py.)"""
# ruff: noqa: F811 (fixtures imported from enrolment_kit)

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from enrolment_kit import (
    API,
    answer,
    ensure_enrolled,
    fix_poses,
    frames_of,
    holder_headers,
    hw,  # noqa: F401
    hw_data_dir,  # noqa: F401
    unlock,
)
from gateway_testkit import GatewayClient, assert_error

from face_engine.protect.reference import ProtectedReference
from gateway.demo.faces import demo_portrait
from gateway.services.faces import LiveFace, face_service
from gateway.services.holders import holder_service

HOSPITAL = "HospitalMSP"
DESK = (HOSPITAL, "doctor")


async def _passport(gw: GatewayClient, passport_id: str) -> dict[str, Any]:
    return dict(json.loads(await gw.state.ledger.carrier(HOSPITAL).evaluate(
        "Passport:Get", [passport_id])))


def _reference(gw: GatewayClient, account: str, institution: str = HOSPITAL
               ) -> ProtectedReference:
    reference = face_service(gw.state).reference(account, institution)
    assert reference is not None
    return reference


@contextmanager
def reenrolled(gw: GatewayClient, passport_id: str, portrait: str) -> Iterator[None]:
    """Test-only tampering: `portrait`'s face re-enrolled as the passport's reference without
    the ledger; the honest reference is current again afterwards."""
    faces = face_service(gw.state)
    honest = _reference(gw, passport_id)
    live = LiveFace(gw.state.face_engine().embed(demo_portrait(portrait)))
    swapped = faces.enrol_reference(live, passport_id, HOSPITAL)
    try:
        yield
    finally:
        faces.restore_reference(honest, swapped)


@contextmanager
def pointed_at(gw: GatewayClient, passport_id: str, other_id: str) -> Iterator[None]:
    """Test-only tampering: the passport's slot points at another passport's reference row."""
    mine, theirs = _reference(gw, passport_id), _reference(gw, other_id)
    with gw.state.db.transaction() as conn:
        conn.execute("UPDATE face_slots SET commitment = ? WHERE holder_pseudonym = ? "
                     "AND institution = ?", (theirs.commitment, *mine.slot))
    try:
        yield
    finally:
        face_service(gw.state).restore_reference(mine, theirs)


def _failures(gw: GatewayClient, passport_id: str) -> int:
    return holder_service(gw.state).lockouts.failures(passport_id)


async def test_desk_unlock_refuses_a_reference_the_ledger_does_not_name(
        hw: GatewayClient) -> None:
    bush = await ensure_enrolled(hw, "bush")
    stoiber = await ensure_enrolled(hw, "stoiber")
    ledger = await _passport(hw, bush.passport_id)
    assert ledger["face_commitment"] == _reference(hw, bush.passport_id).commitment
    before = _failures(hw, bush.passport_id)
    # Grace's face put into bush's slot: she would unlock his passport (face only), and his
    # own face no longer matches. Both are refused before any face work.
    with reenrolled(hw, bush.passport_id, "grace_hopper"):
        for who in ("grace_hopper", "bush"):
            assert_error(await unlock(hw, who, bush.passport_id), 409,
                         "face_reference_mismatch")
        assert_error(await unlock(hw, "bush", bush.passport_id, password=bush.password),
                     409, "face_reference_mismatch")
    # Another enrolled person's reference row behind bush's slot.
    with pointed_at(hw, bush.passport_id, stoiber.passport_id):
        assert_error(await unlock(hw, "stoiber", bush.passport_id), 409,
                     "face_reference_mismatch")
    # Nothing was counted against the holder, and the ledger is as it was.
    assert _failures(hw, bush.passport_id) == before
    assert await _passport(hw, bush.passport_id) == ledger
    # Restored: the honest unlock passes, a stranger is only `unlock_failed` again.
    r = await unlock(hw, "bush", bush.passport_id, password=bush.password)
    assert r.status_code == 200 and r.json()["level"] == 2, r.text
    assert_error(await unlock(hw, "stoiber", bush.passport_id), 401, "unlock_failed")
    holder_service(hw.state).lockouts.clear(bush.passport_id)


async def test_account_opening_refuses_a_swapped_passport_reference(hw: GatewayClient) -> None:
    bush = await ensure_enrolled(hw, "bush")
    stoiber = await ensure_enrolled(hw, "stoiber")
    headers = await holder_headers(hw, bush)
    listed = (await hw.http.get(f"{API}/accounts", headers=headers)).json()["accounts"]
    references = hw.state.db.query_one("SELECT COUNT(*) AS n FROM face_references")
    assert references is not None

    async def open_at_pharmacy() -> Any:
        return await hw.http.post(f"{API}/accounts", headers=headers,
                                  json={"institution": "PharmacyMSP"})

    # After the unlock, the passport's stored reference is swapped: the unlock's live face
    # must not become an account's reference under a passport reference the ledger disowns.
    with reenrolled(hw, bush.passport_id, "grace_hopper"):
        assert_error(await open_at_pharmacy(), 409, "face_reference_mismatch")
    with pointed_at(hw, bush.passport_id, stoiber.passport_id):
        assert_error(await open_at_pharmacy(), 409, "face_reference_mismatch")
    # No account: the directory is unchanged and no account reference was enrolled (the two
    # swaps above enrolled one reference of their own).
    assert (await hw.http.get(f"{API}/accounts", headers=headers)).json()["accounts"] == listed
    after = hw.state.db.query_one("SELECT COUNT(*) AS n FROM face_references")
    assert after is not None and after["n"] == references["n"] + 1
    # Restored: the account opens, and the ledger carries its reference's commitment.
    r = await open_at_pharmacy()
    assert r.status_code == 201, r.text
    pseudonym = r.json()["pseudonym"]
    record = json.loads(await hw.state.ledger.carrier("PharmacyMSP").evaluate(
        "Account:Get", [pseudonym]))
    assert record["face_commitment"] == _reference(hw, pseudonym, "PharmacyMSP").commitment


def _wrapped(gw: GatewayClient, passport_id: str) -> str:
    row = gw.state.db.query_one("SELECT wrapped_secret FROM holders WHERE passport_id = ?",
                                (passport_id,))
    assert row is not None
    return str(row["wrapped_secret"])


async def test_recovery_refuses_a_swapped_reference(hw: GatewayClient) -> None:
    stoiber = await ensure_enrolled(hw, "stoiber")  # one guardian (bush), k = 1
    bush = await ensure_enrolled(hw, "bush")
    r = await hw.http.post(f"{API}/holders/recoveries", headers=hw.staff(*DESK),
                           json={"passport_id": stoiber.passport_id})
    assert r.status_code == 201, r.text
    rid, cid = r.json()["recovery_id"], r.json()["challenge"]["challenge_id"]
    fix_poses(hw, cid)
    share = await hw.http.post(f"{API}/holders/recoveries/{rid}/shares",
                               headers=await holder_headers(hw, bush))
    assert share.status_code == 201, share.text
    before, ledger = _wrapped(hw, stoiber.passport_id), await _passport(hw, stoiber.passport_id)
    new_password = "after-swap-Pa55word-stoiber!"

    async def finish(who: str) -> Any:
        body = answer(cid, frames_of(who, hw.state.face_engine()))
        body["new_password"] = new_password
        return await hw.http.post(f"{API}/holders/recoveries/{rid}/finish",
                                  headers=hw.staff(*DESK), json=body)

    # Grace's face in stoiber's slot: with k shares she would take his passport over.
    with reenrolled(hw, stoiber.passport_id, "grace_hopper"):
        assert_error(await finish("grace_hopper"), 409, "face_reference_mismatch")
    with pointed_at(hw, stoiber.passport_id, bush.passport_id):
        assert_error(await finish("bush"), 409, "face_reference_mismatch")
    # No rotation of anything: password, ledger record and the challenge are as they were.
    assert _wrapped(hw, stoiber.passport_id) == before
    assert await _passport(hw, stoiber.passport_id) == ledger
    # Restored, the same (unspent) challenge finishes the recovery.
    r = await finish("stoiber")
    assert r.status_code == 200, r.text
    assert r.json()["face_reenrolled"] is False
    stoiber.password = new_password
    r = await unlock(hw, "stoiber", stoiber.passport_id, password=new_password)
    assert r.status_code == 200 and r.json()["level"] == 2, r.text
