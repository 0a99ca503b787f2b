"""Async iterators over the peer's range, rich-query and history results.

The peer returns results in batches; when a batch says `has_more`, the next one is fetched
with QUERY_STATE_NEXT. QUERY_STATE_CLOSE is only sent for an iterator the peer still holds
(one whose last batch said `has_more`): the peer drops exhausted iterators itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, TypeVar

from chaincode.shim._protos import DecodeError, Message, kv_query_result_pb2, shim_pb2
from chaincode.shim.errors import ProtocolError
from chaincode.shim.txstate import PeerCaller, TxState

T = TypeVar("T")
_MSG = shim_pb2.ChaincodeMessage


def _parse_query_response(payload: bytes) -> Message:
    try:
        return shim_pb2.QueryResponse.FromString(payload)
    except DecodeError:
        raise ProtocolError("the peer sent a QueryResponse that does not parse") from None


def parse_kv(result_bytes: bytes) -> tuple[str, bytes]:
    kv = kv_query_result_pb2.KV.FromString(result_bytes)
    return kv.key, kv.value


def parse_key_modification(result_bytes: bytes) -> Message:
    return kv_query_result_pb2.KeyModification.FromString(result_bytes)


@dataclass(frozen=True, slots=True)
class QueryPage:
    """One page of a paginated query: its results and the bookmark for the next page."""

    results: list[tuple[str, bytes]]
    bookmark: str
    fetched_records_count: int


class QueryIterator(Generic[T]):
    """`async for item in iterator`; the first request is sent on the first `__anext__`."""

    def __init__(
        self,
        caller: PeerCaller,
        tx: TxState,
        msg_type: int,
        request: bytes,
        parse: Callable[[bytes], T],
    ) -> None:
        self._caller = caller
        self._tx = tx
        self._msg_type = msg_type
        self._request = request
        self._parse = parse
        self._response: Message | None = None
        self._position = 0
        self._closed = False
        self._metadata: Message | None = None

    @property
    def metadata(self) -> Message | None:
        """Pagination metadata (bookmark, fetched count) once the peer has sent it."""
        return self._metadata

    def _take(self, response: Message) -> None:
        self._response = response
        self._position = 0
        if response.metadata:
            try:
                self._metadata = shim_pb2.QueryResponseMetadata.FromString(response.metadata)
            except DecodeError:
                raise ProtocolError("the peer sent query metadata that does not parse") from None

    async def start(self) -> None:
        """Send the query now (otherwise it is sent on the first `__anext__`)."""
        if self._response is None:
            payload = await self._caller.call(self._tx, self._msg_type, self._request)
            self._take(_parse_query_response(payload))

    def __aiter__(self) -> QueryIterator[T]:
        return self

    async def __anext__(self) -> T:
        if self._closed:
            raise StopAsyncIteration
        if self._response is None:
            await self.start()
        response: Message = self._response
        while self._position >= len(response.results):
            if not response.has_more:
                raise StopAsyncIteration
            request = shim_pb2.QueryStateNext(id=response.id).SerializeToString()
            payload = await self._caller.call(self._tx, _MSG.QUERY_STATE_NEXT, request)
            response = _parse_query_response(payload)
            self._take(response)
        item = response.results[self._position].resultBytes
        self._position += 1
        try:
            return self._parse(item)
        except DecodeError:
            raise ProtocolError("the peer sent a query result that does not parse") from None

    async def collect(self) -> list[T]:
        """Read every remaining result."""
        return [item async for item in self]

    async def close(self) -> None:
        """Release the peer-side iterator if the peer still holds it."""
        if self._closed:
            return
        self._closed = True
        response = self._response
        if response is not None and response.has_more:
            request = shim_pb2.QueryStateClose(id=response.id).SerializeToString()
            await self._caller.call(self._tx, _MSG.QUERY_STATE_CLOSE, request)

    async def __aenter__(self) -> QueryIterator[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


StateQueryIterator = QueryIterator[tuple[str, bytes]]
HistoryQueryIterator = QueryIterator[Message]
