"""The shim side of one peer<->chaincode stream (Fabric 2.5 chaincode protocol).

One reader consumes the peer's messages; every INIT/TRANSACTION runs as its own asyncio
task. A stub call parks a future on its transaction's `TxState`; the reader resolves it when
the RESPONSE/ERROR for that (channel, tx id) arrives. Only message types and short tx ids are
ever logged, never payloads.

Outgoing messages are written straight from the task that produces them (gRPC allows one
write in flight per stream): the task that finds the stream idle writes its message and then
any that other tasks queued meanwhile, so a message costs no extra task wake-up or queue hop.
The reader itself never waits on a write, so the shim always drains what the peer sends.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from chaincode.shim._protos import (
    DecodeError,
    Message,
    chaincode_pb2,
    shim_pb2,
)
from chaincode.shim.errors import PeerError, ProtocolError, ShimError, StreamClosedError
from chaincode.shim.stub import ChaincodeStub
from chaincode.shim.txstate import TxState, short_txid

_log = logging.getLogger("chaincode.shim")
_MSG = shim_pb2.ChaincodeMessage
_TYPE_NAME = {value: name for name, value in _MSG.Type.items()}
# Go shim: shim.ERROR = 500; an INIT whose response status is >= 500 is answered ERROR.
_ERROR_STATUS = 500
_KEEPALIVE = _MSG.KEEPALIVE
_RESPONSE = _MSG.RESPONSE
_ERROR = _MSG.ERROR
_TRANSACTION = _MSG.TRANSACTION
_INIT = _MSG.INIT

# read() returns the next message, or the `end` object given to `run` when the stream ends.
Reader = Callable[[], Awaitable[Any]]
Writer = Callable[[Message], Awaitable[None]]


class Chaincode(Protocol):
    """What the handler runs for each transaction (the router implements it)."""

    async def invoke(self, stub: ChaincodeStub) -> Message: ...


class _State(enum.Enum):
    CREATED = "created"
    ESTABLISHED = "established"
    READY = "ready"


class _Close:
    """Queue sentinel: end the stream."""


_CLOSE = _Close()


class StreamHandler:
    """Runs the chaincode protocol on one stream.

    `run(read, write)` drives it over a stream's read and write coroutines (the server passes
    grpc.aio's `context.read` / `context.write`); `connect(incoming)` is the same protocol as
    an async generator of outgoing messages over an async iterator of incoming ones.
    """

    def __init__(self, chaincode_id: str, chaincode: Chaincode) -> None:
        self._chaincode_id = chaincode_id
        self._chaincode = chaincode
        self._state = _State.CREATED
        self._write: Writer | None = None
        self._writing = False
        self._backlog: collections.deque[Message] = collections.deque()
        self._active: dict[tuple[str, str], TxState] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def ready(self) -> bool:
        return self._state is _State.READY

    # --- outgoing ----------------------------------------------------------------------

    async def _send(self, msg: Message) -> None:
        """Write `msg`, or queue it behind the write in flight (whose task then writes it).

        Raises StreamClosedError once the stream has ended or a write failed.
        """
        if self._closed or self._write is None:
            raise StreamClosedError("the stream to the peer closed")
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug("send %s [%s]", _TYPE_NAME.get(msg.type), short_txid(msg.txid))
        if self._writing:
            self._backlog.append(msg)
            return
        self._writing = True
        write = self._write
        backlog = self._backlog
        try:
            await write(msg)
            while backlog:
                await write(backlog.popleft())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The stream is broken: what other tasks queued will never go out, so fail every
            # waiting stub call now rather than when the reader notices.
            self._fail_waiting()
            raise StreamClosedError("the stream to the peer closed") from exc
        finally:
            self._writing = False

    def _post(self, msg: Message) -> None:
        """Send from the reader without waiting: queue behind a write or hand to a task."""
        if self._writing:
            self._backlog.append(msg)
        else:
            self._spawn(self._send_quietly(msg))

    async def _send_quietly(self, msg: Message) -> None:
        try:
            await self._send(msg)
        except StreamClosedError:
            _log.debug(
                "%s [%s] not sent: stream closed", _TYPE_NAME.get(msg.type), short_txid(msg.txid)
            )

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self, read: Reader, write: Writer, end: object = None) -> None:
        """Register, then serve the peer's messages until `read()` returns `end`.

        A protocol violation is answered with ERROR and ends the stream (as the Go shim
        does); either way every waiting stub call fails and running transactions stop.
        """
        self._write = write
        register = chaincode_pb2.ChaincodeID(name=self._chaincode_id).SerializeToString()
        _log.info("registering chaincode %s", self._chaincode_id)
        try:
            await self._send(_MSG(type=_MSG.REGISTER, payload=register))
            while (msg := await read()) is not end:
                error = self._receive(msg)
                if error is not None:
                    await self._send(error)
                    raise ProtocolError(error.payload.decode())
        except ShimError as exc:
            _log.warning("chaincode stream ended: %s", exc)
        else:
            _log.info("chaincode stream ended")
        finally:
            self._shutdown()

    async def connect(self, incoming: AsyncIterator[Message]) -> AsyncIterator[Message]:
        """`run` as an async generator: yields every outgoing message until the stream ends."""
        out: asyncio.Queue[Message | _Close] = asyncio.Queue()
        messages = aiter(incoming)

        async def read() -> Message | None:
            return await anext(messages, None)

        async def write(msg: Message) -> None:
            out.put_nowait(msg)

        runner = asyncio.create_task(self.run(read, write))
        runner.add_done_callback(lambda _task: out.put_nowait(_CLOSE))
        try:
            while not isinstance(msg := await out.get(), _Close):
                yield msg
        finally:
            runner.cancel()
            self._shutdown()

    def _fail_waiting(self) -> None:
        self._closed = True
        self._backlog.clear()
        for tx in self._active.values():
            if tx.future is not None and not tx.future.done():
                tx.future.set_exception(StreamClosedError("the stream to the peer closed"))

    def _shutdown(self) -> None:
        self._fail_waiting()
        for task in list(self._tasks):
            task.cancel()

    # --- incoming ----------------------------------------------------------------------

    def _receive(self, msg: Message) -> Message | None:
        """Act on one message from the peer; returns the ERROR to send for a protocol error."""
        msg_type = msg.type
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug("recv %s [%s]", _TYPE_NAME.get(msg_type), short_txid(msg.txid))
        if self._state is _State.READY:
            if msg_type == _RESPONSE or msg_type == _ERROR:
                self._deliver(msg)
            elif msg_type == _TRANSACTION or msg_type == _INIT:
                self._start_transaction(msg)
            elif msg_type == _KEEPALIVE:
                self._post(msg)
            else:
                return self._protocol_error(msg)
        elif msg_type == _KEEPALIVE:
            self._post(msg)
        elif self._state is _State.ESTABLISHED and msg_type == _MSG.READY:
            # READY may carry ChaincodeAdditionalParams (Fabric 3 write batching); a 2.5
            # peer sends none and this shim never batches, so the payload is ignored.
            self._state = _State.READY
            _log.info("chaincode %s ready", self._chaincode_id)
        elif self._state is _State.CREATED and msg_type == _MSG.REGISTERED:
            self._state = _State.ESTABLISHED
        else:
            return self._protocol_error(msg)
        return None

    def _protocol_error(self, msg: Message) -> Message:
        text = (
            f"[{short_txid(msg.txid)}] Chaincode handler cannot handle message "
            f"({_TYPE_NAME.get(msg.type, msg.type)}) while in state: {self._state.value}"
        )
        return _MSG(type=_ERROR, payload=text.encode(), txid=msg.txid)

    def _deliver(self, msg: Message) -> None:
        tx = self._active.get((msg.channel_id, msg.txid))
        future = tx.future if tx is not None else None
        if future is None or future.done():
            _log.warning(
                "dropping %s [%s]: no stub call is waiting for it",
                _TYPE_NAME.get(msg.type),
                short_txid(msg.txid),
            )
            return
        future.set_result(msg)

    # --- transactions ------------------------------------------------------------------

    def _start_transaction(self, msg: Message) -> None:
        key = (msg.channel_id, msg.txid)
        if key in self._active:
            _log.warning("refusing duplicate transaction [%s]", short_txid(msg.txid))
            text = f"[{short_txid(msg.txid)}] a transaction with this id is already running"
            self._post(
                _MSG(type=_ERROR, payload=text.encode(), txid=msg.txid, channel_id=msg.channel_id)
            )
            return
        tx = TxState(msg.channel_id, msg.txid)
        self._active[key] = tx
        self._spawn(self._run_transaction(tx, msg))

    async def _run_transaction(self, tx: TxState, msg: Message) -> None:
        try:
            reply = await self._execute(tx, msg)
        except Exception as exc:
            # The router answers every contract failure itself; reaching here is a shim bug.
            # Answer ERROR anyway so the peer does not wait for its execute timeout.
            _log.error(
                "transaction [%s] failed inside the shim (%s)",
                short_txid(tx.txid),
                type(exc).__name__,
            )
            reply = _MSG(
                type=_MSG.ERROR,
                payload=b"internal chaincode shim error",
                txid=tx.txid,
                channel_id=tx.channel_id,
            )
        finally:
            del self._active[(tx.channel_id, tx.txid)]
        try:
            await self._send(reply)
        except StreamClosedError:
            _log.debug("reply for [%s] not sent: stream closed", short_txid(tx.txid))

    async def _execute(self, tx: TxState, msg: Message) -> Message:
        try:
            chaincode_input = chaincode_pb2.ChaincodeInput.FromString(msg.payload)
            stub = ChaincodeStub(
                self, tx, chaincode_input, msg.proposal if msg.HasField("proposal") else None
            )
        except (DecodeError, ShimError) as exc:
            text = f"failed to create new ChaincodeStub: {exc}"
            return _MSG(
                type=_MSG.ERROR, payload=text.encode(), txid=tx.txid, channel_id=tx.channel_id
            )
        response = await self._chaincode.invoke(stub)
        if msg.type == _MSG.INIT and response.status >= _ERROR_STATUS:
            reply = _MSG(
                type=_MSG.ERROR,
                payload=response.message.encode(),
                txid=tx.txid,
                channel_id=tx.channel_id,
            )
        else:
            reply = _MSG(
                type=_MSG.COMPLETED,
                payload=response.SerializeToString(),
                txid=tx.txid,
                channel_id=tx.channel_id,
            )
        if stub.event is not None:
            reply.chaincode_event.CopyFrom(stub.event)
        return reply

    # --- PeerCaller --------------------------------------------------------------------

    async def call(self, tx: TxState, msg_type: int, payload: bytes) -> bytes:
        """Send one request for `tx` and await the peer's RESPONSE (or raise on ERROR)."""
        async with tx.lock:
            if self._closed:
                raise StreamClosedError("the stream to the peer closed")
            future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
            tx.future = future
            try:
                await self._send(
                    _MSG(type=msg_type, payload=payload, txid=tx.txid, channel_id=tx.channel_id)
                )
                reply = await future
            finally:
                tx.future = None
        if reply.type == _RESPONSE:
            return reply.payload
        if reply.type == _ERROR:
            raise PeerError(reply.payload.decode("utf-8", "replace"))
        raise ProtocolError(
            f"[{short_txid(tx.txid)}] incorrect chaincode message "
            f"{_TYPE_NAME.get(reply.type, reply.type)} received. Expecting RESPONSE or ERROR"
        )
