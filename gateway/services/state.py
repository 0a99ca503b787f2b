"""What the running service holds: settings, database, ledger connections, face engine.

Built once by the app's lifespan (gateway/main.py). Area services (enrolment, pickup, ...)
are created on first use and kept here by name (`service()`), so each area module owns its
own construction and no shared file lists them all.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio

from face_engine.engine import FaceEngine
from gateway.core.config import Settings
from gateway.core.secrets import GatewaySecrets
from gateway.core.security import StaffRegistry
from gateway.store import Database

from .ledger import Ledger

T = TypeVar("T")

# Face work is CPU-bound (onnxruntime uses 2 threads itself): at most this many at once,
# so a burst of frames queues instead of thrashing the cores.
FACE_CONCURRENCY = 2


@dataclass
class AppState:
    settings: Settings
    db: Database
    secrets: GatewaySecrets
    ledger: Ledger
    staff: StaffRegistry
    _face: FaceEngine | None = None
    _face_lock: threading.Lock = field(default_factory=threading.Lock)
    _face_limiter: anyio.CapacityLimiter | None = None
    _services: dict[str, Any] = field(default_factory=dict)
    _service_lock: threading.RLock = field(default_factory=threading.RLock)

    def face_engine(self) -> FaceEngine:
        """The face engine, loaded on first use (models are verified by hash on load)."""
        with self._face_lock:
            if self._face is None:
                from face_engine.engine import load_default_engine

                self._face = load_default_engine()
            return self._face

    async def run_face(self, fn: Callable[..., T], *args: Any) -> T:
        """Run face work in a worker thread, at most FACE_CONCURRENCY at a time."""
        if self._face_limiter is None:
            self._face_limiter = anyio.CapacityLimiter(FACE_CONCURRENCY)
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._face_limiter)

    def service(self, name: str, factory: Callable[[AppState], T]) -> T:
        """The area service `name`, built by `factory(self)` on first use (a factory may
        itself ask for other services: the lock is re-entrant)."""
        with self._service_lock:
            if name not in self._services:
                self._services[name] = factory(self)
            return self._services[name]

    async def close(self) -> None:
        for svc in list(self._services.values()):
            closer = getattr(svc, "aclose", None)
            if closer is not None:
                await closer()
            elif callable(getattr(svc, "close", None)):
                svc.close()
        await self.ledger.close()
        await asyncio.sleep(0)
        self.db.close()


def build_state(settings: Settings) -> AppState:
    from gateway.core.secrets import load_or_create_secrets
    from gateway.store import open_database

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = open_database(settings.db_path)
    return AppState(
        settings=settings,
        db=db,
        secrets=load_or_create_secrets(settings.secrets_path),
        ledger=Ledger(settings),
        staff=StaffRegistry(db),
    )
