"""The shim side of one peer<->chaincode stream (Fabric 2.5 chaincode protocol).

The handler is driven by its transport: `open(send)` registers, `feed(msg)` acts on each
message from the peer, `close()` ends the stream. Every INIT/TRANSACTION runs as its own
asyncio task. A stub call parks a future on its transaction's `TxState`; `feed` resolves it
when the RESPONSE/ERROR for that (channel, tx id) arrives. Only message types and short tx
ids are ever logged, never payloads.

`send` never waits: the transport queues what it cannot write yet (gRPC allows one write in
flight per stream) and writes it when the write before completes, so a message costs no task
wake-up and the handler always drains what the peer sends.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import AsyncIterator, Callable
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

# The transport's send: queues or writes `msg` without waiting; raises once the stream is gone.
Sender = Callable[[Message], None]


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

    A transport calls `open(send)`, then `feed(msg)` for each message from the peer until
    it returns False or the stream ends, then `close()`. `connect(incoming)` is the same
    protocol as an async generator of outgoing messages over an async iterator of incoming
    ones (for driving a handler without gRPC).
    """

    def __init__(self, chaincode_id: str, chaincode: Chaincode) -> None:
        self._chaincode_id = chaincode_id
        self._chaincode = chaincode
        self._state = _State.CREATED
        self._out: Sender | None = None
        self._active: dict[tuple[str, str], TxState] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def ready(self) -> bool:
        return self._state is _State.READY

    # --- the transport's side ----------------------------------------------------------

    def open(self, send: Sender) -> None:
        """Start the stream: REGISTER goes out through `send`."""
        self._out = send
        register = chaincode_pb2.ChaincodeID(name=self._chaincode_id).SerializeToString()
        _log.info("registering chaincode %s", self._chaincode_id)
        self._post(_MSG(type=_MSG.REGISTER, payload=register))

    def feed(self, msg: Message) -> bool:
        """Act on one message from the peer; False when the stream must end.

        A protocol violation is answered with ERROR and ends the stream, as the Go shim does.
        """
        if self._closed:
            return False
        error = self._receive(msg)
        if error is None:
            return True
        self._post(error)
        _log.warning("chaincode stream ended: %s", error.payload.decode())
        return False

    def close(self) -> None:
        """The stream ended: every waiting stub call fails and running transactions stop."""
        if not self._closed:
            _log.info("chaincode stream ended")
        self._fail_waiting()
        for task in list(self._tasks):
            task.cancel()

    async def connect(self, incoming: AsyncIterator[Message]) -> AsyncIterator[Message]:
        """The protocol as an async generator: yields every outgoing message until the
        stream ends (`incoming` is exhausted or the handler ends it)."""
        out: asyncio.Queue[Message | _Close] = asyncio.Queue()

        async def pump() -> None:
            async for msg in incoming:
                if not self.feed(msg):
                    return

        self.open(out.put_nowait)
        runner = asyncio.create_task(pump())
        runner.add_done_callback(lambda _task: out.put_nowait(_CLOSE))
        try:
            while not isinstance(msg := await out.get(), _Close):
                yield msg
        finally:
            runner.cancel()
            self.close()

    # --- outgoing ----------------------------------------------------------------------

    def _send(self, msg: Message) -> None:
        """Hand `msg` to the transport; StreamClosedError once the stream has ended.

        A transport that fails to take it has lost the stream: every waiting stub call
        fails at once rather than when the end is noticed.
        """
        if self._closed or self._out is None:
            raise StreamClosedError("the stream to the peer closed")
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug("send %s [%s]", _TYPE_NAME.get(msg.type), short_txid(msg.txid))
        try:
            self._out(msg)
        except Exception as exc:
            self._fail_waiting()
            if isinstance(exc, StreamClosedError):
                raise
            raise StreamClosedError("the stream to the peer closed") from exc

    def _post(self, msg: Message) -> None:
        """`_send` where nobody waits for the outcome: a closed stream only gets logged."""
        try:
            self._send(msg)
        except StreamClosedError:
            _log.debug(
                "%s [%s] not sent: stream closed", _TYPE_NAME.get(msg.type), short_txid(msg.txid)
            )

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _fail_waiting(self) -> None:
        self._closed = True
        for tx in self._active.values():
            if tx.future is not None and not tx.future.done():
                tx.future.set_exception(StreamClosedError("the stream to the peer closed"))

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
            self._send(reply)
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
                self._send(
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
