"""The last line for an exception no handler expected: a typed 500 with a correlation id, and
one log line that carries no data.

Starlette's own last line (ServerErrorMiddleware) calls the app's `Exception` handler and then
re-raises, so the server (uvicorn) logs the exception's text and traceback: an exception's text
can hold request data (a password, a name, an id), and a traceback renderer may print frames'
locals. This middleware sits inside it and swallows the exception after answering, so nothing
outside sees it. What is logged: a correlation id (also in the client's error body, so an
operator can match a user's report to the line), the exception's type, and the code location
(file, line, function) where it was raised; never its message, arguments or frames' locals.
"""

from __future__ import annotations

import logging
import secrets
import traceback
from pathlib import Path

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("mip.gateway")

# The location logged is the innermost frame in this repository (the line of ours that failed
# or that called the library that failed), else the innermost frame.
_REPO = Path(__file__).resolve().parents[2]
_OURS = str(_REPO) + "/"


def new_correlation_id() -> str:
    return secrets.token_hex(8)


def location(exc: BaseException) -> str:
    """`path:line in function` of the frame that raised (ours preferred); no source text."""
    frames = traceback.extract_tb(exc.__traceback__, limit=None)
    if not frames:
        return "unknown location"
    ours = [f for f in frames if f.filename.startswith(_OURS) and "/.venv/" not in f.filename]
    chosen = ours[-1] if ours else frames[-1]
    path = chosen.filename
    if path.startswith(_OURS):
        path = path[len(_OURS):]
    return f"{path}:{chosen.lineno} in {chosen.name}"


def describe(exc: BaseException) -> str:
    """The type's qualified name: `module.Type` (never str(exc))."""
    kind = type(exc)
    return f"{kind.__module__}.{kind.__qualname__}"


def internal_error_body(correlation_id: str) -> dict[str, object]:
    return {"error": {
        "code": "internal_error",
        "message": "the gateway failed to handle the request; quote the correlation id to "
                   "the operator",
        "details": {"correlation_id": correlation_id}}}


def log_unexpected(exc: BaseException, correlation_id: str) -> None:
    log.error("unexpected %s at %s (correlation id %s)", describe(exc), location(exc),
              correlation_id)


class UnexpectedErrors:
    """ASGI middleware: an exception that reached it is answered 500 `internal_error` (when no
    response has started) and logged by `log_unexpected`; it is not re-raised."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        send_failed = False

        async def tracking_send(message: Message) -> None:
            nonlocal started, send_failed
            if message["type"] == "http.response.start":
                started = True
            try:
                await send(message)
            except BaseException:
                send_failed = True
                raise

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:  # the last line: every failure becomes a typed answer
            if send_failed:
                # Raised by a layer outside this one (the server, FastAPI's body limit, which
                # signals through `send` that it answered 413 itself): that layer's to handle.
                raise
            correlation_id = new_correlation_id()
            log_unexpected(exc, correlation_id)
            if not started:
                response = JSONResponse(status_code=500,
                                        content=internal_error_body(correlation_id))
                await response(scope, receive, send)
            # A response already under way cannot be replaced: the client sees it cut short.
