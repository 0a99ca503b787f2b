"""A guardian recovery cut off by a crash (issue #16): whatever point the gateway dies at, the
gateway restarted over the same data dir and the ledger agree once the passport is next
unlocked or recovered, and the holder is never locked out: the recovery is either finished
(the new password and the new face unlock) or cleanly undone (a retried recovery finishes)
(gateway/services/recovery_intents.py).

Grace's guardians are Bush and Stoiber (k = 1). For a changed-face recovery her reference and
the ledger's commitment first hold another face (test-only, as in test_recovery.py); her own
face then needs both guardians and is re-enrolled, its commitment written with
`Passport:SetFaceCommitment`. A crash is an exception raised at the named point that no
handler of the finish path catches (kill -9 runs none); the restart is a fresh app state over
the same data dir, after the dead process's 1:N index lock is released.
"""
# ruff: noqa: F811 (fixtures imported from enrolment_kit)

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from enrolment_kit import (
    API,
    PASSWORDS,
    Enrolled,
    answer,
    enrol,
    ensure_enrolled,
    fix_poses,
    frames_of,
    holder_headers,
    hw,  # noqa: F401
    hw_data_dir,  # noqa: F401
    serving,
    unlock,
)
from gateway_testkit import GatewayClient, assert_error
from mip_testkit import MipNetwork
from org_gateways_kit import desk_unlock, holder, org_gateways

from chaincode.protocol.orgs import HOSPITAL, SCHOOL
from face_engine.dedup.index import DedupIndex
from face_engine.engine import FaceEngine
from gateway.fabric import CommitStatusError, Contract, SubmitError, Transaction
from gateway.fabric.errors import deadline_error
from gateway.services import recovery_intents
from gateway.services.face_lockouts import FaceLockouts
from gateway.services.faces import FaceService, LiveFace, face_service
from gateway.services.holders import holder_service

DESK = ("HospitalMSP", "doctor")
ORG = "HospitalMSP"


class Crash(Exception):
    """The injected crash."""


def _raise(where: str) -> Callable[..., Any]:
    def crash(*args: Any, **kwargs: Any) -> Any:
        raise Crash(f"injected {where}")
    return crash


def _araise(where: str) -> Callable[..., Any]:
    async def crash(*args: Any, **kwargs: Any) -> Any:
        raise Crash(f"injected {where}")
    return crash


def _wrapped(gw: GatewayClient, passport_id: str) -> str:
    row = gw.state.db.query_one("SELECT wrapped_secret FROM holders WHERE passport_id = ?",
                                (passport_id,))
    assert row is not None
    return str(row["wrapped_secret"])


async def _commitment(gw: GatewayClient, passport_id: str) -> str:
    return str(json.loads(await gw.state.ledger.carrier(ORG).evaluate(
        "Passport:Get", [passport_id]))["face_commitment"])


def _intents(gw: GatewayClient, passport_id: str) -> list[Any]:
    return gw.state.db.query("SELECT * FROM recovery_intents WHERE passport_id = ?",
                             (passport_id,))


def _recorded(gw: GatewayClient, recovery_id: str) -> Any:
    return gw.state.db.query_one("SELECT * FROM holder_recoveries WHERE recovery_id = ?",
                                 (recovery_id,))


async def _change_face(gw: GatewayClient, grace: Enrolled) -> str:
    """Test-only: her reference and the ledger's commitment now hold another face."""
    session = holder_service(gw.state).session(
        (await holder_headers(gw, grace))["X-MIP-Holder-Session"])
    assert session is not None
    old = await _commitment(gw, grace.passport_id)
    other = np.random.default_rng(17).standard_normal(128).astype(np.float32)
    changed = face_service(gw.state).enrol_reference(LiveFace(other / np.linalg.norm(other)),
                                                     grace.passport_id, ORG)
    await gw.state.ledger.carrier(ORG).submit("Passport:SetFaceCommitment", [
        grace.passport_id, json.dumps(session.passport_sign("passport.face", {
            "passport_id": grace.passport_id, "face_commitment": changed.commitment,
            "previous": old}))])
    return str(changed.commitment)


async def _recovery(gw: GatewayClient, grace: Enrolled, guardians: list[Enrolled]
                    ) -> tuple[str, str]:
    """Started at the Hospital's doctor's desk with every guardian's share in."""
    r = await gw.http.post(f"{API}/holders/recoveries", headers=gw.staff(*DESK),
                           json={"passport_id": grace.passport_id})
    assert r.status_code == 201, r.text
    rid, cid = r.json()["recovery_id"], r.json()["challenge"]["challenge_id"]
    fix_poses(gw, cid)
    for guardian in guardians:
        r = await gw.http.post(f"{API}/holders/recoveries/{rid}/shares",
                               headers=await holder_headers(gw, guardian))
        assert r.status_code == 201, r.text
    return rid, cid


async def _finish(gw: GatewayClient, rid: str, cid: str, password: str) -> httpx.Response:
    body = answer(cid, frames_of("grace_hopper", gw.state.face_engine()))
    body["new_password"] = password
    return await gw.http.post(f"{API}/holders/recoveries/{rid}/finish",
                              headers=gw.staff(*DESK), json=body)


@asynccontextmanager
async def _restarted(crashed: GatewayClient, data_dir: Path, network: MipNetwork,
                     engine: FaceEngine) -> AsyncIterator[GatewayClient]:
    # The dead process's lock on the 1:N index goes with it.
    await face_service(crashed.state).aclose()
    async with serving(data_dir, network, engine) as restarted:
        yield restarted


async def _agree(gw: GatewayClient, grace: Enrolled) -> None:
    """Grace's password and face unlock at level 2 (an unlock settles any intent first);
    then no intent is left, the ledger names the current reference and her face is the
    passport's 1:N entry."""
    r = await unlock(gw, "grace_hopper", grace.passport_id, password=grace.password)
    assert r.status_code == 200 and r.json()["level"] == 2, r.text
    assert _intents(gw, grace.passport_id) == []
    faces = face_service(gw.state)
    reference = faces.reference(grace.passport_id, ORG)
    assert reference is not None
    assert await _commitment(gw, grace.passport_id) == reference.commitment
    assert grace.passport_id in faces.dedup()


async def _crash_changed_face(hw: GatewayClient, monkeypatch: pytest.MonkeyPatch,
                              patches: list[tuple[Any, str, Any]]
                              ) -> tuple[Enrolled, str, str, str]:
    """A changed-face recovery whose finish dies at the patched point; returns grace, the
    recovery id, the password it set and the commitment the ledger held before."""
    grace = await ensure_enrolled(hw, "grace_hopper")
    guardians = [await ensure_enrolled(hw, "bush"), await ensure_enrolled(hw, "stoiber")]
    changed = await _change_face(hw, grace)
    rid, cid = await _recovery(hw, grace, guardians)
    password = f"crash-{rid[:8]}-Pa55word!"
    with monkeypatch.context() as patch:
        for target, name, value in patches:
            patch.setattr(target, name, value)
        r = await _finish(hw, rid, cid, password)
    assert r.status_code == 500, r.text
    return grace, rid, password, changed


async def _finished_at_unlock(data_dir: Path, network: MipNetwork, engine: FaceEngine,
                              crashed: GatewayClient, grace: Enrolled, rid: str,
                              password: str) -> None:
    """After the restart, the passport's next unlock finishes the recovery: the new password
    and her face unlock, and the ledger and the gateway agree."""
    async with _restarted(crashed, data_dir, network, engine) as gw:
        assert _intents(gw, grace.passport_id) != []
        grace.password = password
        await _agree(gw, grace)
        row = _recorded(gw, rid)
        assert row is not None and row["face_reenrolled"] == 1 and row["shares"] == 2


async def _undone_then_retried(data_dir: Path, network: MipNetwork, engine: FaceEngine,
                               crashed: GatewayClient, grace: Enrolled, rid: str,
                               changed: str) -> None:
    """After the restart nothing of the recovery holds: the ledger keeps the commitment it
    had, the vault its password; a retried recovery finishes."""
    async with _restarted(crashed, data_dir, network, engine) as gw:
        before = _wrapped(gw, grace.passport_id)
        guardians = [await ensure_enrolled(gw, "bush"), await ensure_enrolled(gw, "stoiber")]
        rid2, cid2 = await _recovery(gw, grace, guardians)
        assert _intents(gw, grace.passport_id) == [] and _recorded(gw, rid) is None
        assert await _commitment(gw, grace.passport_id) == changed
        assert _wrapped(gw, grace.passport_id) == before
        password = f"retried-{rid2[:8]}-Pa55word!"
        r = await _finish(gw, rid2, cid2, password)
        assert r.status_code == 200 and r.json()["face_reenrolled"] is True, r.text
        grace.password = password
        await _agree(gw, grace)


async def test_crash_before_the_intent(
        hw: GatewayClient, hw_data_dir: Path, gw_network: MipNetwork, face_engine: FaceEngine,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing recorded yet: nothing changed, and the retry is a fresh recovery."""
    grace, rid, _password, changed = await _crash_changed_face(hw, monkeypatch, [
        (FaceService, "stage_reference", _raise("before the new reference was made"))])
    assert _intents(hw, grace.passport_id) == []
    await _undone_then_retried(hw_data_dir, gw_network, face_engine, hw, grace, rid, changed)


async def test_crash_before_the_submission(
        hw: GatewayClient, hw_data_dir: Path, gw_network: MipNetwork, face_engine: FaceEngine,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Intent recorded, never sent: the holder's current reference and vault are untouched
    (the old password still opens the vault); the next unlock submits the recorded request
    and finishes the recovery."""
    grace, rid, password, changed = await _crash_changed_face(hw, monkeypatch, [
        (Contract, "submit", _araise("before SetFaceCommitment was submitted"))])
    [intent] = _intents(hw, grace.passport_id)
    assert intent["recovery_id"] == rid and intent["stage"] == recovery_intents.SUBMITTING
    assert all(password not in str(value) for value in dict(intent).values())  # sealed
    assert await _commitment(hw, grace.passport_id) == changed
    reference = face_service(hw.state).reference(grace.passport_id, ORG)
    assert reference is not None and reference.commitment == changed
    await _finished_at_unlock(hw_data_dir, gw_network, face_engine, hw, grace, rid, password)


async def test_crash_between_endorsement_and_ordering(
        hw: GatewayClient, hw_data_dir: Path, gw_network: MipNetwork, face_engine: FaceEngine,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Endorsed, never ordered: the next recovery start reconciles first (the same request
    submitted again) and finds the earlier recovery finished."""
    grace, rid, password, changed = await _crash_changed_face(hw, monkeypatch, [
        (Transaction, "submit", _araise("before the transaction reached the orderer"))])
    assert await _commitment(hw, grace.passport_id) == changed
    async with _restarted(hw, hw_data_dir, gw_network, face_engine) as gw:
        r = await gw.http.post(f"{API}/holders/recoveries", headers=gw.staff(*DESK),
                               json={"passport_id": grace.passport_id})
        assert r.status_code == 201, r.text
        assert _recorded(gw, rid) is not None
        grace.password = password
        await _agree(gw, grace)


async def test_crash_after_the_commit(
        hw: GatewayClient, hw_data_dir: Path, gw_network: MipNetwork, face_engine: FaceEngine,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Committed, never answered: the ledger names the new face, the gateway still the old
    reference and vault (an unlock would fail the commitment check); the next unlock
    finishes the local steps first."""
    submit = Contract.submit

    async def commit_then_crash(self: Contract, *args: Any, **kwargs: Any) -> bytes:
        await submit(self, *args, **kwargs)
        raise Crash("injected right after SetFaceCommitment committed")

    grace, rid, password, changed = await _crash_changed_face(hw, monkeypatch, [
        (Contract, "submit", commit_then_crash)])
    [intent] = _intents(hw, grace.passport_id)
    assert await _commitment(hw, grace.passport_id) == intent["commitment"] != changed
    await _finished_at_unlock(hw_data_dir, gw_network, face_engine, hw, grace, rid, password)


async def test_an_interrupted_recovery_is_settled_at_start_up(
        hw: GatewayClient, hw_data_dir: Path, gw_network: MipNetwork, face_engine: FaceEngine,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Committed, never answered, and nobody unlocks: the restarted gateway's lifespan
    settles the intent in the background (the new reference current, the vault under the
    new password), before any request of the holder's."""
    submit = Contract.submit

    async def commit_then_crash(self: Contract, *args: Any, **kwargs: Any) -> bytes:
        await submit(self, *args, **kwargs)
        raise Crash("injected right after SetFaceCommitment committed")

    grace, rid, password, _changed = await _crash_changed_face(hw, monkeypatch, [
        (Contract, "submit", commit_then_crash)])
    async with _restarted(hw, hw_data_dir, gw_network, face_engine) as gw:
        assert _intents(gw, grace.passport_id) != []
        app = gw.http._transport.app  # type: ignore[attr-defined]
        async with app.router.lifespan_context(app):
            for _ in range(200):
                if not _intents(gw, grace.passport_id):
                    break
                await asyncio.sleep(0.05)
            assert _intents(gw, grace.passport_id) == []
            reference = face_service(gw.state).reference(grace.passport_id, ORG)
            assert reference is not None
            assert await _commitment(gw, grace.passport_id) == reference.commitment
            row = _recorded(gw, rid)
            assert row is not None and row["face_reenrolled"] == 1
            grace.password = password
            await _agree(gw, grace)


async def test_resubmission_of_a_late_commit_is_not_taken_twice(
        hw: GatewayClient, hw_data_dir: Path, gw_network: MipNetwork, face_engine: FaceEngine,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The first transaction committed but the reconciliation's first read does not show it
    yet (ordered late): the resubmission is refused (its `previous` is stale now), the read
    back finds the new commitment, and the recovery is finished, not abandoned."""
    submit = Contract.submit

    async def commit_then_crash(self: Contract, *args: Any, **kwargs: Any) -> bytes:
        await submit(self, *args, **kwargs)
        raise Crash("injected right after SetFaceCommitment committed")

    grace, rid, password, changed = await _crash_changed_face(hw, monkeypatch, [
        (Contract, "submit", commit_then_crash)])
    read = recovery_intents.ledger_commitment
    reads: list[int] = []

    async def late(*args: Any, **kwargs: Any) -> Any:
        reads.append(1)
        return changed if len(reads) == 1 else await read(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(recovery_intents, "ledger_commitment", late)
        await _finished_at_unlock(hw_data_dir, gw_network, face_engine, hw, grace, rid,
                                  password)
    assert len(reads) >= 2


async def test_crash_after_the_commit_before_the_local_writes(
        hw: GatewayClient, hw_data_dir: Path, gw_network: MipNetwork, face_engine: FaceEngine,
        monkeypatch: pytest.MonkeyPatch) -> None:
    grace, rid, password, _changed = await _crash_changed_face(hw, monkeypatch, [
        (recovery_intents, "_commit_locally", _raise("before the local writes"))])
    await _finished_at_unlock(hw_data_dir, gw_network, face_engine, hw, grace, rid, password)


async def test_crash_between_the_local_writes(
        hw: GatewayClient, hw_data_dir: Path, gw_network: MipNetwork, face_engine: FaceEngine,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Dies inside the local transaction (the reference made current and the vault replaced,
    the lockouts not yet cleared): all of it rolls back, and the next unlock redoes it."""
    grace = await ensure_enrolled(hw, "grace_hopper")
    before = _wrapped(hw, grace.passport_id)
    grace, rid, password, changed = await _crash_changed_face(hw, monkeypatch, [
        (FaceLockouts, "clear", _raise("between the local writes"))])
    [intent] = _intents(hw, grace.passport_id)
    assert intent["stage"] == recovery_intents.SUBMITTING
    assert _wrapped(hw, grace.passport_id) == before and _recorded(hw, rid) is None
    reference = face_service(hw.state).reference(grace.passport_id, ORG)
    assert reference is not None and reference.commitment == changed
    await _finished_at_unlock(hw_data_dir, gw_network, face_engine, hw, grace, rid, password)


async def test_crash_while_the_duplicate_entry_is_replaced(
        hw: GatewayClient, hw_data_dir: Path, gw_network: MipNetwork, face_engine: FaceEngine,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The local writes are done, the old 1:N entry removed, the new one not added: the
    holder unlocks at once, and that unlock's reconciliation adds the entry."""
    grace, rid, password, _changed = await _crash_changed_face(hw, monkeypatch, [
        (DedupIndex, "add", _raise("between removing and adding the 1:N entry"))])
    [intent] = _intents(hw, grace.passport_id)
    assert intent["stage"] == recovery_intents.COMMITTED and _recorded(hw, rid) is not None
    assert grace.passport_id not in face_service(hw.state).dedup()
    await _finished_at_unlock(hw_data_dir, gw_network, face_engine, hw, grace, rid, password)


async def test_unknown_outcome_then_a_retried_finish(
        hw: GatewayClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """No crash: the submission's outcome is unknown and the ledger does not show it (never
    ordered). The intent stays; the same finish retried reconciles it (the recorded request
    submitted again) and answers as the first finish would have."""
    grace = await ensure_enrolled(hw, "grace_hopper")
    guardians = [await ensure_enrolled(hw, "bush"), await ensure_enrolled(hw, "stoiber")]
    changed = await _change_face(hw, grace)
    rid, cid = await _recovery(hw, grace, guardians)
    password = f"unknown-{rid[:8]}-Pa55word!"

    async def lost(self: Transaction, **kwargs: Any) -> Any:
        raise deadline_error(SubmitError, "injected: the orderer did not answer", "tx")

    with monkeypatch.context() as patch:
        patch.setattr(Transaction, "submit", lost)
        r = await _finish(hw, rid, cid, password)
    assert r.status_code >= 500, r.text
    assert await _commitment(hw, grace.passport_id) == changed
    assert len(_intents(hw, grace.passport_id)) == 1
    r = await hw.http.post(f"{API}/holders/recoveries/{rid}/challenge",
                           headers=hw.staff(*DESK))
    assert r.status_code == 201, r.text
    fix_poses(hw, r.json()["challenge_id"])
    r = await _finish(hw, rid, r.json()["challenge_id"], password)
    assert r.status_code == 200, r.text
    assert r.json() == {"passport_id": grace.passport_id, "face_reenrolled": True, "shares": 2}
    grace.password = password
    await _agree(hw, grace)


async def test_commit_status_lost_is_read_back(
        hw: GatewayClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Committed, but the commit status never came: the ledger read back shows the new
    commitment, and the same finish completes."""
    grace = await ensure_enrolled(hw, "grace_hopper")
    guardians = [await ensure_enrolled(hw, "bush"), await ensure_enrolled(hw, "stoiber")]
    await _change_face(hw, grace)
    rid, cid = await _recovery(hw, grace, guardians)
    password = f"status-{rid[:8]}-Pa55word!"
    submit = Contract.submit

    async def commit_then_lose(self: Contract, *args: Any, **kwargs: Any) -> bytes:
        await submit(self, *args, **kwargs)
        raise deadline_error(CommitStatusError, "injected: commit status lost", "tx")

    with monkeypatch.context() as patch:
        patch.setattr(Contract, "submit", commit_then_lose)
        r = await _finish(hw, rid, cid, password)
    assert r.status_code == 200 and r.json()["face_reenrolled"] is True, r.text
    grace.password = password
    await _agree(hw, grace)


async def test_refused_resubmission_is_abandoned_cleanly(
        hw: GatewayClient, hw_data_dir: Path, gw_network: MipNetwork, face_engine: FaceEngine,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The recorded request can no longer commit (here: altered, so its signature fails, as
    an expired one is refused): the resubmission is refused, the ledger read back shows the
    old commitment, and the intent is abandoned: the old reference and vault stay, the
    staged reference never became current, and a retried recovery finishes."""
    grace, rid, _password, changed = await _crash_changed_face(hw, monkeypatch, [
        (Contract, "submit", _araise("before SetFaceCommitment was submitted"))])
    [intent] = _intents(hw, grace.passport_id)
    request = json.loads(intent["request"])
    request["expires"] -= 1
    with hw.state.db.transaction() as conn:
        conn.execute("UPDATE recovery_intents SET request = ? WHERE recovery_id = ?",
                     (json.dumps(request), rid))
    await _undone_then_retried(hw_data_dir, gw_network, face_engine, hw, grace, rid, changed)


async def test_matching_face_crash_between_local_writes_keeps_the_old_password(
        hw: GatewayClient, hw_data_dir: Path, gw_network: MipNetwork, face_engine: FaceEngine,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A recovery whose face matched writes nothing to the ledger; its local writes are one
    transaction, so dying between them leaves the old password whole (no intent, no record),
    and the retry sets the new one."""
    grace = await ensure_enrolled(hw, "grace_hopper")
    bush = await ensure_enrolled(hw, "bush")
    before = _wrapped(hw, grace.passport_id)
    rid, cid = await _recovery(hw, grace, [bush])
    with monkeypatch.context() as patch:
        patch.setattr(FaceLockouts, "clear", _raise("between the local writes"))
        r = await _finish(hw, rid, cid, "half-written-Pa55word!")
    assert r.status_code == 500, r.text
    async with _restarted(hw, hw_data_dir, gw_network, face_engine) as gw:
        assert _wrapped(gw, grace.passport_id) == before and _recorded(gw, rid) is None
        assert _intents(gw, grace.passport_id) == []
        assert_error(await unlock(gw, "grace_hopper", grace.passport_id,
                                  password="half-written-Pa55word!"), 401, "unlock_failed")
        await _agree(gw, grace)  # the old password
        rid2, cid2 = await _recovery(gw, grace, [bush])
        r = await _finish(gw, rid2, cid2, "whole-again-Pa55word!")
        assert r.status_code == 200 and r.json()["face_reenrolled"] is False, r.text
        grace.password = "whole-again-Pa55word!"
        await _agree(gw, grace)


async def test_crash_at_the_enrolling_org_of_a_recovery_at_another_desk(
        gw_network: MipNetwork, face_engine: FaceEngine, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Stoiber, enrolled at the Hospital (E), recovers a changed face at the School's desk
    (recovery_relay.py); E dies right after its SetFaceCommitment committed. His next unlock
    at the School's desk reaches E through custody, which settles the intent first: the new
    password and face unlock, and E's store agrees with the ledger."""
    async with org_gateways(gw_network, face_engine, tmp_path, (HOSPITAL, SCHOOL)) as gws:
        hospital, school = gws[HOSPITAL], gws[SCHOOL]
        astro = (await enrol(hospital, "astronaut"))["passport_id"]
        stoiber = (await enrol(hospital, "stoiber", guardians=[astro],
                               threshold=1))["passport_id"]
        session = holder_service(hospital.state).session(holder(await desk_unlock(
            hospital, HOSPITAL, "stoiber", stoiber, PASSWORDS["stoiber"]))[
                "X-MIP-Holder-Session"])
        assert session is not None
        other = np.random.default_rng(23).standard_normal(128).astype(np.float32)
        changed = face_service(hospital.state).enrol_reference(
            LiveFace(other / np.linalg.norm(other)), stoiber, HOSPITAL)
        await hospital.state.ledger.carrier(HOSPITAL).submit("Passport:SetFaceCommitment", [
            stoiber, json.dumps(session.passport_sign("passport.face", {
                "passport_id": stoiber, "face_commitment": changed.commitment,
                "previous": await _commitment(hospital, stoiber)}))])

        desk = school.staff(SCHOOL, "registrar")
        r = await school.http.post(f"{API}/holders/recoveries", headers=desk,
                                   json={"passport_id": stoiber})
        assert r.status_code == 201, r.text
        rid, cid = r.json()["recovery_id"], r.json()["challenge"]["challenge_id"]
        fix_poses(school, cid)
        r = await school.http.post(f"{API}/holders/recoveries/{rid}/shares", headers=holder(
            await desk_unlock(school, SCHOOL, "astronaut", astro, PASSWORDS["astronaut"])))
        assert r.status_code == 201, r.text
        submit = Contract.submit

        async def commit_then_crash(self: Contract, *args: Any, **kwargs: Any) -> bytes:
            await submit(self, *args, **kwargs)
            raise Crash("injected right after SetFaceCommitment committed")

        password = "recovered-at-school-Pa55word!"
        body = answer(cid, frames_of("stoiber", face_engine))
        body["new_password"] = password
        with monkeypatch.context() as patch:
            patch.setattr(Contract, "submit", commit_then_crash)
            r = await school.http.post(f"{API}/holders/recoveries/{rid}/finish", headers=desk,
                                       json=body)
        assert r.status_code >= 500, r.text
        [intent] = _intents(hospital, stoiber)
        assert await _commitment(hospital, stoiber) == intent["commitment"] != changed.commitment

        r = await desk_unlock(school, SCHOOL, "stoiber", stoiber, password)
        assert r.status_code == 200 and r.json()["level"] == 2, r.text
        assert _intents(hospital, stoiber) == []
        reference = face_service(hospital.state).reference(stoiber, HOSPITAL)
        assert reference is not None and reference.commitment == intent["commitment"]
        row = _recorded(hospital, intent["recovery_id"])
        assert row is not None and row["org"] == SCHOOL and row["face_reenrolled"] == 1
