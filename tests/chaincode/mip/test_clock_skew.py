"""The contract judges time by the proposal timestamp only within MIP_CLOCK_SKEW_S of each
endorser's own clock (chaincode/mip/holder_auth.py, tx_unix_time).

The peer's own window (15 minutes) still lets a client date its proposal minutes off; the
contract's expiries are shorter than that, so every endorser bounds the timestamp further.
"""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from typing import Any, cast

import pytest
from mip_testkit import CHANNEL, HolderKey, MipClients, expect_error, register_body, request_arg

from chaincode.mip import holder_auth
from chaincode.mip.errors import ClockSkew, Expired
from chaincode.mip.holder_auth import (
    CLOCK_SKEW_S,
    clock_skew_from_env,
    tx_unix_time,
    verify_holder_request,
)
from chaincode.shim import Context
from gateway.core.errors import CHAINCODE_STATUS
from gateway.fabric import Contract
from gateway.fabric.proposal import TransactionContext, build_proposal
from gateway.fabric.transaction import Proposal

NOW = 1_800_000_000


class _Stub:
    channel_id = CHANNEL

    def __init__(self, stamp: int) -> None:
        self.stamp = stamp
        self.state: dict[str, bytes] = {}

    def get_tx_timestamp(self) -> Any:
        return SimpleNamespace(seconds=self.stamp, nanos=0)

    async def get_state(self, key: str) -> bytes | None:
        return self.state.get(key)

    async def put_state(self, key: str, value: bytes) -> None:
        self.state[key] = value


def _ctx(stub: _Stub) -> Context:
    return cast(Context, SimpleNamespace(stub=stub))


@pytest.fixture
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(holder_auth, "wall_clock", lambda: float(NOW))


@pytest.mark.parametrize("offset", [0, CLOCK_SKEW_S, -CLOCK_SKEW_S])
def test_inside_the_bound_returns_the_proposal_time(fixed_clock: None, offset: int) -> None:
    # The proposal's time, not the local clock: endorsers must agree on what they write.
    assert tx_unix_time(_ctx(_Stub(NOW + offset))) == NOW + offset


@pytest.mark.parametrize("offset", [CLOCK_SKEW_S + 1, -CLOCK_SKEW_S - 1, 900, -3600])
def test_outside_the_bound_refused(fixed_clock: None, offset: int) -> None:
    with pytest.raises(ClockSkew) as info:
        tx_unix_time(_ctx(_Stub(NOW + offset)))
    assert str(info.value).startswith("clock_skew: the proposal is dated ")
    assert ("ahead of" if offset > 0 else "behind") in str(info.value)


async def test_skewed_holder_request_records_nothing(fixed_clock: None) -> None:
    key = HolderKey.generate()
    request = key.sign_request("grant.create", {"n": 1}, expires=NOW + 300)
    stub = _Stub(NOW - 600)  # back-dated: the request would look fresh for 10 more minutes
    with pytest.raises(ClockSkew):
        await verify_holder_request(_ctx(stub), request, "grant.create")
    assert stub.state == {}  # no nonce recorded
    stub.stamp = NOW
    await verify_holder_request(_ctx(stub), request, "grant.create")
    assert len(stub.state) == 1


def test_skew_setting_from_environment() -> None:
    assert clock_skew_from_env({}) == 120
    assert clock_skew_from_env({"MIP_CLOCK_SKEW_S": " 30 "}) == 30
    for bad in ("0", "901", "1.5", "soon", "-5"):
        with pytest.raises(ValueError, match="MIP_CLOCK_SKEW_S"):
            clock_skew_from_env({"MIP_CLOCK_SKEW_S": bad})


def test_gateway_maps_the_code() -> None:
    assert CHAINCODE_STATUS[ClockSkew.code] == 503


# --- on the network: a proposal inside the peer's 15-minute window, outside the contract's ---


def _dated(contract: Contract, name: str, args: list[str], skew_s: float) -> Proposal:
    """A proposal dated `skew_s` off (any client can do this; ours never does)."""
    session = contract._session
    context = TransactionContext.new(session.identity.serialize())
    built = build_proposal(channel=CHANNEL, chaincode=contract.chaincode, transaction_name=name,
                           args=args, transient=None, context=context,
                           timestamp_ns=time.time_ns() + int(skew_s * 1e9))
    return Proposal(session, CHANNEL, context.transaction_id, built)


@pytest.mark.parametrize("skew", [300, -300], ids=["future", "past"])
async def test_network_refuses_skewed_proposal(mip: MipClients, skew: int) -> None:
    registrar = await mip.client("HospitalMSP", "registrar")
    key = HolderKey.generate()
    request = request_arg(key.sign_request("passport.register", register_body()))
    async with expect_error("clock_skew"):
        await _dated(registrar, "Passport:Register", [request], skew).endorse()
    # Nothing was recorded: the very same request (same nonce) still registers.
    record = json.loads(await registrar.submit("Passport:Register", [request]))
    assert abs(record["created"] - time.time()) < 60


async def test_network_back_dating_does_not_revive_an_expired_request(mip: MipClients) -> None:
    registrar = await mip.client("HospitalMSP", "registrar")
    key = HolderKey.generate()
    expired = key.sign_request("passport.register", register_body(),
                               expires=int(time.time()) - 200)
    # Dated before the expiry: without the bound the contract would take it as fresh.
    async with expect_error("clock_skew"):
        await _dated(registrar, "Passport:Register", [request_arg(expired)], -300).endorse()
    async with expect_error(Expired.code):  # and dated honestly it is plainly expired
        await registrar.submit("Passport:Register", [request_arg(expired)])
