"""The access log: one line per request, naming its route by template, never its path.

Paths carry ids (`/pharmacy/pickups/{pickup_id}/frames/{index}`, `/passports/{passport_id}`),
and some of them link a person's visits (a session id, a credential, is never in a path: it
travels in `X-MIP-Holder-Session` or `X-MIP-Enrolment-Session`); query strings may carry
more. uvicorn's access log prints both, so `mip serve` turns it off
(gateway/cli/serve.py) and this middleware logs instead, on the `mip.access` logger (through
the redacting filter, gateway/core/logging.py):

    127.0.0.1 POST /api/v1/pharmacy/pickups/{pickup_id}/verdict 200 41ms

The template is the matched route's (FastAPI leaves it in `scope["route"]`) under a prefix
this app's routers are known to use; a route without parameters that FastAPI does not
name in the scope (`/openapi.json`, `/docs`) by its own path; a mounted app (the counter
page) by its mount's template (`/counter/{path}`); anything else as `(no route)` or
`(route)`. Nothing of the concrete path,
query string or headers is ever written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("mip.access")

NO_ROUTE = "(no route)"
UNKNOWN_ROUTE = "(route)"


def route_template(scope: Scope, prefixes: frozenset[str], mounts: dict[str, str],
                   fixed: frozenset[str] = frozenset()) -> str:
    """The route template of a handled request's scope (see the module docstring)."""
    path_format = getattr(scope.get("route"), "path_format", None)
    if isinstance(path_format, str) and path_format.startswith("/"):
        # The route knows its path below its routers' prefixes; the prefix is the concrete
        # path's leading segments, accepted only when it is one of the known ones (so no
        # path segment, which may be an id, is ever copied into the line).
        segments = scope.get("path", "").split("/")
        depth = path_format.count("/")
        prefix = "/".join(segments[:max(0, len(segments) - depth)])
        return prefix + path_format if prefix in prefixes else UNKNOWN_ROUTE
    path = scope.get("path", "")
    if path in fixed:  # a route without parameters: its path is its template
        return str(path)
    mounted = mounts.get(scope.get("root_path", ""))
    return mounted if mounted is not None else NO_ROUTE


class AccessLog:
    """ASGI middleware writing the access line after each HTTP request."""

    def __init__(self, app: ASGIApp, routes: Callable[[], Sequence[object]],
                 prefixes: frozenset[str]) -> None:
        self.app = app
        self._routes = routes
        self.prefixes = prefixes
        self._mounts: dict[str, str] | None = None
        self._fixed: frozenset[str] | None = None

    def mounts(self) -> dict[str, str]:
        if self._mounts is None:  # the routes are complete once requests arrive
            self._mounts = {r.path: r.path_format for r in self._routes()
                            if isinstance(r, Mount) and r.path}
        return self._mounts

    def fixed(self) -> frozenset[str]:
        if self._fixed is None:
            self._fixed = frozenset(r.path for r in self._routes()
                                    if isinstance(r, Route) and "{" not in r.path)
        return self._fixed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            client = scope.get("client")
            log.info("%s %s %s %d %.0fms", client[0] if client else "-",
                     scope.get("method", "-"),
                     route_template(scope, self.prefixes, self.mounts(), self.fixed()),
                     status,
                     (time.perf_counter() - started) * 1000)
