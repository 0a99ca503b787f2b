"""Devnet's side of the framed Unix-socket link to the chaincode subprocess it starts.

The chaincode protocol's ChaincodeMessage protobufs, each framed as a 4-byte big-endian length
plus the serialized message (the shim's chaincode.shim.local_link serves it). gRPC costs a
completion-queue round trip through grpc.aio's poller thread per stream message on both ends;
this link costs one socket write per message and reads whatever arrived. External chaincode
servers (`--chaincode-address`) and real Fabric keep gRPC.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import grpc

from network.devnet._protos import DecodeError, chaincode_shim_pb2

SCHEME = "local:"
_FRAME = struct.Struct(">I")
MAX_MESSAGE_SIZE = 100 * 1024 * 1024  # the gRPC path's limit
CM: Any = chaincode_shim_pb2.ChaincodeMessage


class LocalCall:
    """One chaincode stream over the link, with the read/write/cancel of a grpc.aio call."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, address: str) -> LocalCall:
        reader, writer = await asyncio.open_unix_connection(address[len(SCHEME):])
        return cls(reader, writer)

    async def read(self) -> Any:
        """The next message, or grpc.aio.EOF once the chaincode closed the stream."""
        try:
            (size,) = _FRAME.unpack(await self._reader.readexactly(_FRAME.size))
            if size > MAX_MESSAGE_SIZE:
                raise ConnectionError(f"chaincode frame of {size} bytes is too large")
            data = await self._reader.readexactly(size)
        except asyncio.IncompleteReadError:
            return grpc.aio.EOF
        try:
            return CM.FromString(data)
        except DecodeError as exc:
            raise ConnectionError(f"cannot decode chaincode message: {exc}") from None

    async def write(self, msg: Any) -> None:
        data = msg.SerializeToString()
        if len(data) > MAX_MESSAGE_SIZE:
            raise ConnectionError(f"chaincode message of {len(data)} bytes is too large")
        self._writer.write(_FRAME.pack(len(data)) + data)
        await self._writer.drain()

    def cancel(self) -> None:
        self._writer.close()


def is_local(address: str) -> bool:
    return address.startswith(SCHEME)
