"""Devnet keeps serving when the chaincode dies; mutual TLS; range queries with pagination."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import grpc
import pytest
from devnet_client import TestClient, start_devnet
from fabric_protos.peer import transaction_pb2

from network.devnet import pki

Code = transaction_pb2.TxValidationCode


async def test_chaincode_restarted_and_redialled(tmp_path: Path) -> None:
    net = await start_devnet(tmp_path / "dn")
    client = TestClient(net.data_dir, net.port)
    try:
        await client.submit_tx("CreateAsset", "r1", "red", "1", "x", "1")
        old_pid = net.chaincode.proc.pid
        os.kill(old_pid, signal.SIGKILL)
        deadline = asyncio.get_running_loop().time() + 20
        while True:  # the supervisor restarts it and every peer redials
            try:
                _, code, _ = await client.submit_tx("CreateAsset", "r2", "red", "1", "x", "1")
                break
            except grpc.aio.AioRpcError:
                assert asyncio.get_running_loop().time() < deadline, "chaincode not back"
                await asyncio.sleep(0.2)
        assert code == Code.VALID
        assert net.chaincode.proc.pid != old_pid
        assert json.loads(await client.query("ReadAsset", "r1"))["ID"] == "r1"
    finally:
        await client.close()
        await net.stop()


async def test_mutual_tls(tmp_path: Path) -> None:
    net = await start_devnet(tmp_path / "dn", mtls=True)
    data = net.data_dir
    no_cert = TestClient(data, net.port)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await no_cert.query("GetAllAssets")
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await no_cert.close()
    user = (data / "organizations" / "peerOrganizations" / "school.mip.local" / "users" /
            "User1@school.mip.local" / "tls")
    tls_root = pki.tlsca_cert_path(data, pki.DEFAULT_PEER_ORGS[0]).read_bytes()
    channel = grpc.aio.secure_channel(
        f"127.0.0.1:{net.port}",
        grpc.ssl_channel_credentials(tls_root, (user / "client.key").read_bytes(),
                                     (user / "client.crt").read_bytes()),
        options=[("grpc.ssl_target_name_override", "peer0.hospital.mip.local")])
    client = TestClient(data, net.port, "SchoolMSP")
    await client.channel.close()
    client.channel = channel
    from fabric_protos.gateway import gateway_pb2_grpc

    client.stub = gateway_pb2_grpc.GatewayStub(channel)
    try:
        _, code, _ = await client.submit_tx("CreateAsset", "m1", "red", "1", "x", "1")
        assert code == Code.VALID
    finally:
        await client.close()
        await net.stop()


async def test_paginated_range_query(tmp_path: Path) -> None:
    net = await start_devnet(tmp_path / "dn")
    client = TestClient(net.data_dir, net.port)
    try:
        for i in range(5):
            await client.submit_tx("CreateAsset", f"pg{i}", "red", "1", "x", "1")
        page = json.loads(await client.query("RangeQuery", "pg0", "pg9", "2", ""))
        assert [r["key"] for r in page["results"]] == ["pg0", "pg1"]
        assert page["fetchedRecordsCount"] == 2 and page["bookmark"] == "pg2"
        rest = json.loads(await client.query("RangeQuery", "pg0", "pg9", "10", page["bookmark"]))
        assert [r["key"] for r in rest["results"]] == ["pg2", "pg3", "pg4"]
        assert rest["bookmark"] == ""
        every = json.loads(await client.query("GetAllAssets"))
        assert {a["ID"] for a in every} >= {f"pg{i}" for i in range(5)}
    finally:
        await client.close()
        await net.stop()


async def test_broken_contract_fails_fast(tmp_path: Path) -> None:
    from network.devnet.server import DevnetError

    started = asyncio.get_running_loop().time()
    with pytest.raises(DevnetError, match="keeps exiting"):
        await start_devnet(tmp_path / "dn", contract="no_such_module:Nothing")
    assert asyncio.get_running_loop().time() - started < 30
