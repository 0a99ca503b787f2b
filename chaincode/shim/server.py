"""The chaincode-as-a-service gRPC server (`protos.Chaincode/Connect`).

Served on grpcio's completion-queue API from a `CompletionQueueEventLoop`
(chaincode/shim/completion_loop.py): each completed receive feeds the peer's message to the
stream's `StreamHandler` in the thread that polled it, and the handler's sends go out as gRPC
batches from the same thread. `python -m chaincode` runs that loop as its main loop; a
server started from any other event loop (tests, an embedding application) runs its own loop
in a thread of its own, and `start`/`wait`/`stop` are awaited from the caller's loop.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import grpc

# Private grpcio API, on purpose: grpcio's public servers (grpc.server, grpc.aio) poll the
# completion queue in a thread of their own; this one runs on the completion-queue event loop.
# grpcio is pinned exactly for it (tests/chaincode/shim/test_grpc_private_api.py).
from grpc._cython import cygrpc

from chaincode.shim._protos import DecodeError, Message, shim_pb2
from chaincode.shim.completion_loop import CompletionQueueEventLoop
from chaincode.shim.config import ServerConfig, TLSConfig
from chaincode.shim.errors import StreamClosedError
from chaincode.shim.handler import Chaincode, StreamHandler

_log = logging.getLogger("chaincode.shim.server")
_T = TypeVar("_T")
# The peer's own limits (fabric-chaincode-go shim/internal: 100 MiB both ways).
MAX_MESSAGE_SIZE = 100 * 1024 * 1024
CONNECT_METHOD = b"/protos.Chaincode/Connect"
_MESSAGE = shim_pb2.ChaincodeMessage

SERVER_OPTIONS: list[tuple[str, int]] = [
    ("grpc.max_send_message_length", MAX_MESSAGE_SIZE),
    ("grpc.max_receive_message_length", MAX_MESSAGE_SIZE),
    # Go shim: keepalive every minute, 20 s timeout, pings allowed without streams.
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # The peer's CCaaS client pings every 60 s (comm.DefaultKeepaliveOptions). gRPC core's
    # default enforcement (5 min minimum, 2 strikes) would answer that with GOAWAY
    # "too_many_pings", so allow pings down to 10 s and do not count strikes.
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_ping_strikes", 0),
    # No BDP probing: gRPC core answers incoming data with a PING to size the flow-control
    # window, so every burst of the peer's small messages costs a PING and its ACK at both
    # ends. Chaincode messages are small; the default window suffices. Measured against
    # Fabric 2.5.16 peers (bench_ledger.py --compare-node): ~10 % less chaincode CPU per
    # submit (1.35-1.42 -> 1.19-1.28 ms with two endorsements).
    ("grpc.http2.bdp_probe", 0),
]
# A server in a thread of its own is woken by its caller's start/stop through the loop's
# self-pipe, which the loop checks at least this often.
_THREAD_LOOP_MAX_WAIT_S = 0.005
_EMPTY_FLAGS = 0


def server_credentials(tls: TLSConfig) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials(
        [(tls.key, tls.cert)],
        root_certificates=tls.client_ca,
        require_client_auth=tls.client_ca is not None,
    )


class _PeerStream:
    """One Connect call: the peer's messages go to `handler.feed`, the handler's `send`s go
    out one batch at a time (gRPC allows one message write in flight per call)."""

    def __init__(
        self,
        call: cygrpc.Call,
        handler: StreamHandler,
        start_batch: Callable[[cygrpc.Call, tuple[Any, ...], Callable[[Any], None]], None],
    ) -> None:
        self._call = call
        self._handler = handler
        self._start_batch = start_batch
        self._backlog: collections.deque[bytes] = collections.deque()
        self._writing = False
        self._metadata_sent = False
        self._ending = False  # no more messages go out; the status follows the backlog
        self._status_sent = False

    def start(self) -> None:
        self._start_batch(
            self._call, (cygrpc.ReceiveCloseOnServerOperation(_EMPTY_FLAGS),), self._on_close
        )
        self._receive()
        self._handler.open(self.send)

    def _receive(self) -> None:
        self._start_batch(
            self._call, (cygrpc.ReceiveMessageOperation(_EMPTY_FLAGS),), self._on_message
        )

    def _on_message(self, event: Any) -> None:
        data = event.batch_operations[0].message() if event.success else None
        if data is None:  # the peer closed its side, or the call is gone
            self._end()
            return
        try:
            msg = _MESSAGE.FromString(data)
        except DecodeError:
            _log.warning("chaincode stream ended: the peer sent a message that does not parse")
            self._end()
            return
        self._receive()  # keep reading while this message is handled
        if not self._handler.feed(msg):
            self._end()

    def send(self, msg: Message) -> None:
        if self._ending:
            raise StreamClosedError("the stream to the peer closed")
        data = msg.SerializeToString()
        if self._writing:
            self._backlog.append(data)
        else:
            self._write(data)

    def _batch(self, op: Any, tag: Callable[[Any], None]) -> None:
        """Start `op`, preceded by the (empty) initial metadata on the call's first send."""
        ops: tuple[Any, ...] = (op,)
        if not self._metadata_sent:
            self._metadata_sent = True
            ops = (cygrpc.SendInitialMetadataOperation(None, _EMPTY_FLAGS), op)
        self._start_batch(self._call, ops, tag)

    def _write(self, data: bytes) -> None:
        self._writing = True
        self._batch(cygrpc.SendMessageOperation(data, _EMPTY_FLAGS), self._on_written)

    def _on_written(self, event: Any) -> None:
        self._writing = False
        if not event.success:  # the call is gone: nothing more can go out
            self._backlog.clear()
            self._end()
        elif self._backlog:
            self._write(self._backlog.popleft())
        elif self._ending:
            self._send_status()

    def _stop_handler(self) -> None:
        """No more messages go out; the handler's stub calls fail."""
        if not self._ending:
            self._ending = True
            self._handler.close()

    def _end(self) -> None:
        """Stop the handler; the OK status goes out once the backlog is written."""
        self._stop_handler()
        if not self._writing:
            self._send_status()

    def _send_status(self) -> None:
        if self._status_sent:
            return
        self._status_sent = True
        status = cygrpc.SendStatusFromServerOperation(
            None, cygrpc.StatusCode.ok, b"", _EMPTY_FLAGS
        )
        self._batch(status, _ignore)

    def _on_close(self, _event: Any) -> None:
        # The call is over (finished, or cancelled by the peer or by the server's stop).
        self._status_sent = True
        self._backlog.clear()
        self._stop_handler()


def _ignore(_event: Any) -> None:
    pass


class _Core:
    """The gRPC server on one CompletionQueueEventLoop; every method runs on that loop."""

    def __init__(self, config: ServerConfig, chaincode: Chaincode) -> None:
        self._config = config
        self._chaincode = chaincode
        self._server: cygrpc.Server | None = None
        self._loop: CompletionQueueEventLoop | None = None
        self._pending = 0  # batches started and not completed: the server is destroyed at 0
        self._stopping = False
        self._stopped: asyncio.Future[None] | None = None

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, CompletionQueueEventLoop)
        self._loop = loop
        self._stopped = loop.create_future()
        server = cygrpc.Server(tuple(SERVER_OPTIONS), False)
        server.register_completion_queue(loop.completion_queue)
        address = self._config.address.encode()
        tls = self._config.tls
        if tls is not None:
            # The cygrpc credentials inside grpc's public ServerCredentials (private attribute,
            # pinned grpcio): the public ssl_server_credentials builds them from the PEM files.
            port = server.add_http2_port(address, server_credentials(tls)._credentials)
        else:
            port = server.add_http2_port(address)
        if port == 0:
            server.destroy()
            raise OSError(f"cannot listen on {self._config.address}")
        server.start()
        self._server = server
        self._request_call()
        _log.info(
            "chaincode %s listening on %s (tls=%s, mutual=%s)",
            self._config.chaincode_id,
            self._config.address,
            tls is not None,
            tls is not None and tls.client_ca is not None,
        )
        return int(port)

    def _start_batch(
        self, call: cygrpc.Call, ops: tuple[Any, ...], tag: Callable[[Any], None]
    ) -> None:
        self._pending += 1
        call.start_server_batch(ops, self._tracked(tag))

    def _tracked(self, tag: Callable[[Any], None]) -> Callable[[Any], None]:
        def done(event: Any) -> None:
            self._pending -= 1
            try:
                tag(event)
            finally:
                self._maybe_destroy()

        return done

    def _request_call(self) -> None:
        assert self._server is not None and self._loop is not None
        self._pending += 1
        cq = self._loop.completion_queue
        self._server.request_call(cq, cq, self._tracked(self._on_call))

    def _on_call(self, event: Any) -> None:
        if not event.success:  # the server is shutting down
            return
        if not self._stopping:
            self._request_call()  # ready for the next peer
        call = event.call
        if event.call_details.method != CONNECT_METHOD:
            ops = (
                cygrpc.SendInitialMetadataOperation(None, _EMPTY_FLAGS),
                cygrpc.ReceiveCloseOnServerOperation(_EMPTY_FLAGS),
                cygrpc.SendStatusFromServerOperation(
                    None, cygrpc.StatusCode.unimplemented, b"Method not found!", _EMPTY_FLAGS
                ),
            )
            self._start_batch(call, ops, _ignore)
            return
        handler = StreamHandler(self._config.chaincode_id, self._chaincode)
        _PeerStream(call, handler, self._start_batch).start()

    async def stop(self, grace: float | None) -> None:
        assert self._server is not None and self._stopped is not None
        if not self._stopping:
            self._stopping = True
            self._pending += 1
            assert self._loop is not None
            self._server.shutdown(self._loop.completion_queue, self._tracked(_ignore))
        if grace is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._stopped), grace)
            except TimeoutError:
                pass
        if not self._stopped.done():
            self._server.cancel_all_calls()  # every peer stream ends with CANCELLED
        await self._stopped

    async def wait(self) -> None:
        assert self._stopped is not None
        await asyncio.shield(self._stopped)

    def _maybe_destroy(self) -> None:
        if self._stopping and self._pending == 0 and self._server is not None:
            self._server.destroy()
            self._server = None
            assert self._stopped is not None
            if not self._stopped.done():
                self._stopped.set_result(None)


class _LoopThread:
    """A CompletionQueueEventLoop running in a daemon thread, for servers started elsewhere."""

    def __init__(self) -> None:
        ready: concurrent.futures.Future[CompletionQueueEventLoop] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="chaincode-server", daemon=True
        )
        self._thread.start()
        self.loop = ready.result()

    def _run(self, ready: concurrent.futures.Future[CompletionQueueEventLoop]) -> None:
        loop = CompletionQueueEventLoop(max_wait=_THREAD_LOOP_MAX_WAIT_S)
        asyncio.set_event_loop(loop)
        ready.set_result(loop)
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()


class ChaincodeServer:
    """Serve a chaincode on `config.address`; `start` returns the bound port."""

    def __init__(self, config: ServerConfig, chaincode: Chaincode) -> None:
        self._core = _Core(config, chaincode)
        self._thread: _LoopThread | None = None
        self.port = 0

    async def _on_core(self, coro: Coroutine[Any, Any, _T]) -> _T:
        if self._thread is None:
            return await coro
        return await self._thread.run(coro)

    async def start(self) -> int:
        if not isinstance(asyncio.get_running_loop(), CompletionQueueEventLoop):
            self._thread = _LoopThread()
        try:
            self.port = await self._on_core(self._core.start())
        except BaseException:
            self._close_thread()
            raise
        return self.port

    async def wait(self) -> None:
        await self._on_core(self._core.wait())

    async def stop(self, grace: float | None = 1.0) -> None:
        try:
            await self._on_core(self._core.stop(grace))
        finally:
            self._close_thread()

    def _close_thread(self) -> None:
        if self._thread is not None:
            self._thread.close()
            self._thread = None
