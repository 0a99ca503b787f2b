"""One holder at a time per key (a passport, a researcher's request id), in this process.

A lock exists only while someone holds or waits for it, so keys seen once (every request id
ever used) do not pile up in memory. One gateway process serves one database, so this is
enough to keep two calls of one flow from interleaving their steps.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager


class KeyedLocks:
    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, list[int]]] = {}

    def busy(self, key: Hashable) -> bool:
        """Whether a call holds (or waits for) `key` now."""
        return key in self._locks

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        lock, users = self._locks.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                self._locks.pop(key, None)
