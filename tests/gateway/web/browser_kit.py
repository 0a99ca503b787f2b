"""Real-browser harness for the counter page: Debian's Chromium driven by Playwright, and
an ASGI app served by uvicorn on a free local port in a background thread.

Playwright's own browser downloads are not used (no network in CI beyond the package
registries): the Debian `chromium` package provides /usr/bin/chromium.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import uvicorn

CHROMIUM = Path("/usr/bin/chromium")

# Flags for a hermetic headless Chromium: a fake camera (a Y4M file, or Chromium's own test
# pattern when none is given) granted without a permission prompt, and none of the
# background services that would try to reach the internet.
BASE_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
)


def chromium_missing_reason() -> str | None:
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} is absent (install the Debian 'chromium' package)"
    return None


def chromium_args(video: Path | None = None) -> list[str]:
    args = list(BASE_ARGS)
    if video is not None:
        args.append(f"--use-file-for-fake-video-capture={video}")
    return args


def launch_options(video: Path | None = None) -> dict[str, Any]:
    """Keyword arguments for `playwright.chromium.launch`. Playwright gives every launch a
    fresh temporary profile directory (no state shared between launches)."""
    return {
        "executable_path": str(CHROMIUM),
        "headless": True,
        # Playwright adds --headless itself; ours (--headless=new) comes later and wins.
        "args": chromium_args(video),
    }


def context_options(viewport: tuple[int, int] = (768, 1024)) -> dict[str, Any]:
    """A tablet-like browser context: touch, no device scaling."""
    return {
        "viewport": {"width": viewport[0], "height": viewport[1]},
        "device_scale_factor": 1,
        "has_touch": True,
        "locale": "en-GB",
    }


class ServerThread:
    """uvicorn serving `app` on 127.0.0.1:<free port> from a daemon thread. `cleanup` runs
    on the server's event loop after it stops (e.g. closing ledger connections opened
    there)."""

    def __init__(self, app: Any,
                 cleanup: Callable[[], Awaitable[None]] | None = None) -> None:
        self._cleanup = cleanup
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                                ws="none")
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="counter-uvicorn", daemon=True)
        self.error: BaseException | None = None

    @property
    def url(self) -> str:
        # 127.0.0.1 is a secure context for the browser, so getUserMedia is available.
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self) -> None:
        try:
            await self.server.serve(sockets=[self._sock])
        finally:
            if self._cleanup is not None:
                await self._cleanup()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by start() in the test thread
            self.error = exc

    def start(self, timeout: float = 30.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if self.error is not None or not self._thread.is_alive():
                raise RuntimeError(f"uvicorn did not start: {self.error!r}")
            if time.monotonic() > deadline:
                raise TimeoutError("uvicorn did not start in time")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=15)
        self._sock.close()
        if self.error is not None:
            raise RuntimeError(f"the server thread failed: {self.error!r}") from self.error


@contextlib.contextmanager
def serving(app: Any, cleanup: Callable[[], Awaitable[None]] | None = None
            ) -> Iterator[ServerThread]:
    server = ServerThread(app, cleanup)
    server.start()
    try:
        yield server
    finally:
        server.stop()


T = TypeVar("T")

# Chromium's DevTools virtual authenticator for the wallet tests: a platform passkey with
# user verification and the PRF extension (../shared/notes/webauthn-in-chromium.md).
VIRTUAL_AUTHENTICATOR = {
    "protocol": "ctap2", "ctap2Version": "ctap2_1", "transport": "internal",
    "hasResidentKey": True, "hasUserVerification": True, "isUserVerified": True,
    "automaticPresenceSimulation": True, "hasPrf": True,
}


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """A coroutine on a fresh event loop in a worker thread (Playwright's sync API owns this
    thread's loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
