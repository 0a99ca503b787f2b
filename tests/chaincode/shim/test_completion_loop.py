"""The completion-queue event loop: plain asyncio on it, wake-ups from outside, gRPC completions."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from typing import Any

from grpc._cython import cygrpc

from chaincode.shim.completion_loop import CompletionQueueEventLoop


def _run(coro: Any, loop: CompletionQueueEventLoop | None = None) -> Any:
    loop = loop or CompletionQueueEventLoop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def test_tasks_timers_and_futures_run_as_on_any_loop() -> None:
    async def main() -> tuple[float, list[int]]:
        start = time.monotonic()
        await asyncio.sleep(0.05)
        slept = time.monotonic() - start
        results = await asyncio.gather(*(asyncio.sleep(0.01 * i, result=i) for i in range(3)))
        return slept, list(results)

    slept, results = _run(main())
    assert results == [0, 1, 2]
    assert 0.05 <= slept < 1.0


def test_another_thread_wakes_the_loop_within_max_wait() -> None:
    loop = CompletionQueueEventLoop(max_wait=0.05)

    async def main() -> tuple[str, float]:
        future: asyncio.Future[str] = loop.create_future()
        sent = time.monotonic()
        threading.Timer(0.0, loop.call_soon_threadsafe, (future.set_result, "woken")).start()
        result = await asyncio.wait_for(future, 5)
        return result, time.monotonic() - sent

    result, latency = _run(main(), loop)
    assert result == "woken"
    assert latency < 1.0  # bounded by max_wait (0.05 s) plus scheduling, not by a timeout


def test_a_signal_handler_runs() -> None:
    loop = CompletionQueueEventLoop()

    async def main() -> str:
        future: asyncio.Future[str] = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR1, future.set_result, "signalled")
        try:
            os.kill(os.getpid(), signal.SIGUSR1)
            return await asyncio.wait_for(future, 5)
        finally:
            loop.remove_signal_handler(signal.SIGUSR1)

    assert _run(main(), loop) == "signalled"


def test_completions_run_their_tags_and_a_failing_tag_is_reported() -> None:
    """A gRPC server on the loop's queue: its shutdown completes through the loop, and a tag
    that raises goes to the loop's exception handler while the loop carries on."""
    loop = CompletionQueueEventLoop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))

    async def main() -> list[bool]:
        seen: list[bool] = []
        server = cygrpc.Server((), False)
        server.register_completion_queue(loop.completion_queue)
        assert server.add_http2_port(b"127.0.0.1:0") > 0
        server.start()
        done: asyncio.Future[None] = loop.create_future()

        def tag(event: Any) -> None:
            seen.append(event.success)
            done.set_result(None)
            raise RuntimeError("tag bug")

        server.shutdown(loop.completion_queue, tag)
        await asyncio.wait_for(done, 5)
        server.destroy()
        await asyncio.sleep(0.01)  # the loop still runs
        return seen

    assert _run(main(), loop) == [True]
    assert len(reported) == 1
    assert isinstance(reported[0]["exception"], RuntimeError)
