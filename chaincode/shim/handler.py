"""The shim side of one peer<->chaincode stream (Fabric 2.5 chaincode protocol).

One reader consumes the peer's messages; every INIT/TRANSACTION runs as its own asyncio
task; every outgoing message goes through one queue drained by the stream's single writer
(gRPC allows one writer per stream). A stub call parks a future on its transaction's
`TxState`; the reader resolves it when the RESPONSE/ERROR for that (channel, tx id) arrives.
Only message types and short tx ids are ever logged, never payloads.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import AsyncIterator
from typing import Protocol

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
    """Runs the chaincode protocol on one stream; `connect` is the outgoing message stream."""

    def __init__(self, chaincode_id: str, chaincode: Chaincode) -> None:
        self._chaincode_id = chaincode_id
        self._chaincode = chaincode
        self._state = _State.CREATED
        self._out: asyncio.Queue[Message | _Close] = asyncio.Queue()
        self._active: dict[tuple[str, str], TxState] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def ready(self) -> bool:
        return self._state is _State.READY

    # --- outgoing ----------------------------------------------------------------------

    def _send(self, msg: Message) -> None:
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug("send %s [%s]", _TYPE_NAME.get(msg.type), short_txid(msg.txid))
        self._out.put_nowait(msg)

    async def connect(self, incoming: AsyncIterator[Message]) -> AsyncIterator[Message]:
        """Register, then yield every outgoing message until the peer or the shim ends."""
        register = chaincode_pb2.ChaincodeID(name=self._chaincode_id).SerializeToString()
        _log.info("registering chaincode %s", self._chaincode_id)
        yield _MSG(type=_MSG.REGISTER, payload=register)
        reader = asyncio.create_task(self._read(incoming))
        reader.add_done_callback(lambda _task: self._out.put_nowait(_CLOSE))
        try:
            while True:
                msg = await self._out.get()
                if isinstance(msg, _Close):
                    break
                yield msg
        finally:
            reader.cancel()
            self._shutdown()
            if not reader.cancelled() and reader.done() and reader.exception() is not None:
                _log.warning("chaincode stream ended: %s", reader.exception())
            else:
                _log.info("chaincode stream ended")

    def _shutdown(self) -> None:
        self._closed = True
        for tx in self._active.values():
            if tx.future is not None and not tx.future.done():
                tx.future.set_exception(StreamClosedError("the stream to the peer closed"))
        for task in list(self._tasks):
            task.cancel()

    # --- incoming ----------------------------------------------------------------------

    async def _read(self, incoming: AsyncIterator[Message]) -> None:
        async for msg in incoming:
            msg_type = msg.type
            if _log.isEnabledFor(logging.DEBUG):
                _log.debug("recv %s [%s]", _TYPE_NAME.get(msg_type), short_txid(msg.txid))
            if msg_type == _MSG.KEEPALIVE:
                self._send(msg)
            elif self._state is _State.READY:
                if msg_type == _MSG.RESPONSE or msg_type == _MSG.ERROR:
                    self._deliver(msg)
                elif msg_type == _MSG.TRANSACTION or msg_type == _MSG.INIT:
                    self._start_transaction(msg)
                else:
                    self._protocol_error(msg)
            elif self._state is _State.ESTABLISHED and msg_type == _MSG.READY:
                # READY may carry ChaincodeAdditionalParams (Fabric 3 write batching); a 2.5
                # peer sends none and this shim never batches, so the payload is ignored.
                self._state = _State.READY
                _log.info("chaincode %s ready", self._chaincode_id)
            elif self._state is _State.CREATED and msg_type == _MSG.REGISTERED:
                self._state = _State.ESTABLISHED
            else:
                self._protocol_error(msg)

    def _protocol_error(self, msg: Message) -> None:
        text = (
            f"[{short_txid(msg.txid)}] Chaincode handler cannot handle message "
            f"({_TYPE_NAME.get(msg.type, msg.type)}) while in state: {self._state.value}"
        )
        self._send(_MSG(type=_MSG.ERROR, payload=text.encode(), txid=msg.txid))
        raise ProtocolError(text)

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
            self._send(
                _MSG(
                    type=_MSG.ERROR, payload=text.encode(), txid=msg.txid, channel_id=msg.channel_id
                )
            )
            return
        tx = TxState(msg.channel_id, msg.txid)
        self._active[key] = tx
        task = asyncio.get_running_loop().create_task(self._run_transaction(tx, msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
        self._send(reply)

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
            self._send(_MSG(type=msg_type, payload=payload, txid=tx.txid, channel_id=tx.channel_id))
            try:
                reply = await future
            finally:
                tx.future = None
        if reply.type == _MSG.RESPONSE:
            return reply.payload
        if reply.type == _MSG.ERROR:
            raise PeerError(reply.payload.decode("utf-8", "replace"))
        raise ProtocolError(
            f"[{short_txid(tx.txid)}] incorrect chaincode message "
            f"{_TYPE_NAME.get(reply.type, reply.type)} received. Expecting RESPONSE or ERROR"
        )
