"""The server: TLS, mutual TLS, environment configuration and `python -m chaincode`."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from shim_contracts import Other, Probe
from shim_testkit import CHAINCODE_ID, KeyPair, connect_peer, issue, make_ca, make_name, start_shim

from chaincode.shim import ConfigError, ServerConfig, TLSConfig, load_contracts
from chaincode.shim.config import DEFAULT_CONTRACT

REPO = Path(__file__).resolve().parents[3]


def _server_pair(ca: KeyPair) -> KeyPair:
    return issue(ca, make_name(CN="mip-chaincode"), sans=["127.0.0.1", "localhost"], server=True)


async def test_tls_server() -> None:
    ca = make_ca("tlsca.hospital.mip.local")
    server_pair = _server_pair(ca)
    running = await start_shim([Other()], tls=TLSConfig(server_pair.key_pem, server_pair.cert_pem))
    try:
        peer = await connect_peer(
            running.port, grpc.ssl_channel_credentials(root_certificates=ca.cert_pem)
        )
        assert (await peer.invoke(["Ping"])).payload == b"pong"
        await peer.close()
        await peer.channel.close()
    finally:
        await running.server.stop(grace=None)


async def test_mutual_tls_requires_a_client_certificate() -> None:
    ca = make_ca("tlsca.hospital.mip.local")
    client_ca = make_ca("tlsca.peers.mip.local")
    server_pair = _server_pair(ca)
    client_pair = issue(client_ca, make_name(CN="peer0.hospital.mip.local"))
    tls = TLSConfig(server_pair.key_pem, server_pair.cert_pem, client_ca=client_ca.cert_pem)
    running = await start_shim([Other()], tls=tls)
    try:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=ca.cert_pem,
            private_key=client_pair.key_pem,
            certificate_chain=client_pair.cert_pem,
        )
        peer = await connect_peer(running.port, credentials)
        assert (await peer.invoke(["Ping"])).payload == b"pong"
        await peer.close()
        await peer.channel.close()

        for bad in (
            grpc.ssl_channel_credentials(root_certificates=ca.cert_pem),
            grpc.ssl_channel_credentials(
                root_certificates=ca.cert_pem,
                # A client certificate from a CA the server does not trust.
                private_key=(other := issue(make_ca("rogue"), make_name(CN="x"))).key_pem,
                certificate_chain=other.cert_pem,
            ),
        ):
            with pytest.raises((grpc.aio.AioRpcError, asyncio.TimeoutError)):
                await asyncio.wait_for(connect_peer(running.port, bad), 5)
    finally:
        await running.server.stop(grace=None)


def test_config_from_env(tmp_path: Path) -> None:
    base = {"CHAINCODE_SERVER_ADDRESS": "127.0.0.1:9999", "CHAINCODE_ID": CHAINCODE_ID}
    config = ServerConfig.from_env(base)
    assert (config.address, config.chaincode_id, config.tls) == (
        "127.0.0.1:9999",
        CHAINCODE_ID,
        None,
    )
    assert config.contract_spec == DEFAULT_CONTRACT

    (tmp_path / "k.pem").write_bytes(b"KEY")
    (tmp_path / "c.pem").write_bytes(b"CERT")
    (tmp_path / "ca.pem").write_bytes(b"CA")
    tls_env = {
        **base,
        "CHAINCODE_TLS_DISABLED": "false",
        "CHAINCODE_TLS_KEY": str(tmp_path / "k.pem"),
        "CHAINCODE_TLS_CERT": str(tmp_path / "c.pem"),
    }
    assert ServerConfig.from_env(tls_env).tls == TLSConfig(b"KEY", b"CERT", None)
    mutual = ServerConfig.from_env(
        {**tls_env, "CHAINCODE_CLIENT_CA_CERT": str(tmp_path / "ca.pem")}
    )
    assert mutual.tls is not None and mutual.tls.client_ca == b"CA"

    for broken, match in [
        ({"CHAINCODE_ID": "x"}, "CHAINCODE_SERVER_ADDRESS"),
        ({"CHAINCODE_SERVER_ADDRESS": "a:1"}, "CHAINCODE_ID"),
        ({**base, "CHAINCODE_TLS_DISABLED": "maybe"}, "true or false"),
        ({**base, "CHAINCODE_TLS_DISABLED": "false"}, "CHAINCODE_TLS_KEY"),
        ({**tls_env, "CHAINCODE_TLS_CERT": str(tmp_path / "missing.pem")}, "cannot read"),
    ]:
        with pytest.raises(ConfigError, match=match):
            ServerConfig.from_env(broken)


def test_load_contracts() -> None:
    contracts = load_contracts("shim_contracts:Probe, shim_contracts:Other")
    assert [type(c) for c in contracts] == [Probe, Other]
    for bad in ["nocolon", "no_such_module_xyz:C", "shim_contracts:Nope", "shim_contracts:Point"]:
        with pytest.raises(ConfigError):
            load_contracts(bad)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_python_dash_m_chaincode_serves_the_asset_contract() -> None:
    port = _free_port()
    env = {
        **os.environ,
        "CHAINCODE_SERVER_ADDRESS": f"127.0.0.1:{port}",
        "CHAINCODE_ID": CHAINCODE_ID,
        "PYTHONPATH": str(REPO),
    }
    env.pop("CHAINCODE_CONTRACT", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "chaincode"], env=env, cwd=REPO, stderr=subprocess.PIPE
    )
    try:
        peer = None
        for _ in range(100):
            try:
                peer = await asyncio.wait_for(connect_peer(port), 2)
                break
            except (TimeoutError, grpc.aio.AioRpcError):
                await asyncio.sleep(0.1)
        assert peer is not None, "the chaincode server did not come up"
        assert peer.registered_id == CHAINCODE_ID
        assert (await peer.invoke(["InitLedger"])).status == 200
        out = await peer.invoke(["ReadAsset", "asset1"])
        assert out.json()["Owner"] == "Tomoko"
        await peer.close()
        await peer.channel.close()
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr.decode()
    assert b"listening on" in stderr and b"shutting down" in stderr


def test_python_dash_m_chaincode_reports_bad_config() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAINCODE_")}
    env["PYTHONPATH"] = str(REPO)
    result = subprocess.run(
        [sys.executable, "-m", "chaincode"], env=env, cwd=REPO, capture_output=True, timeout=30
    )
    assert result.returncode == 2
    assert b"CHAINCODE_SERVER_ADDRESS must be set" in result.stderr


async def _serves_a_new_stream(port: int) -> None:
    peer = await connect_peer(port)
    assert (await peer.invoke(["Ping"])).payload == b"pong"
    await peer.close()
    await peer.channel.close()


async def test_an_unknown_method_is_unimplemented_and_the_server_serves_on() -> None:
    running = await start_shim([Other()])
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await channel.unary_unary("/protos.Chaincode/Nope")(b"", timeout=5)
            assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
        await _serves_a_new_stream(running.port)
    finally:
        await running.server.stop(grace=None)


async def test_a_message_that_does_not_parse_ends_only_its_stream() -> None:
    running = await start_shim([Other()])
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            call = channel.stream_stream("/protos.Chaincode/Connect")()  # raw bytes both ways
            assert await asyncio.wait_for(call.read(), 5)  # REGISTER
            await call.write(b"\xff\xff\xff")  # not a ChaincodeMessage
            assert await asyncio.wait_for(call.read(), 5) is grpc.aio.EOF
            assert await call.code() == grpc.StatusCode.OK
        await _serves_a_new_stream(running.port)
    finally:
        await running.server.stop(grace=None)


async def test_stop_ends_open_streams_after_the_grace_period() -> None:
    running = await start_shim([Other()])
    peer = await connect_peer(running.port)
    assert (await peer.invoke(["Ping"])).payload == b"pong"
    start = time.monotonic()
    await asyncio.wait_for(running.server.stop(grace=0.2), 10)
    assert 0.2 <= time.monotonic() - start < 5
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await asyncio.wait_for(peer._reader, 5)  # the peer's read loop sees the stream end
    # gRPC core cancels the server's calls with a GOAWAY: the peer sees UNAVAILABLE.
    assert info.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
    await peer.channel.close()
