"""An asyncio event loop that waits on gRPC's completion queue: the shim server's loop.

grpc.aio runs a second thread that waits on gRPC's completion queue and wakes the event loop
through a socket for every completed operation, so each message to or from the peer costs two
thread wake-ups and their system calls. Measured against Fabric 2.5 peers, context switches
were the largest single cost of the chaincode server (docs/ledger.md, Performance). This loop
instead waits on the completion queue itself: the thread that runs the contract's coroutines
also polls the sockets (grpcio's poller transport, chaincode/protocol/grpc_runtime.py) and completes
gRPC operations, so a message costs no thread hand-off at all.

Everything else is a standard `asyncio.SelectorEventLoop`: tasks, futures, timers, signal
handlers. The loop's own file descriptors (its self-pipe, the signal wake-up socket) are
checked without blocking after each wait, and a wait on the queue lasts at most `max_wait`
seconds, which bounds how late a signal or a `call_soon_threadsafe` from another thread is
seen.

The gRPC side is grpcio's Cython layer (`grpc._cython.cygrpc`), the same completion-queue API
grpcio's own synchronous server is written on. An operation is started with a callable as its
tag; the loop calls `tag(event)` when it completes.
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Callable, Mapping
from typing import Any

# Private grpcio API, on purpose: no public one lets the loop's own thread wait on the completion
# queue. grpcio is pinned exactly for it (tests/chaincode/shim/test_grpc_private_api.py).
from grpc._cython import cygrpc

# Idle wake-up bound for a loop that owns its process (signals are its only outside events).
DEFAULT_MAX_WAIT_S = 0.1
# A loop with callbacks always waiting still looks at its fds this often (in loop turns).
_BUSY_TURNS_PER_FD_CHECK = 32
_QUEUE_TIMEOUT = cygrpc.CompletionType.queue_timeout
_QUEUE_SHUTDOWN = cygrpc.CompletionType.queue_shutdown

Tag = Callable[[Any], None]


class _CompletionQueueSelector(selectors.BaseSelector):
    """The loop's selector: blocks in the completion queue, dispatching its events."""

    def __init__(self, queue: cygrpc.CompletionQueue, max_wait: float) -> None:
        self._queue = queue
        self._max_wait = max_wait
        self._fds = selectors.DefaultSelector()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.drained = False
        self._busy_turns = 0

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._fds.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._fds.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._fds.modify(fileobj, events, data)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._fds.get_map()

    def close(self) -> None:
        self._fds.close()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if self.drained:  # the queue is gone (the loop is closing): only the fds are left
            return self._fds.select(timeout)
        if timeout is not None and timeout <= 0:
            # Callbacks are waiting: collect completions without blocking. Each look at the
            # fds is a system call plus a Python-level selector pass, so a busy loop takes
            # one only every _BUSY_TURNS_PER_FD_CHECK turns.
            self._dispatch(0.0)
            self._busy_turns += 1
            if self._busy_turns < _BUSY_TURNS_PER_FD_CHECK:
                return []
        else:
            self._dispatch(self._max_wait if timeout is None else min(timeout, self._max_wait))
        self._busy_turns = 0
        return self._fds.select(0)

    def _dispatch(self, wait: float) -> None:
        """Wait up to `wait` seconds for a completion, then run every completion queued."""
        deadline = time.time() + wait if wait > 0 else 0.0
        while True:
            event = self._queue.poll(deadline)
            kind = event.completion_type
            if kind == _QUEUE_TIMEOUT:
                return
            if kind == _QUEUE_SHUTDOWN:
                self.drained = True
                return
            try:
                event.tag(event)
            except Exception as exc:  # a tag's own bug must not stop the loop
                assert self.loop is not None
                self.loop.call_exception_handler(
                    {"message": "gRPC completion callback failed", "exception": exc}
                )
            deadline = 0.0  # then collect what else completed, without waiting


class CompletionQueueEventLoop(asyncio.SelectorEventLoop):
    """A SelectorEventLoop whose waits are waits on `completion_queue`."""

    def __init__(self, max_wait: float = DEFAULT_MAX_WAIT_S) -> None:
        self.completion_queue = cygrpc.CompletionQueue()
        self._cq_selector = _CompletionQueueSelector(self.completion_queue, max_wait)
        super().__init__(self._cq_selector)
        self._cq_selector.loop = self

    def close(self) -> None:
        # gRPC requires a queue to be shut down and drained before it is destroyed; a server
        # on it must have shut down first (ChaincodeServer.stop does).
        if not self.is_closed() and not self._cq_selector.drained:
            self.completion_queue.shutdown()
            while not self._cq_selector.drained:
                self._cq_selector._dispatch(self._cq_selector._max_wait)
        super().close()
