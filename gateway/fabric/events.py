"""Chaincode events: the signed ChaincodeEventsRequest and the async stream of events."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

import grpc

from ._protos import ab_pb2, gateway_pb2
from .errors import ChaincodeEventsError, from_rpc_error
from .session import Session

if TYPE_CHECKING:
    from .checkpoint import Checkpoint

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChaincodeEvent:
    """An event set by a committed, valid transaction (stub.SetEvent in the chaincode)."""

    block_number: int
    transaction_id: str
    chaincode: str
    name: str
    payload: bytes = field(repr=False)

    @property
    def tx_id(self) -> str:
        """Fabric's own name for the transaction id (ChaincodeEvent.tx_id)."""
        return self.transaction_id


def start_position(
    start_block: int | None, checkpoint: Checkpoint | None
) -> tuple[ab_pb2.SeekPosition, str]:
    """Where to start and which transaction to skip past.

    A non-empty checkpoint wins over start_block (as in fabric-gateway); with neither,
    the stream starts at the next block committed.
    """
    if checkpoint is not None and (checkpoint.block_number or checkpoint.transaction_id):
        return (
            ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=checkpoint.block_number)),
            checkpoint.transaction_id,
        )
    if start_block is not None:
        if start_block < 0:
            raise ValueError("start_block must not be negative")
        return ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=start_block)), ""
    return ab_pb2.SeekPosition(next_commit=ab_pb2.SeekNextCommit()), ""


def signed_events_request(
    session: Session,
    channel: str,
    chaincode: str,
    start_block: int | None = None,
    checkpoint: Checkpoint | None = None,
) -> gateway_pb2.SignedChaincodeEventsRequest:
    if not chaincode:
        raise ValueError("chaincode name must not be empty")
    position, after_tx = start_position(start_block, checkpoint)
    request = gateway_pb2.ChaincodeEventsRequest(
        channel_id=channel,
        chaincode_id=chaincode,
        identity=session.identity.serialize(),
        start_position=position,
        after_transaction_id=after_tx,
    ).SerializeToString()
    return gateway_pb2.SignedChaincodeEventsRequest(
        request=request, signature=session.signer.sign(request)
    )


class ChaincodeEventStream:
    """Async iterator of ChaincodeEvent; close it (or use `async with`) to stop listening.

    The stream does not checkpoint by itself: call `checkpointer.checkpoint_event(event)` once
    an event is processed, so that a restarted listener resumes right after it.
    """

    def __init__(
        self,
        session: Session,
        request: gateway_pb2.SignedChaincodeEventsRequest,
        timeout: float | None,
    ) -> None:
        self._session = session
        self._request = request
        self._timeout = timeout
        self._call: Any = None
        self._events: AsyncIterator[ChaincodeEvent] | None = None

    def _ensure_started(self) -> AsyncIterator[ChaincodeEvent]:
        if self._events is None:
            self._call = self._session.stub.ChaincodeEvents(self._request, timeout=self._timeout)
            self._events = self._iterate()
        return self._events

    async def _iterate(self) -> AsyncIterator[ChaincodeEvent]:
        try:
            async for response in self._call:
                for event in response.events:
                    yield ChaincodeEvent(
                        block_number=int(response.block_number),
                        transaction_id=event.tx_id,
                        chaincode=event.chaincode_id,
                        name=event.event_name,
                        payload=bytes(event.payload),
                    )
        except grpc.RpcError as exc:
            if isinstance(exc, grpc.aio.AioRpcError) and exc.code() == grpc.StatusCode.CANCELLED:
                return
            raise from_rpc_error(exc, ChaincodeEventsError) from None

    def __aiter__(self) -> ChaincodeEventStream:
        return self

    async def __anext__(self) -> ChaincodeEvent:
        return await self._ensure_started().__anext__()

    async def aclose(self) -> None:
        if self._call is not None:
            self._call.cancel()
        if self._events is not None:
            await self._events.aclose()  # type: ignore[attr-defined]

    async def __aenter__(self) -> ChaincodeEventStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
