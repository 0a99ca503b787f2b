"""A vouch cut off by a crash (issue #16): at each point (before the submission, endorsed but
never ordered, committed but unanswered) the gateway restarted over the same data dir and the
ledger agree, and the voucher's retry ends in 201 with the pair's vouch counted once
(gateway/services/vouching.py). The crash is an exception raised at the point (the vouch
path has no cleanup a kill -9 would skip); the restart is a fresh app state."""
# ruff: noqa: F811 (fixtures imported from enrolment_kit)

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from enrolment_kit import (
    API,
    ensure_enrolled,
    holder_headers,
    hw,  # noqa: F401
    hw_data_dir,  # noqa: F401
    serving,
)
from gateway_testkit import GatewayClient
from mip_testkit import HolderKey, MipNetwork, register_body, request_arg

from face_engine.engine import FaceEngine
from gateway.fabric import Contract, Transaction


class Crash(Exception):
    """The injected crash."""


async def _register(gw: GatewayClient) -> str:
    """A fresh level-2 passport, registered on the ledger directly."""
    record = json.loads(await gw.state.ledger.contract("SchoolMSP", "registrar").submit(
        "Passport:Register", [request_arg(HolderKey.generate().sign_request(
            "passport.register", register_body(2)))]))
    return str(record["id"])


async def _level(gw: GatewayClient, passport_id: str) -> int:
    return int(json.loads(await gw.state.ledger.carrier("HospitalMSP").evaluate(
        "Passport:Get", [passport_id]))["kyc_level"])


def _before_submit(submit: Any) -> tuple[Any, str, Any]:
    async def crash(self: Contract, *args: Any, **kwargs: Any) -> bytes:
        raise Crash("injected before Passport:Vouch was submitted")
    return Contract, "submit", crash


def _before_ordering(submit: Any) -> tuple[Any, str, Any]:
    async def crash(self: Transaction, **kwargs: Any) -> Any:
        raise Crash("injected before the transaction reached the orderer")
    return Transaction, "submit", crash


def _after_commit(submit: Any) -> tuple[Any, str, Any]:
    async def crash(self: Contract, *args: Any, **kwargs: Any) -> bytes:
        await submit(self, *args, **kwargs)
        raise Crash("injected right after Passport:Vouch committed")
    return Contract, "submit", crash


@pytest.mark.parametrize("point", [_before_submit, _before_ordering, _after_commit])
async def test_vouch_crash_then_retry(point: Any, hw: GatewayClient, hw_data_dir: Path,
                                      gw_network: MipNetwork, face_engine: FaceEngine,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    stoiber = await ensure_enrolled(hw, "stoiber")
    vouchee = await _register(hw)
    url = f"{API}/passports/{vouchee}/vouches"
    headers = await holder_headers(hw, stoiber)
    target, name, crash = point(Contract.submit)
    with monkeypatch.context() as patch:
        patch.setattr(target, name, crash)
        r = await hw.http.post(url, headers=headers)
    assert r.status_code == 500, r.text
    async with serving(hw_data_dir, gw_network, face_engine) as restarted:
        headers = await holder_headers(restarted, stoiber)
        r = await restarted.http.post(url, headers=headers)
        assert r.status_code == 201, r.text
        assert r.json()["vouchee"] == vouchee and r.json()["vouchee_level"] == 2
        # The pair counts once: one more voucher makes two vouches (k = 2: level 3).
        other = HolderKey.generate()
        await restarted.state.ledger.contract("SchoolMSP", "registrar").submit(
            "Passport:Register", [request_arg(other.sign_request(
                "passport.register", register_body(2)))])
        result = json.loads(await restarted.state.ledger.carrier("HospitalMSP").submit(
            "Passport:Vouch", [request_arg(other.sign_request(
                "passport.vouch", {"vouchee": vouchee}))]))
        assert result["vouches"] == 2
        assert await _level(restarted, vouchee) == result["kyc_level"]
