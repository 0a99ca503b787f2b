"""A readers/writer lock for the event loop: simulations share it, a block commit excludes them.

Fabric's transaction manager holds the same lock (commitRWLock) so a simulation never sees a
block half applied. Writers are preferred: once the committer waits, new simulations queue
behind it, otherwise a steady stream of simulations would starve commits.
"""

from __future__ import annotations

import asyncio


class CommitLock:
    def __init__(self) -> None:
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0
        self._waiters: list[asyncio.Future[None]] = []

    def _wait(self) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        return fut

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def acquire_read(self) -> None:
        while self._writer or self._writers_waiting:
            await self._wait()
        self._readers += 1

    def release_read(self) -> None:
        self._readers -= 1
        if self._readers == 0:
            self._wake()

    async def acquire_write(self) -> None:
        self._writers_waiting += 1
        try:
            while self._writer or self._readers:
                await self._wait()
        finally:
            self._writers_waiting -= 1
        self._writer = True

    def release_write(self) -> None:
        self._writer = False
        self._wake()
