"""The gateway application: `create_app(settings)`; `mip serve` runs it with uvicorn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp

from gateway.api.body_limits import DEFAULT_BODY_LIMIT
from gateway.api.request_guard import RateLimitGuard, TypedBodyTooLarge
from gateway.api.router import api_router
from gateway.core.access_log import AccessLog
from gateway.core.config import Settings, load_settings
from gateway.core.errors import install_error_handlers
from gateway.core.failures import UnexpectedErrors
from gateway.core.logging import configure_logging
from gateway.core.memory_release import IdleTrimmer, ReleaseAfterBursts, limit_arenas, trimming
from gateway.core.rate_limits import RateLimiter, RateLimitSettings
from gateway.core.security_headers import SecurityHeaders
from gateway.services.holder_recovery import settle_interrupted_recoveries
from gateway.services.passport_revocation import settle_interrupted
from gateway.services.state import AppState, build_state
from gateway.web import mount_docs, mount_web


class GatewayApp(FastAPI):
    """FastAPI with our outermost layers around its whole stack (outermost first): the
    access log (gateway/core/access_log.py), the security headers, the typed 413 and the
    rate limits (gateway/api/request_guard.py). They must be outside FastAPI's app-wide
    body limiter, which no `add_middleware` layer is (request_guard.py says why)."""

    rate_limiter: RateLimiter
    memory_trimmer: IdleTrimmer | None = None

    def build_middleware_stack(self) -> ASGIApp:
        inner = RateLimitGuard(super().build_middleware_stack(), self.rate_limiter)
        return AccessLog(SecurityHeaders(TypedBodyTooLarge(inner)), lambda: self.routes,
                         frozenset({"", api_router.prefix}))


def rate_limits(settings: Settings) -> RateLimitSettings:
    return RateLimitSettings(
        settings.rate_limit_per_token_rps, settings.rate_limit_per_token_burst,
        settings.rate_limit_per_source_rps, settings.rate_limit_per_source_burst,
        settings.rate_limit_face_per_token_rps, settings.rate_limit_face_per_token_burst,
        settings.rate_limit_face_per_source_rps, settings.rate_limit_face_per_source_burst)


def create_app(settings: Settings | None = None, *, state: AppState | None = None) -> FastAPI:
    settings = settings or (state.settings if state is not None else load_settings())

    # Freed memory back to the OS after bursts (gateway/core/memory_release.py).
    trimmer = (IdleTrimmer(settings.memory_trim_idle_s) if settings.memory_trim_idle_s > 0
               else None)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level)
        limit_arenas(settings.malloc_arena_max)
        owned = state is None
        app.state.mip = state if state is not None else build_state(settings)
        # Revocations and recoveries a crash interrupted are settled now, not only at the
        # next request that meets them.
        settling = [asyncio.create_task(settle_interrupted(app.state.mip)),
                    asyncio.create_task(settle_interrupted_recoveries(app.state.mip))]
        try:
            async with trimming(trimmer):
                yield
        finally:
            for task in settling:
                task.cancel()
            if owned:
                await app.state.mip.close()

    app = GatewayApp(
        title="MIP gateway",
        version="1.0.0",
        description="Enrolment, holder accounts, credentials, grants, pharmacy pickup, "
                    "credential checks and privacy-budgeted analytics on the MIP ledger.",
        lifespan=lifespan,
        # Enforced while the body is read; routes with frames or documents allow more
        # (gateway/api/body_limits.py).
        max_body_size=DEFAULT_BODY_LIMIT,
        # FastAPI's /docs and /redoc load their scripts from a CDN: off. In development the
        # gateway serves Swagger UI itself (mount_docs); /openapi.json stays in every mode.
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    # Just inside Starlette's ServerErrorMiddleware (which would re-raise to the server,
    # whose log would print the exception's text). Security headers, rate limits and the
    # access log wrap the whole stack (GatewayApp).
    app.add_middleware(UnexpectedErrors)
    if trimmer is not None:
        app.add_middleware(ReleaseAfterBursts, trimmer=trimmer)
    app.memory_trimmer = trimmer
    app.rate_limiter = RateLimiter(rate_limits(settings))
    app.include_router(api_router)
    mount_web(app)
    if settings.mode == "development":
        mount_docs(app)
    return app
