"""Per-transaction bookkeeping shared by the stream handler and the stub."""

from __future__ import annotations

import asyncio
from typing import Protocol

from chaincode.shim._protos import Message


class TxState:
    """One running transaction: its (channel, tx id) and the stub call awaiting a reply.

    The peer answers a stub call with a message carrying the same channel and tx id, so at
    most one call per transaction may be in flight; `lock` queues a contract's concurrent
    calls (e.g. `asyncio.gather` of two reads) instead of letting their replies be confused.
    """

    __slots__ = ("channel_id", "future", "lock", "txid")

    def __init__(self, channel_id: str, txid: str) -> None:
        self.channel_id = channel_id
        self.txid = txid
        self.future: asyncio.Future[Message] | None = None
        self.lock = asyncio.Lock()


class PeerCaller(Protocol):
    """What a stub needs from the stream: send one request and await the peer's reply."""

    async def call(self, tx: TxState, msg_type: int, payload: bytes) -> bytes:
        """Send `payload` as a `msg_type` message for `tx`; return the RESPONSE payload.

        Raises `PeerError` when the peer answers ERROR.
        """
        ...


def short_txid(txid: str) -> str:
    """The first 8 characters of a tx id, as Fabric logs them."""
    return txid[:8]
