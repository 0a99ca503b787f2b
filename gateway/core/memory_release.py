"""Giving freed memory back to the OS after a burst (issue #16, scripts/bench_memory.py).

A burst of large requests (twelve Full-HD frames each: base64 bodies, decoded images, the
face models' tensors, in several worker threads) leaves the gateway's resident set at its
peak: glibc's malloc keeps what a request freed in the arena of the thread that freed it
(one arena per thread, up to 8 per core) and, above its dynamic mmap threshold, large
buffers come from those heaps too, so freed memory sits in fragmented arenas and is not
returned. Two allocator settings, both through glibc's own API (ctypes; nothing where the C
library is not glibc):

- `limit_arenas(n)`: `mallopt(M_ARENA_MAX, n)` at start, so the worker threads share a
  few arenas instead of each growing its own (setting `malloc_arena_max`, 0 leaves glibc's
  default);
- `IdleTrimmer`: once no request has been in flight for `memory_trim_idle_s` after some
  were, `malloc_trim(0)` (in a worker thread, off the event loop) returns every arena's free
  pages to the OS. Nothing runs while requests are being served, and an idle gateway is
  trimmed once, not repeatedly.

Neither changes what a request computes; tests/gateway/core/test_memory_release.py checks
that a burst's memory comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import time
from collections.abc import Callable
from functools import cache
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger("mip.memory")

M_ARENA_MAX = -8  # glibc's malloc.h


@cache
def _glibc() -> Any | None:
    """glibc, or None where the C library is another (musl, macOS): nothing to tune."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    if not hasattr(libc, "malloc_trim") or not hasattr(libc, "mallopt"):
        return None
    libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return libc


def limit_arenas(arenas: int) -> bool:
    """At most `arenas` malloc arenas from now on (0: glibc's default); True if applied."""
    libc = _glibc()
    if arenas <= 0 or libc is None:
        return False
    return bool(libc.mallopt(M_ARENA_MAX, arenas))


def trim() -> bool:
    """Return free heap pages of every arena to the OS; True if any memory was released."""
    libc = _glibc()
    return libc is not None and bool(libc.malloc_trim(0))


class IdleTrimmer:
    """Counts requests in flight (`ReleaseAfterBursts`); `run()` trims once after each burst,
    when none has been in flight for `idle_s`."""

    def __init__(self, idle_s: float, trimmer: Callable[[], bool] = trim,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.idle_s, self.trimmer, self.clock = idle_s, trimmer, clock
        self.in_flight = 0
        self.dirty = False  # requests were served since the last trim
        self.last_end = clock()
        self.trims = 0

    def started(self) -> None:
        self.in_flight += 1
        self.dirty = True

    def ended(self) -> None:
        self.in_flight -= 1
        self.last_end = self.clock()

    def due(self) -> bool:
        return (self.dirty and self.in_flight == 0
                and self.clock() - self.last_end >= self.idle_s)

    async def trim_if_due(self) -> bool:
        if not self.due():
            return False
        self.dirty = False
        released = await asyncio.to_thread(self.trimmer)
        self.trims += 1
        log.debug("memory trimmed after a burst (released: %s)", released)
        return True

    async def run(self) -> None:
        """Until cancelled: check a few times per idle period."""
        while True:
            await asyncio.sleep(max(0.05, self.idle_s / 4))
            await self.trim_if_due()


class ReleaseAfterBursts:
    """ASGI middleware: tells the trimmer when each HTTP request starts and ends."""

    def __init__(self, app: ASGIApp, trimmer: IdleTrimmer) -> None:
        self.app, self.trimmer = app, trimmer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.trimmer.started()
        try:
            await self.app(scope, receive, send)
        finally:
            self.trimmer.ended()


@contextlib.asynccontextmanager
async def trimming(trimmer: IdleTrimmer | None) -> Any:
    """Run `trimmer` for the app's lifetime (None: nothing)."""
    if trimmer is None:
        yield
        return
    task = asyncio.create_task(trimmer.run(), name="mip-memory-trim")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
