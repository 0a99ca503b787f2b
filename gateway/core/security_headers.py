"""HTTP security headers on every response.

The counter page's meta-tag CSP cannot say `frame-ancestors` (browsers ignore it in a meta
tag), so without headers the page could be framed by another site and clicked through. Each
response gets:

- `Content-Security-Policy`: for the API nothing may load at all (`default-src 'none'`); the
  web pages (counter, check, issuer, enrolment and holder services desks, the holder wallet)
  and the development /docs page load only from the gateway itself; always `frame-ancestors 'none'`;
- `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`, `X-Frame-Options: DENY`
  (for browsers without CSP frame-ancestors);
- `Permissions-Policy`: no camera, microphone or location, except the camera on the counter,
  enrolment and holder services pages (their face checks), for the gateway's own origin only;
- `Strict-Transport-Security` when the request came over TLS (`mip serve --tls`): a browser
  then refuses plain HTTP to this host for two years;
- `Cache-Control: no-store` on the API: its answers name people and carry tokens.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COUNTER_PREFIX = "/counter"
# Every staff page (gateway/web): the same policy as the counter; only the pages that take
# photos of a person may use the camera.
PAGE_PREFIXES = (COUNTER_PREFIX, "/check", "/issuer", "/enrol", "/holder-desk", "/desk",
                 "/wallet")
CAMERA_PREFIXES = (COUNTER_PREFIX, "/enrol", "/holder-desk")
DOCS_PREFIX = "/docs"
API_PREFIX = "/api/"

_LOCKED = "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
API_CSP = f"default-src 'none'; {_LOCKED}"
# The counter page's own meta-tag policy (gateway/web/static/index.html) plus frame-ancestors.
COUNTER_CSP = ("default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
               f"connect-src 'self'; object-src 'none'; {_LOCKED}")
# Swagger UI sets inline styles and draws icons from data: URIs.
DOCS_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            f"connect-src 'self'; object-src 'none'; {_LOCKED}")
NO_DEVICES = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
COUNTER_DEVICES = "camera=(self), microphone=(), geolocation=(), payment=(), usb=()"
HSTS = "max-age=63072000; includeSubDomains"


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def headers_for(path: str, scheme: str) -> dict[str, str]:
    """The security headers of a response to `path` requested over `scheme`."""
    page = any(_under(path, prefix) for prefix in PAGE_PREFIXES)
    camera = any(_under(path, prefix) for prefix in CAMERA_PREFIXES)
    if page:
        csp = COUNTER_CSP
    elif _under(path, DOCS_PREFIX):
        csp = DOCS_CSP
    else:
        csp = API_CSP
    headers = {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Permissions-Policy": COUNTER_DEVICES if camera else NO_DEVICES,
    }
    if scheme == "https":
        headers["Strict-Transport-Security"] = HSTS
    if path.startswith(API_PREFIX) or path == "/openapi.json":
        headers["Cache-Control"] = "no-store"
    return headers


class SecurityHeaders:
    """ASGI middleware adding `headers_for(path, scheme)` to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = headers_for(scope.get("path", ""), scope.get("scheme", "http"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    headers[name] = value  # ours win over a route's own
            await send(message)

        await self.app(scope, receive, send_with_headers)
