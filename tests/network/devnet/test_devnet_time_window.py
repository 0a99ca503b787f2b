"""Devnet refuses proposals dated outside its time window, as a Fabric 3.x peer does.

Fabric 3.x's TimeWindowCheck auth filter (core/handlers/auth/filter/timewindow.go,
peer.authentication.timewindow, 15 minutes by default) refuses a proposal whose ChannelHeader
timestamp is further than the window from the peer's clock; the gateway reports it as an
unavailable endorser. The contract judges every expiry by that timestamp, so without this a
client could date its proposal freely.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
from devnet_client import TestClient, error_details, start_devnet
from fabric_protos.peer import transaction_pb2

from gateway.fabric import ClockSkew, EndorseError, EvaluateError, Gateway
from gateway.fabric.proposal import TransactionContext, build_proposal
from gateway.fabric.transaction import Proposal
from network.devnet.__main__ import _load_config, main
from network.devnet.config import DEFAULT_TIME_WINDOW_S, ConfigError, DevnetConfig
from network.devnet.gateway_service import go_duration, time_window_refusal

ON_NET = pytest.mark.asyncio(loop_scope="module")
ORGS = ("HospitalMSP", "SchoolMSP", "PharmacyMSP")
REFUSAL = "request unauthorized due to incorrect timestamp"
WINDOW = DEFAULT_TIME_WINDOW_S


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def net(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Any]:
    devnet = await start_devnet(tmp_path_factory.mktemp("devnet-time"))
    yield devnet
    await devnet.stop()


@pytest.fixture
def window(net: Any) -> Iterator[None]:
    """Restores the devnet's window after a test that changes it."""
    saved = net.service.time_window_s
    yield
    net.service.time_window_s = saved


def _refused_everywhere(details: list[Any], orgs: tuple[str, ...]) -> None:
    assert [d.msp_id for d in details] == list(orgs)
    for detail in details:
        assert detail.message.startswith(REFUSAL), detail.message
        assert detail.message.endswith("peer.authentication.timewindow 15m0s")


@ON_NET
@pytest.mark.parametrize("skew", [WINDOW + 60, -(WINDOW + 60)], ids=["future", "past"])
async def test_dated_outside_the_window_refused(hospital: TestClient, skew: float) -> None:
    stamp = time.time() + skew
    with pytest.raises(grpc.aio.AioRpcError) as ev:
        await hospital.evaluate(hospital.proposal("ReadAsset", "x", timestamp_s=stamp))
    assert ev.value.code() == grpc.StatusCode.UNAVAILABLE
    assert ev.value.details() == ("failed to evaluate transaction, see attached details for "
                                  "more info")
    _refused_everywhere(error_details(ev.value), ORGS)  # the gateway tried every peer

    built = hospital.proposal("CreateAsset", "skewed", "red", "1", "ann", "1", timestamp_s=stamp)
    with pytest.raises(grpc.aio.AioRpcError) as en:
        await hospital.endorse(built)
    assert en.value.code() == grpc.StatusCode.ABORTED
    assert en.value.details() == ("failed to endorse transaction, see attached details for "
                                  "more info")
    _refused_everywhere(error_details(en.value), ("HospitalMSP",))

    chosen = hospital.proposal("CreateAsset", "skewed", "red", "1", "ann", "1", timestamp_s=stamp)
    with pytest.raises(grpc.aio.AioRpcError) as ch:
        await hospital.endorse(chosen, ["SchoolMSP", "PharmacyMSP"])
    assert ch.value.code() == grpc.StatusCode.ABORTED
    assert "failed to collect enough transaction endorsements" in (ch.value.details() or "")
    _refused_everywhere(error_details(ch.value), ("SchoolMSP", "PharmacyMSP"))
    # Nothing was written.
    assert await _exists(hospital, "skewed") is False


@ON_NET
async def test_dated_inside_the_window_accepted(hospital: TestClient) -> None:
    for skew, key in ((WINDOW - 60, "early"), (-(WINDOW - 60), "late")):
        built = hospital.proposal("CreateAsset", key, "red", "1", "ann", "1",
                                  timestamp_s=time.time() + skew)
        env = await hospital.endorse(built)
        await hospital.submit(built, env)
        code, _ = await hospital.status(built.txid)
        assert code == transaction_pb2.TxValidationCode.VALID
        assert await _exists(hospital, key) is True


@ON_NET
async def test_configured_window(net: Any, hospital: TestClient, window: None) -> None:
    net.service.time_window_s = 30.0
    stamp = time.time() - 60
    with pytest.raises(grpc.aio.AioRpcError) as ev:
        await hospital.evaluate(hospital.proposal("ReadAsset", "x", timestamp_s=stamp))
    assert error_details(ev.value)[0].message.endswith("peer.authentication.timewindow 30s")
    net.service.time_window_s = 120.0
    await hospital.evaluate(hospital.proposal("AssetExists", "x", timestamp_s=stamp))


@ON_NET
async def test_gateway_client_raises_clock_skew(net: Any) -> None:
    """Our Gateway client turns the refusal into ClockSkew (in both phases)."""
    async with Gateway.from_connection(net.data_dir / "connection.json", "HospitalMSP",
                                       "User1") as gateway:
        contract = gateway.get_network("mipchannel").get_contract("mip")
        session = contract._session  # the client never back-dates; a test must build it

        def dated(name: str, args: list[str], skew: float) -> Proposal:
            context = TransactionContext.new(session.identity.serialize())
            built = build_proposal(channel="mipchannel", chaincode="mip",
                                   transaction_name=name, args=args, transient=None,
                                   context=context,
                                   timestamp_ns=time.time_ns() + int(skew * 1e9))
            return Proposal(session, "mipchannel", context.transaction_id, built)

        with pytest.raises(ClockSkew) as ev:
            await dated("AssetExists", ["x"], WINDOW + 120).evaluate()
        assert isinstance(ev.value, EvaluateError)
        assert ev.value.code == grpc.StatusCode.UNAVAILABLE
        with pytest.raises(ClockSkew) as en:
            await dated("CreateAsset", ["k", "red", "1", "ann", "1"], -(WINDOW + 120)).endorse()
        assert isinstance(en.value, EndorseError)
        assert await contract.evaluate("AssetExists", ["x"]) == b"false"


async def _exists(client: TestClient, key: str) -> bool:
    return await client.query("AssetExists", key) == b"true"


def test_refusal_text_and_bounds() -> None:
    now = 1_800_000_000.0
    stamp = type("T", (), {"seconds": int(now) + 901, "nanos": 0})()
    assert time_window_refusal(stamp, now, 900.0) == (
        "request unauthorized due to incorrect timestamp 2027-01-15T08:15:01Z, peer time "
        "2027-01-15T08:00:00Z, peer.authentication.timewindow 15m0s")
    edge = type("T", (), {"seconds": int(now) - 900, "nanos": 0})()
    assert time_window_refusal(edge, now, 900.0) is None  # exactly the window: still inside
    far = type("T", (), {"seconds": 10**12, "nanos": 0})()
    assert time_window_refusal(far, now, 900.0) is not None  # no crash on absurd dates
    assert [go_duration(s) for s in (900, 30, 3600, 2.5, 0.5)] == [
        "15m0s", "30s", "1h0m0s", "2.5s", "500ms"]


def test_window_config_flag_saved_and_validated(tmp_path: Path) -> None:
    assert DevnetConfig(data_dir=tmp_path).time_window_s == 900.0
    with pytest.raises(ConfigError):
        DevnetConfig(data_dir=tmp_path).with_overrides(time_window_s=0)
    args = type("A", (), dict.fromkeys(
        ("port", "host", "mtls", "chaincode_address", "contract", "policy", "collections",
         "batch_timeout_ms", "batch_size"), None))()
    args.data, args.time_window_s = str(tmp_path), 60.0
    config = _load_config(args)
    assert config.time_window_s == 60.0
    config.save()
    loaded = DevnetConfig.load(tmp_path)
    assert loaded is not None and loaded.time_window_s == 60.0
    with pytest.raises(SystemExit):
        main(["up", "--data", str(tmp_path), "--time-window-s", "soon"])
