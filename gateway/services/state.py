"""What the running service holds: settings, database, ledger connections, face engine.

Built once by the app's lifespan (gateway/main.py). Area services (enrolment, pickup, ...)
are created on first use and kept here by name (`service()`), so each area module owns its
own construction and no shared file lists them all.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio

from face_engine.engine import FaceEngine
from gateway.core.config import Settings
from gateway.core.errors import Busy
from gateway.core.keys import KeyProvider
from gateway.core.security import StaffRegistry
from gateway.store import Database

from .ledger import Ledger

T = TypeVar("T")

# Face work is CPU-bound (onnxruntime uses 2 threads itself): at most this many at once,
# so a burst of frames queues instead of thrashing the cores.
FACE_CONCURRENCY = 2
# Frames a counter streams are analysed while the person is still turning, with hundreds of
# milliseconds of slack before anyone waits on them. That work runs on one thread of its
# own, at a lower CPU priority, with single-threaded models, so that the requests a person
# is waiting on (a pickup's start, verdict and dispense, other flows) get the cores first.
BACKGROUND_NICE = 10
# OpenCV's thread pool (YuNet's detection, the crop's warp) is process-wide, not per engine:
# with its default (one thread per core) part of each streamed frame's detection ran on a
# pool thread at normal priority, outside the low-priority face thread (measured: about 4 ms
# of a frame's 40), and the face jobs already fill the cores (FACE_CONCURRENCY, onnxruntime's
# threads). With one, each face job does its OpenCV work in its own thread.
OPENCV_THREADS = 1


def _limit_opencv_threads() -> None:
    import cv2

    cv2.setNumThreads(OPENCV_THREADS)


def _lower_thread_priority() -> None:
    # Linux keeps a nice value per thread; elsewhere this is a no-op (and never fatal).
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
    except (OSError, AttributeError):
        pass


@dataclass
class AppState:
    settings: Settings
    db: Database
    keys: KeyProvider  # every key at rest (gateway/core/keys): operations, never bytes
    ledger: Ledger
    staff: StaffRegistry
    _face: FaceEngine | None = None
    _face_lock: threading.Lock = field(default_factory=threading.Lock)
    _face_limiter: anyio.CapacityLimiter | None = None
    _background_face: FaceEngine | None = None
    _background_executor: ThreadPoolExecutor | None = None
    _face_jobs: int = 0
    _services: dict[str, Any] = field(default_factory=dict)
    _service_lock: threading.RLock = field(default_factory=threading.RLock)

    def face_engine(self) -> FaceEngine:
        """The face engine, loaded on first use (models are verified by hash on load)."""
        with self._face_lock:
            if self._face is None:
                from face_engine.engine import load_default_engine

                _limit_opencv_threads()
                self._face = load_default_engine()
            return self._face

    def require_face_room(self) -> None:
        """Refuse (503 `busy`, retry_after_s 1) when `face_queue_max` face jobs are queued or
        running: a burst waits in a bounded queue, never an unbounded one (each waiting
        request holds its decoded body)."""
        if self._face_jobs >= self.settings.face_queue_max:
            raise Busy("the face workers are busy; try again shortly",
                       details={"retry_after_s": 1})

    @contextmanager
    def _face_job(self) -> Iterator[None]:
        self.require_face_room()
        self._face_jobs += 1  # on the event loop: no lock needed
        try:
            yield
        finally:
            self._face_jobs -= 1

    async def run_face(self, fn: Callable[..., T], *args: Any) -> T:
        """Run face work in a worker thread, at most FACE_CONCURRENCY at a time, with at most
        `face_queue_max` face jobs queued or running (`require_face_room`)."""
        if self._face_limiter is None:
            self._face_limiter = anyio.CapacityLimiter(FACE_CONCURRENCY)
        with self._face_job():
            return await anyio.to_thread.run_sync(fn, *args, limiter=self._face_limiter)

    def background_face_engine(self) -> FaceEngine:
        """A second engine with single-threaded models, for `run_face_background` (its
        onnxruntime session has no pool threads, and OpenCV runs one thread
        (`OPENCV_THREADS`), so all its work runs at the lower priority)."""
        with self._face_lock:
            if self._background_face is None:
                _limit_opencv_threads()
                self._background_face = FaceEngine(threads=1)
            return self._background_face

    async def run_face_background(self, fn: Callable[..., T], *args: Any) -> T:
        """Run face work nobody waits on yet on the low-priority face thread."""
        with self._face_lock:
            if self._background_executor is None:
                self._background_executor = ThreadPoolExecutor(
                    1, thread_name_prefix="mip-face-background",
                    initializer=_lower_thread_priority)
            executor = self._background_executor
        loop = asyncio.get_running_loop()
        with self._face_job():
            return await loop.run_in_executor(executor, functools.partial(fn, *args))

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
        if self._background_executor is not None:
            self._background_executor.shutdown(wait=True, cancel_futures=True)
        await asyncio.sleep(0)
        self.db.close()
        self.keys.close()


def open_data_dir(settings: Settings) -> tuple[Database, KeyProvider]:
    """The gateway's database and key provider, both created on first use. A production
    gateway that is not one org's is refused (gateway/core/org_scope.py). A provider the
    mode does not allow, or a data dir holding the database without its keys (or, under the
    file provider, the reverse), is refused before anything is made (gateway/core/keys)."""
    from gateway.core.keys import check_key_settings, open_key_provider
    from gateway.core.org_scope import check_org_settings
    from gateway.store import open_database

    check_key_settings(settings)
    check_org_settings(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    keys = open_key_provider(settings)  # before the database: it checks whether one exists
    try:
        return open_database(settings.db_path), keys
    except BaseException:
        keys.close()
        raise


def build_state(settings: Settings) -> AppState:
    db, keys = open_data_dir(settings)
    return AppState(
        settings=settings,
        db=db,
        keys=keys,
        ledger=Ledger(settings),
        staff=StaffRegistry(db, settings.org),
    )
