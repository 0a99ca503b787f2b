"""The framed Unix-socket link devnet uses for the chaincode subprocess it starts itself."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path
from typing import Any

import pytest
from shim_contracts import Probe
from shim_testkit import CHANNEL, MSG, build_proposal, default_user

from chaincode.shim import ConfigError, Router, ServerConfig
from chaincode.shim._protos import chaincode_pb2, shim_pb2
from chaincode.shim.local_link import MAX_MESSAGE_SIZE
from chaincode.shim.server import ChaincodeServer

FRAME = struct.Struct(">I")


async def _send(writer: asyncio.StreamWriter, msg: Any) -> None:
    data = msg.SerializeToString()
    writer.write(FRAME.pack(len(data)) + data)
    await writer.drain()


async def _recv(reader: asyncio.StreamReader) -> Any:
    (size,) = FRAME.unpack(await asyncio.wait_for(reader.readexactly(4), 5))
    return shim_pb2.ChaincodeMessage.FromString(await reader.readexactly(size))


async def test_transaction_over_the_local_link(tmp_path: Path) -> None:
    path = tmp_path / "cc.sock"
    path.write_bytes(b"")  # a stale file where the socket goes is replaced
    config = ServerConfig(address=f"local:{path}", chaincode_id="mip:local")
    server = ChaincodeServer(config, Router([Probe()]))
    await server.start()
    waiter = asyncio.create_task(server.wait())
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        register = await _recv(reader)
        assert register.type == MSG.REGISTER
        assert chaincode_pb2.ChaincodeID.FromString(register.payload).name == "mip:local"
        await _send(writer, MSG(type=MSG.REGISTERED))
        await _send(writer, MSG(type=MSG.READY))
        built = build_proposal(default_user(), [b"Probe:Get", b"k"])
        payload = chaincode_pb2.ChaincodeInput(args=[b"Probe:Get", b"k"]).SerializeToString()
        await _send(
            writer,
            MSG(
                type=MSG.TRANSACTION,
                payload=payload,
                txid=built.txid,
                channel_id=CHANNEL,
                proposal=built.signed,
            ),
        )
        request = await _recv(reader)
        assert request.type == MSG.GET_STATE and request.txid == built.txid
        assert shim_pb2.GetState.FromString(request.payload).key == "k"
        await _send(
            writer, MSG(type=MSG.RESPONSE, payload=b"v", txid=built.txid, channel_id=CHANNEL)
        )
        done = await _recv(reader)
        assert done.type == MSG.COMPLETED and done.txid == built.txid
        assert not waiter.done()
    finally:
        writer.close()
        await server.stop()
    await asyncio.wait_for(waiter, 5)  # wait() returns once stopped


async def test_oversized_frame_ends_the_stream(tmp_path: Path) -> None:
    path = tmp_path / "cc.sock"
    server = ChaincodeServer(
        ServerConfig(address=f"local:{path}", chaincode_id="x"), Router([Probe()])
    )
    await server.start()
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        assert (await _recv(reader)).type == MSG.REGISTER
        writer.write(FRAME.pack(MAX_MESSAGE_SIZE + 1))
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # the shim hung up
    finally:
        writer.close()
        await server.stop()


def test_local_link_takes_no_tls() -> None:
    env = {
        "CHAINCODE_SERVER_ADDRESS": "local:/tmp/x.sock",
        "CHAINCODE_ID": "x",
        "CHAINCODE_TLS_DISABLED": "false",
        "CHAINCODE_TLS_KEY": "k",
        "CHAINCODE_TLS_CERT": "c",
    }
    with pytest.raises(ConfigError, match="no TLS"):
        ServerConfig.from_env(env)
