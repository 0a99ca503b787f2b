"""What every request meets before FastAPI's own stack: rate limits, and typed answers for
bodies whose declared length is over their route's limit.

Both sit outside FastAPI's middleware (gateway/main.py `GatewayApp`), because FastAPI's
app-wide body limiter sits outside any middleware an app can add: its responder swaps any
response to a request whose `Content-Length` exceeds the limit for a plain-text
`Content Too Large`, and it would do that to a 429 as well.

- `RateLimitGuard` refuses a request whose buckets are empty (gateway/core/rate_limits.py)
  with 429 `rate_limited` before anything reads its body or authenticates its token.
- `TypedBodyTooLarge` turns Starlette's plain-text 413 (a declared length over the route's
  limit, refused before a byte of the body was read) into the API's typed error:
  413 `body_too_large` with `details.limit`, like a chunked body refused while read.
"""

from __future__ import annotations

import json

from starlette.datastructures import Headers
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.core.errors import error_body
from gateway.core.rate_limits import RateLimiter, bearer_of


async def _send_json(send: Send, status: int, content: dict[str, object],
                     headers: dict[str, str] | None = None) -> None:
    body = json.dumps(content, separators=(",", ":")).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class RateLimitGuard:
    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        source = str(client[0]) if client else "unknown"
        bearer = bearer_of(Headers(scope=scope).get("authorization"))
        wait = self.limiter.check(scope.get("path", ""), source, bearer)
        if wait is None:
            await self.app(scope, receive, send)
            return
        await _send_json(send, 429, error_body(
            "rate_limited", "too many requests from this staff token or address; try again "
            "after retry_after_s seconds", {"retry_after_s": wait}),
            {"Retry-After": str(wait)})


class TypedBodyTooLarge:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        replaced = False

        async def send_typed(message: Message) -> None:
            nonlocal replaced
            if replaced:
                return  # the plain text's body: already answered
            if (message["type"] == "http.response.start" and message["status"] == 413
                    and Headers(raw=message.get("headers", [])).get(
                        "content-type", "").startswith("text/plain")):
                replaced = True
                # The limiter that answered keeps the route's limit in the scope until its
                # response is sent.
                limit = scope.get(MAX_BODY_SIZE_SCOPE_KEY)
                await _send_json(send, 413, error_body(
                    "body_too_large", "the request body is larger than this route accepts",
                    {"limit": limit} if isinstance(limit, int) else None))
                return
            await send(message)

        await self.app(scope, receive, send_typed)
