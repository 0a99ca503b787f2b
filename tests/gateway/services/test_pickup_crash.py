"""A dispense interrupted by a crash (issue #16): the pickup is left `dispensing`, and its next
dispense reconciles it with the ledger (gateway/services/dispense_recovery.py): a committed
Dispense is reported, an uncommitted one is submitted again, and the prescription's fill
counter moves exactly once.

A crash is injected by raising an exception none of the dispense path's handlers catch (as
kill -9 runs none), at the named point; the service's in-flight set is empty afterwards, as
in a restarted gateway.
"""

from __future__ import annotations

from typing import Any

import pytest
from gateway_testkit import GatewayClient, assert_error
from ledger_kit import PHARMACY, mip
from mip_testkit import MipClients
from test_pickup import URL, answer, ready_prescription, start

from gateway.fabric import CommitStatusError, Contract, Transaction
from gateway.fabric.errors import deadline_error
from gateway.services.pickup import pickup_service

__all__ = ["mip"]


class Crash(Exception):
    """The injected crash."""


async def _verified_pickup(gw: GatewayClient, mip: MipClients,
                           refills: int = 0) -> tuple[str, str]:
    _, rx = await ready_prescription(gw, mip, refills=refills)
    pickup = await start(gw, rx["credential_id"])
    r = await answer(gw, pickup, "grace_hopper")
    assert r.status_code == 200 and r.json()["result"] == "verified", r.text
    return str(pickup["pickup_id"]), str(rx["credential_id"])


async def _crashed_dispense(gw: GatewayClient, pickup_id: str) -> None:
    r = await gw.http.post(f"{URL}/{pickup_id}/dispense", headers=gw.staff(PHARMACY,
                                                                          "pharmacist"))
    assert r.status_code == 500, r.text
    row = gw.state.db.query_one("SELECT status FROM pickups WHERE pickup_id = ?", (pickup_id,))
    assert row is not None and row["status"] == "dispensing"
    assert pickup_id not in pickup_service(gw.state)._dispensing


async def _fills_used(gw: GatewayClient, credential_id: str) -> int:
    record = (await gw.http.get(f"/api/v1/credentials/{credential_id}")).json()
    return int(record["fills"]["used"])


async def _retry_dispenses_once(gw: GatewayClient, pickup_id: str, credential_id: str,
                                allowed: int = 1) -> None:
    pharmacist = gw.staff(PHARMACY, "pharmacist")
    r = await gw.http.post(f"{URL}/{pickup_id}/dispense", headers=pharmacist)
    assert r.status_code == 200, r.text
    assert r.json() == {"dispensed": True, "fills_used": 1, "fills_allowed": allowed}
    assert await _fills_used(gw, credential_id) == 1
    assert_error(await gw.http.post(f"{URL}/{pickup_id}/dispense", headers=pharmacist),
                 409, "already_dispensed")


async def test_crash_after_the_dispense_committed(gw: GatewayClient, mip: MipClients,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    pickup_id, credential_id = await _verified_pickup(gw, mip)
    submit = Contract.submit

    async def commit_then_crash(self: Contract, *args: Any, **kwargs: Any) -> bytes:
        await submit(self, *args, **kwargs)
        raise Crash("injected right after Pharmacy:Dispense committed")

    with monkeypatch.context() as patch:
        patch.setattr(Contract, "submit", commit_then_crash)
        await _crashed_dispense(gw, pickup_id)
    assert await _fills_used(gw, credential_id) == 1  # the ledger took the fill
    await _retry_dispenses_once(gw, pickup_id, credential_id)


async def test_crash_before_the_dispense_was_submitted(gw: GatewayClient, mip: MipClients,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    pickup_id, credential_id = await _verified_pickup(gw, mip)

    async def crash(self: Contract, *args: Any, **kwargs: Any) -> bytes:
        raise Crash("injected after the pickup was marked dispensing")

    with monkeypatch.context() as patch:
        patch.setattr(Contract, "submit", crash)
        await _crashed_dispense(gw, pickup_id)
    assert await _fills_used(gw, credential_id) == 0
    await _retry_dispenses_once(gw, pickup_id, credential_id)


async def test_crash_between_recording_and_sending(gw: GatewayClient, mip: MipClients,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The transaction id is recorded but the orderer never got it: its commit status never
    comes (a short timeout), and the retry submits the attestation again."""
    pickup_id, credential_id = await _verified_pickup(gw, mip)

    async def crash(self: Transaction, **kwargs: Any) -> Any:
        raise Crash("injected before the transaction reached the orderer")

    with monkeypatch.context() as patch:
        patch.setattr(Transaction, "submit", crash)
        await _crashed_dispense(gw, pickup_id)
    row = gw.state.db.query_one("SELECT dispense_txs FROM pickups WHERE pickup_id = ?",
                                (pickup_id,))
    assert row is not None and row["dispense_txs"]
    assert await _fills_used(gw, credential_id) == 0
    await _retry_dispenses_once(gw, pickup_id, credential_id)


async def test_committed_dispense_with_unknown_status_is_not_taken_twice(
        gw: GatewayClient, mip: MipClients, monkeypatch: pytest.MonkeyPatch) -> None:
    """The recorded transaction is in no block when asked (ordered late) but commits: the
    resubmission is refused as a replay of the attestation, and the pickup is reported
    dispensed, one fill of two taken."""
    pickup_id, credential_id = await _verified_pickup(gw, mip, refills=1)
    submit = Contract.submit

    async def commit_then_crash(self: Contract, *args: Any, **kwargs: Any) -> bytes:
        await submit(self, *args, **kwargs)
        raise Crash("injected right after Pharmacy:Dispense committed")

    async def unknown(self: Contract, transaction_id: str, **kwargs: Any) -> Any:
        raise deadline_error(CommitStatusError, "injected: in no block yet", transaction_id)

    with monkeypatch.context() as patch:
        patch.setattr(Contract, "submit", commit_then_crash)
        await _crashed_dispense(gw, pickup_id)
    with monkeypatch.context() as patch:
        patch.setattr(Contract, "commit_status", unknown)
        await _retry_dispenses_once(gw, pickup_id, credential_id, allowed=2)
