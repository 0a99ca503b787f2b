"""Run devnet's event loop on uvloop when it is installed, else on asyncio's own loop.

Nearly all of devnet's CPU goes to grpc.aio, and grpc.aio's poller hands every completed gRPC
operation to the event loop through callbacks and a wake-up socket; uvloop's libuv loop does
that hop, timers and task steps in C. Measured with scripts/bench_ledger.py (2 cores, 16
submits in flight): devnet ≈ 3.1 → 2.6 ms of CPU per transaction. Semantics are the same:
grpc.aio supports uvloop, and devnet uses nothing loop-specific besides signal handlers.
`MIP_EVENT_LOOP=asyncio` forces the standard loop (A/B measurements, debugging).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
ENV = "MIP_EVENT_LOOP"


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop constructor, or None for asyncio's default loop."""
    choice = os.environ.get(ENV, "auto").strip().lower()
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise RuntimeError(f"{ENV}=uvloop but uvloop is not installed") from None
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def loop_name() -> str:
    return "asyncio" if loop_factory() is None else "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(main) on the loop loop_factory() picks."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
