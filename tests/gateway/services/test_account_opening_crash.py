"""An account opening cut off by a crash (issue #16): whatever point the gateway dies at, the
gateway restarted over the same data dir and the ledger agree once the holder opens again, and
that retry ends in one account, never a stranded pending entry nor a 409 for a key the
holder's directory does not show (gateway/services/account_openings.py).

A crash is injected by raising an exception at the named point, with the opening's cleanup
(`abandon`) patched out, as kill -9 runs no handler; the restart is a fresh app state over the
same data dir (sessions, in memory, are gone; the holder unlocks again).
"""
# ruff: noqa: F811 (fixtures imported from enrolment_kit)

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from enrolment_kit import (
    API,
    Enrolled,
    ensure_enrolled,
    holder_headers,
    hw,  # noqa: F401
    hw_data_dir,  # noqa: F401
    serving,
)
from gateway_testkit import GatewayClient
from mip_testkit import MipNetwork

from face_engine.engine import FaceEngine
from gateway.fabric import ChaincodeError, CommitStatusError, Contract, Transaction
from gateway.fabric.errors import deadline_error
from gateway.holder import keys
from gateway.services import account_openings
from gateway.services.faces import FaceService, face_service
from gateway.services.holders import PENDING, HolderSession, holder_service

INSTITUTION = "SchoolMSP"


class Crash(Exception):
    """The injected crash."""


def _session(gw: GatewayClient, headers: dict[str, str]) -> HolderSession:
    session = holder_service(gw.state).session(headers["X-MIP-Holder-Session"])
    assert session is not None
    return session


async def _ledger_account(gw: GatewayClient, pseudonym: str) -> dict[str, Any] | None:
    try:
        return dict(json.loads(await gw.state.ledger.carrier(INSTITUTION).evaluate(
            "Account:Get", [pseudonym])))
    except ChaincodeError as exc:
        assert "not_found" in exc.chaincode_message
        return None


async def _crash(hw: GatewayClient, who: Enrolled, monkeypatch: pytest.MonkeyPatch,
                 target: Any, name: str, replacement: Any) -> None:
    headers = await holder_headers(hw, who)
    with monkeypatch.context() as patch:
        patch.setattr(target, name, replacement)
        patch.setattr(account_openings, "abandon", lambda *args, **kwargs: None)
        r = await hw.http.post(f"{API}/accounts", headers=headers,
                               json={"institution": INSTITUTION})
    assert r.status_code == 500, r.text


async def _retry(data_dir: Path, network: MipNetwork, engine: FaceEngine, who: Enrolled,
                 before: Any = None) -> tuple[dict[str, Any], str, dict[str, Any] | None]:
    """Restart, unlock, note the interrupted opening's intent, open again; returns the
    answer, the intent's pseudonym and the ledger's record of it after the retry.
    `before(session)` runs just before the retry."""
    async with serving(data_dir, network, engine) as restarted:
        headers = await holder_headers(restarted, who)
        session = _session(restarted, headers)
        [intent] = session.state.openings
        pseudonym = str(intent["pseudonym"])
        [pending] = [a for a in session.state.accounts if a.status == PENDING]
        assert pending.pseudonym == pseudonym
        if before is not None:
            before(session)
        r = await restarted.http.post(f"{API}/accounts", headers=headers,
                                      json={"institution": INSTITUTION})
        assert r.status_code == 201, r.text
        await _agree(restarted, session)
        # A fresh unlock reads the same directory back.
        await _agree(restarted, _session(restarted, await holder_headers(restarted, who)))
        listed = (await restarted.http.get(f"{API}/accounts", headers=headers)).json()
        assert r.json()["pseudonym"] in [a["pseudonym"] for a in listed["accounts"]]
        return r.json(), pseudonym, await _ledger_account(restarted, pseudonym)


async def _agree(gw: GatewayClient, session: HolderSession) -> None:
    """The directory and the ledger agree: nothing pending, every entry is the ledger's
    account with this holder's key of its index, and no index serves two entries."""
    state = session.state
    assert state.openings == []
    assert all(a.status != PENDING for a in state.accounts)
    seen = set()
    for entry in state.accounts:
        if entry.institution != INSTITUTION:
            continue
        record = await _ledger_account(gw, entry.pseudonym)
        assert record is not None
        assert record["public_key"] == keys.account_key(session.master, entry.institution,
                                                        entry.index).public_b64
        assert entry.index not in seen
        seen.add(entry.index)


async def test_crash_before_the_face_reference(
        hw: GatewayClient, hw_data_dir: Path, gw_network: MipNetwork, face_engine: FaceEngine,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Intent recorded, nothing signed: the retry abandons it and opens a new account."""
    bush = await ensure_enrolled(hw, "bush")

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise Crash("injected before the account's face reference was made")

    await _crash(hw, bush, monkeypatch, FaceService, "enrol_reference", crash)
    answer, pseudonym, record = await _retry(hw_data_dir, gw_network, face_engine, bush)
    assert answer["pseudonym"] != pseudonym and record is None


async def test_crash_before_submit(
        hw: GatewayClient, hw_data_dir: Path, gw_network: MipNetwork, face_engine: FaceEngine,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Signed request recorded, never sent: the retry submits that same request."""
    bush = await ensure_enrolled(hw, "bush")

    async def crash(self: Contract, *args: Any, **kwargs: Any) -> bytes:
        raise Crash("injected before Account:Open was submitted")

    await _crash(hw, bush, monkeypatch, Contract, "submit", crash)
    answer, pseudonym, record = await _retry(hw_data_dir, gw_network, face_engine, bush)
    assert answer["pseudonym"] == pseudonym and record is not None


async def test_crash_between_endorsement_and_ordering(
        hw: GatewayClient, hw_data_dir: Path, gw_network: MipNetwork, face_engine: FaceEngine,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Endorsed, never reached the orderer: the retry submits the same request again."""
    bush = await ensure_enrolled(hw, "bush")

    async def crash(self: Transaction, **kwargs: Any) -> Any:
        raise Crash("injected before the transaction reached the orderer")

    await _crash(hw, bush, monkeypatch, Transaction, "submit", crash)
    answer, pseudonym, record = await _retry(hw_data_dir, gw_network, face_engine, bush)
    assert answer["pseudonym"] == pseudonym and record is not None


async def test_commit_status_lost(
        hw: GatewayClient, hw_data_dir: Path, gw_network: MipNetwork, face_engine: FaceEngine,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Committed, but the gateway never learnt it (a commit-status timeout, not a refusal:
    the intent stays, no cleanup runs even without the crash patch): the retry finds the
    account on the ledger and answers with it."""
    bush = await ensure_enrolled(hw, "bush")
    submit = Contract.submit

    async def commit_then_lose(self: Contract, *args: Any, **kwargs: Any) -> bytes:
        await submit(self, *args, **kwargs)
        raise deadline_error(CommitStatusError, "injected: commit status lost", "tx")

    headers = await holder_headers(hw, bush)
    with monkeypatch.context() as patch:
        patch.setattr(Contract, "submit", commit_then_lose)
        r = await hw.http.post(f"{API}/accounts", headers=headers,
                               json={"institution": INSTITUTION})
    assert r.status_code >= 500, r.text
    answer, pseudonym, record = await _retry(hw_data_dir, gw_network, face_engine, bush)
    assert answer["pseudonym"] == pseudonym and record is not None


async def test_crash_after_commit_before_the_directory(
        hw: GatewayClient, hw_data_dir: Path, gw_network: MipNetwork, face_engine: FaceEngine,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The ledger opened the account, the directory never said so: the retry is not refused
    for reusing the key (409), it answers with the committed account."""
    bush = await ensure_enrolled(hw, "bush")

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise Crash("injected after Account:Open committed, before the directory write")

    await _crash(hw, bush, monkeypatch, account_openings, "record_opened", crash)
    answer, pseudonym, record = await _retry(hw_data_dir, gw_network, face_engine, bush)
    assert answer["pseudonym"] == pseudonym and record is not None
    assert record["status"] == "open"


async def test_refused_resubmission_is_abandoned_cleanly(
        hw: GatewayClient, hw_data_dir: Path, gw_network: MipNetwork, face_engine: FaceEngine,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The recorded request can no longer commit (here: altered, so its signature fails, as
    an expired one is refused): the retry's resubmission is refused, the ledger read back
    shows nothing, and the intent is abandoned (its face reference revoked, its key index
    freed) before a new account is opened at that index."""
    bush = await ensure_enrolled(hw, "bush")

    async def crash(self: Contract, *args: Any, **kwargs: Any) -> bytes:
        raise Crash("injected before Account:Open was submitted")

    await _crash(hw, bush, monkeypatch, Contract, "submit", crash)
    spoilt: dict[str, Any] = {}

    def spoil(session: HolderSession) -> None:
        [intent] = session.state.openings
        intent["request"]["expires"] -= 1
        spoilt["index"] = next(a.index for a in session.state.accounts if a.status == PENDING)
        session.save()

    answer, pseudonym, record = await _retry(hw_data_dir, gw_network, face_engine, bush,
                                             before=spoil)
    assert answer["pseudonym"] != pseudonym and record is None
    async with serving(hw_data_dir, gw_network, face_engine) as again:
        session = _session(again, await holder_headers(again, bush))
        assert session.account(answer["pseudonym"]).index == spoilt["index"]
        assert face_service(again.state).reference(pseudonym, INSTITUTION) is None


async def test_resubmission_of_a_late_commit_is_not_taken_twice(
        hw: GatewayClient, hw_data_dir: Path, gw_network: MipNetwork, face_engine: FaceEngine,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The first transaction committed but the retry's first read does not show it yet
    (ordered late): the resubmission is refused (pseudonym, key and nonce taken), the read
    back finds the account, and the retry answers with it."""
    bush = await ensure_enrolled(hw, "bush")

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise Crash("injected after Account:Open committed, before the directory write")

    await _crash(hw, bush, monkeypatch, account_openings, "record_opened", crash)
    read = account_openings._ledger_account
    reads: list[int] = []

    async def late(*args: Any, **kwargs: Any) -> dict[str, Any] | None:
        reads.append(1)
        return None if len(reads) == 1 else await read(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(account_openings, "_ledger_account", late)
        answer, pseudonym, record = await _retry(hw_data_dir, gw_network, face_engine, bush)
    assert answer["pseudonym"] == pseudonym and record is not None and len(reads) >= 2
