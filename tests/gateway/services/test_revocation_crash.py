"""A passport revocation cut off by a crash (issue #16): at each point (before the submission,
endorsed but never ordered, committed but unanswered, after the commit before the KYC
revocation, during the status list's publication, before the holder row is marked) the gateway
restarted over the same data dir and the ledger agree once the registrar retries the same
request: the passport revoked on the ledger, its KYC credential revoked here and in the status
list the ledger publishes, the holder row `revoked`, and the answer 200 as the first call's
(gateway/services/passport_revocation.py). A request finished earlier is answered the same
again; a different one is 409. The fraud-proposal path (a majority of orgs) too, and the
sweep that finishes an interrupted revocation nobody retries.

The crash is an exception raised at the point that none of the revocation path's handlers
catch (as kill -9 runs none); the restart is a fresh app state over the same data dir."""
# ruff: noqa: F811 (fixtures imported from enrolment_kit)

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from enrolment_kit import (
    API,
    hw,  # noqa: F401
    hw_data_dir,  # noqa: F401
    serving,
)
from gateway_testkit import GatewayClient, assert_error
from mip_testkit import HolderKey, MipNetwork, register_body, request_arg

from face_engine.engine import FaceEngine
from gateway.fabric import Contract, Transaction
from gateway.kyc.wallet import KycHolder
from gateway.services.holders import HolderService, holder_service
from gateway.services.kyc import KycService, kyc_service
from gateway.services.passport_revocation import RevocationService, revocation_service

HOSPITAL = "HospitalMSP"
BODY = {"reason": "identity fraud at the desk", "fraudulent": False}


class Crash(Exception):
    """The injected crash."""


async def _holder(gw: GatewayClient) -> tuple[str, int]:
    """A fresh HospitalMSP passport with a level-2 KYC credential of HospitalMSP and a holder
    row here (as an enrolment leaves them); returns (passport id, credential index)."""
    record = json.loads(await gw.state.ledger.contract(HOSPITAL, "registrar").submit(
        "Passport:Register", [request_arg(HolderKey.generate().sign_request(
            "passport.register", register_body(2)))]))
    passport_id = str(record["id"])
    index = await kyc_service(gw.state).issue(HOSPITAL, KycHolder(), 2, passport_id)
    assert index is not None
    holder_service(gw.state)  # its table exists from here on
    with gw.state.db.transaction() as conn:
        conn.execute("INSERT INTO holders (passport_id, enrolling_org, status, wrapped_secret, "
                     "face_key_sealed, state_sealed, created) VALUES (?, ?, 'active', '', "
                     "x'00', x'00', ?)", (passport_id, HOSPITAL, time.time()))
    return passport_id, index


def _url(passport_id: str) -> str:
    return f"{API}/passports/{passport_id}/revoke"


async def _agree(gw: GatewayClient, passport_id: str, index: int, *,
                 fraudulent: bool = False) -> None:
    """Ledger and gateway agree: revoked there; credential revoked and published; row revoked."""
    record = json.loads(await gw.state.ledger.carrier(HOSPITAL).evaluate(
        "Passport:Get", [passport_id]))
    assert record["status"] == "revoked" and bool(record.get("fraudulent")) is fraudulent
    row = gw.state.db.query_one("SELECT rev_reg_id, revoked FROM kyc_credentials WHERE "
                                "passport_id = ?", (passport_id,))
    assert row is not None and row["revoked"] == 1
    published = json.loads(await gw.state.ledger.carrier(HOSPITAL).evaluate(
        "Account:GetKycRevocation", [str(row["rev_reg_id"])]))
    assert published["status_list"]["revocationList"][index] == 1
    holder = gw.state.db.query_one("SELECT status FROM holders WHERE passport_id = ?",
                                   (passport_id,))
    assert holder is not None and holder["status"] == "revoked"


def _submit_raising(name: str, *, after: bool) -> Any:
    """Contract.submit raising Crash for transaction `name` (before or after it commits)."""
    submit = Contract.submit

    async def crash(self: Contract, tx: str, *args: Any, **kwargs: Any) -> bytes:
        if tx != name:
            return await submit(self, tx, *args, **kwargs)
        if after:
            await submit(self, tx, *args, **kwargs)
        raise Crash(f"injected {'after' if after else 'before'} {name}")
    return crash


def _before_submit() -> tuple[Any, str, Any]:
    return Contract, "submit", _submit_raising("Passport:Revoke", after=False)


def _before_ordering() -> tuple[Any, str, Any]:
    async def crash(self: Transaction, **kwargs: Any) -> Any:
        raise Crash("injected before the transaction reached the orderer")
    return Transaction, "submit", crash


def _after_commit() -> tuple[Any, str, Any]:
    return Contract, "submit", _submit_raising("Passport:Revoke", after=True)


def _before_kyc() -> tuple[Any, str, Any]:
    async def crash(self: KycService, *args: Any, **kwargs: Any) -> int:
        raise Crash("injected after the commit, before the KYC revocation")
    return KycService, "revoke", crash


def _during_publication() -> tuple[Any, str, Any]:
    # The credential is marked revoked here; its status list never reaches the ledger.
    return Contract, "submit", _submit_raising("Account:PublishKycRevocation", after=False)


def _before_sessions_end() -> tuple[Any, str, Any]:
    def crash(self: HolderService, passport_id: str) -> int:
        raise Crash("injected before the holder sessions ended")
    return HolderService, "end_sessions_of", crash


POINTS = [_before_submit, _before_ordering, _after_commit, _before_kyc, _during_publication,
          _before_sessions_end]


@pytest.mark.parametrize("sweep", [True, False], ids=["swept", "retry-only"])
@pytest.mark.parametrize("point", POINTS)
async def test_revocation_crash_then_retry(point: Any, sweep: bool, hw: GatewayClient,
                                           hw_data_dir: Path, gw_network: MipNetwork,
                                           face_engine: FaceEngine,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """`sweep`: the retry's own sweep finishes the interrupted request first (as it does), or
    (sweep off) the retry reconciles it itself."""
    passport_id, index = await _holder(hw)
    registrar = hw.staff(HOSPITAL, "registrar")
    target, name, crash = point()
    with monkeypatch.context() as patch:
        patch.setattr(target, name, crash)
        r = await hw.http.post(_url(passport_id), headers=registrar, json=BODY)
    assert r.status_code == 500, r.text
    if not sweep:
        async def no_sweep(self: RevocationService) -> None:
            return None
        monkeypatch.setattr(RevocationService, "sweep", no_sweep)
    async with serving(hw_data_dir, gw_network, face_engine) as restarted:
        registrar = restarted.staff(HOSPITAL, "registrar")
        r = await restarted.http.post(_url(passport_id), headers=registrar, json=BODY)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "revoked" and r.json()["kyc_credentials_revoked"] == 1
        assert r.json()["kyc_revocation_pending"] is False
        await _agree(restarted, passport_id, index)
        # The answer lost again: the same request gets the finished outcome, unchanged.
        again = await restarted.http.post(_url(passport_id), headers=registrar, json=BODY)
        assert again.status_code == 200 and again.json() == r.json(), again.text
        # A different request meets the revocation it did not make.
        assert_error(await restarted.http.post(_url(passport_id), headers=registrar,
                                               json={**BODY, "reason": "another reason"}),
                     409, "already_revoked")


async def test_an_interrupted_revocation_is_finished_by_the_next_one(
        hw: GatewayClient, hw_data_dir: Path, gw_network: MipNetwork,
        face_engine: FaceEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nobody retries: the next revocation of another passport at the restarted gateway
    publishes the status list a crash cut off and marks the holder row."""
    passport_id, index = await _holder(hw)
    other, other_index = await _holder(hw)
    registrar = hw.staff(HOSPITAL, "registrar")
    target, name, crash = _during_publication()
    with monkeypatch.context() as patch:
        patch.setattr(target, name, crash)
        r = await hw.http.post(_url(passport_id), headers=registrar, json=BODY)
    assert r.status_code == 500, r.text
    async with serving(hw_data_dir, gw_network, face_engine) as restarted:
        registrar = restarted.staff(HOSPITAL, "registrar")
        r = await restarted.http.post(_url(other), headers=registrar, json=BODY)
        assert r.status_code == 200, r.text
        await _agree(restarted, other, other_index)
        await _agree(restarted, passport_id, index)
        # The interrupted request's retry gets the outcome the sweep recorded.
        r = await restarted.http.post(_url(passport_id), headers=registrar, json=BODY)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "revoked" and r.json()["kyc_credentials_revoked"] == 1


async def test_fraud_proposals_cut_off_after_commit(
        hw: GatewayClient, hw_data_dir: Path, gw_network: MipNetwork,
        face_engine: FaceEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two other orgs' proposals, each committed but unanswered: each retry answers as its
    first call would have (pending, then revoked with the KYC revocation left to the enrolling
    org), never 409; the enrolling org's registrar then finishes it."""
    passport_id, index = await _holder(hw)
    fraud = {"reason": "forged documents", "fraudulent": True}
    _, _, crash = _after_commit()
    expected = [("PharmacyMSP", "active", True), ("SchoolMSP", "revoked", False)]
    for org, status, pending in expected:
        with monkeypatch.context() as patch:
            patch.setattr(Contract, "submit", crash)
            r = await hw.http.post(_url(passport_id), headers=hw.staff(org, "registrar"),
                                   json=fraud)
        assert r.status_code == 500, r.text
        async with serving(hw_data_dir, gw_network, face_engine) as restarted:
            r = await restarted.http.post(_url(passport_id),
                                          headers=restarted.staff(org, "registrar"), json=fraud)
            assert r.status_code == 200, r.text
            assert r.json()["status"] == status and r.json()["fraud_pending"] is pending
            assert r.json()["kyc_credentials_revoked"] == 0
            assert r.json()["kyc_revocation_pending"] is not pending
            assert {p["org"] for p in r.json()["fraud_proposals"]} >= {org}
            # That org proposing again with another reason: a genuinely different request.
            assert_error(await restarted.http.post(
                _url(passport_id), headers=restarted.staff(org, "registrar"),
                json={**fraud, "reason": "again"}), 409,
                "conflict" if pending else "already_revoked")
    async with serving(hw_data_dir, gw_network, face_engine) as restarted:
        registrar = restarted.staff(HOSPITAL, "registrar")
        r = await restarted.http.post(_url(passport_id), headers=registrar, json=BODY)
        assert r.status_code == 200, r.text
        assert r.json()["kyc_credentials_revoked"] == 1
        await _agree(restarted, passport_id, index, fraudulent=True)


async def test_an_interrupted_revocation_is_finished_at_start_up(
        hw: GatewayClient, hw_data_dir: Path, gw_network: MipNetwork,
        face_engine: FaceEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nobody calls at all: the restarted gateway's lifespan settles it in the background."""
    passport_id, index = await _holder(hw)
    target, name, crash = _during_publication()
    with monkeypatch.context() as patch:
        patch.setattr(target, name, crash)
        r = await hw.http.post(_url(passport_id), headers=hw.staff(HOSPITAL, "registrar"),
                               json=BODY)
    assert r.status_code == 500, r.text
    async with serving(hw_data_dir, gw_network, face_engine) as restarted:
        app = restarted.http._transport.app  # type: ignore[attr-defined]
        async with app.router.lifespan_context(app):
            for _ in range(200):
                if not revocation_service(restarted.state).intents.unfinished():
                    break
                await asyncio.sleep(0.05)
            await _agree(restarted, passport_id, index)
