"""Typed API errors with stable codes, and the handlers that turn every failure into one.

Every error a client sees is JSON `{"error": {"code": ..., "message": ..., "details": ...}}`
with a stable `code` clients branch on. Contract errors keep the contract's own code
(`not_found`, `access_denied`, `replay`, ...: chaincode/mip/errors.py), face errors the face
engine's (`no_face`, `multiple_faces`, ...). Nothing else leaks: an unexpected exception is
logged by type and code location only (its message may hold private data) and answered
`internal_error` with a correlation id (gateway/core/failures.py).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY

from face_engine.errors import FaceError
from gateway.core.failures import internal_error_body, log_unexpected, new_correlation_id
from gateway.fabric import ChaincodeError, ClockSkew, GatewayError

log = logging.getLogger("mip.gateway")

# The pydantic error type of a request whose images hold too many pixels in all.
PIXELS_ERROR = "too_many_pixels"


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any] | None = None


class ErrorResponse(BaseModel):
    """The body of every error response (documented in the OpenAPI schema)."""

    error: ErrorBody


class ApiError(Exception):
    """A refusal the client can act on: HTTP status, stable code, human message."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details = details


class InvalidRequest(ApiError):
    status, code = 422, "invalid_request"


class Unauthenticated(ApiError):
    status, code = 401, "unauthenticated"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class Gone(ApiError):
    """An expired session, challenge or grant."""

    status, code = 410, "expired"


class Locked(ApiError):
    status, code = 423, "locked"


class RateLimited(ApiError):
    """Too many requests from this token or address (gateway/core/rate_limits.py)."""

    status, code = 429, "rate_limited"


class Busy(ApiError):
    """The face workers' queue is full: try again shortly (details.retry_after_s)."""

    status, code = 503, "busy"


class LedgerUnavailable(ApiError):
    status, code = 503, "ledger_unavailable"


# Contract error code -> HTTP status (codes from chaincode/mip/errors.py).
CHAINCODE_STATUS = {
    "invalid_request": 422,
    "bad_signature": 401,
    "access_denied": 403,
    "not_found": 404,
    "conflict": 409,
    "replay": 409,
    "expired": 410,
    "precondition_failed": 409,
    "budget_exhausted": 409,
    # The endorsing peer's clock and the proposal's timestamp (this gateway's clock) differ
    # by more than the contract allows: a server-side fault, not the client's.
    "clock_skew": 503,
}

# Face error code -> HTTP status: all are "retake the photo" except unavailable models.
FACE_SERVER_CODES = {"model_error", "model_missing", "model_altered", "model_fetch_failed",
                     "calibration_invalid", "unknown_operating_point"}


def chaincode_error(exc: ChaincodeError) -> ApiError:
    """The contract's `code: message` as an ApiError with the same code."""
    text = exc.chaincode_message
    code, sep, message = text.partition(": ")
    if not sep or not code.replace("_", "").isalpha():
        return ApiError(text, code="ledger_refused", status=409)
    return ApiError(message, code=code, status=CHAINCODE_STATUS.get(code, 409))


def face_error(exc: FaceError) -> ApiError:
    status = 503 if exc.code in FACE_SERVER_CODES else 422
    return ApiError(exc.message, code=exc.code, status=status)


def _body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return ErrorResponse(error=ErrorBody(code=code, message=message, details=details)
                         ).model_dump(exclude_none=True)


def error_body(code: str, message: str, details: dict[str, Any] | None = None
               ) -> dict[str, Any]:
    """The JSON of an error response (for layers that answer outside the handlers)."""
    return _body(code, message, details)


def retry_after_header(details: dict[str, Any] | None) -> dict[str, str] | None:
    """`Retry-After` for an error whose details say when to try again (429, 423, 503)."""
    retry = (details or {}).get("retry_after_s")
    if isinstance(retry, int | float) and not isinstance(retry, bool) and retry >= 0:
        return {"Retry-After": str(max(1, int(retry)))}
    return None


def error_response(err: ApiError) -> JSONResponse:
    return JSONResponse(status_code=err.status, content=_body(err.code, err.message, err.details),
                        headers=retry_after_header(err.details))


def install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc)

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        pixels = next((e for e in exc.errors() if e.get("type") == PIXELS_ERROR), None)
        if pixels is not None:
            # The request's images would cost the face workers too much to decode
            # (gateway/api/models/image_budget.py): too large, like a body over its limit.
            limit = int((pixels.get("ctx") or {}).get("limit", 0))
            return JSONResponse(status_code=413, content=_body(
                PIXELS_ERROR, f"the images of one request may hold at most {limit} pixels "
                              "in all", {"limit": limit}))
        # Only locations and messages: pydantic's "input" may echo a password or an image.
        problems = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
                    for e in exc.errors()]
        return JSONResponse(status_code=422, content=_body(
            "invalid_request", "the request does not match the schema",
            {"problems": problems}))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 413:
            # The route's body limit (FastAPI's max_body_size), read while the body arrived.
            limit = request.scope.get(MAX_BODY_SIZE_SCOPE_KEY)
            return JSONResponse(status_code=413, content=_body(
                "body_too_large", "the request body is larger than this route accepts",
                {"limit": limit} if isinstance(limit, int) else None))
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated",
                403: "forbidden", 413: "body_too_large"}.get(exc.status_code, "http_error")
        return JSONResponse(status_code=exc.status_code, content=_body(code, str(exc.detail)),
                            headers=getattr(exc, "headers", None))

    async def on_chaincode(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ChaincodeError)
        return error_response(chaincode_error(exc))

    async def on_gateway(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, GatewayError)
        log.warning("ledger call failed: %s", type(exc).__name__)
        if isinstance(exc, ClockSkew):
            return error_response(ApiError(
                "the ledger's peers refused this gateway's clock (time window); nothing was "
                "recorded", code="clock_skew", status=503))
        return error_response(LedgerUnavailable(
            "the ledger did not complete the call; nothing was recorded unless a later "
            "status check shows it"))

    async def on_face(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, FaceError)
        return error_response(face_error(exc))

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        # Reached only if UnexpectedErrors (gateway/core/failures.py) itself failed: that
        # middleware answers and swallows every other unexpected exception.
        correlation_id = new_correlation_id()
        log_unexpected(exc, correlation_id)
        return JSONResponse(status_code=500, content=internal_error_body(correlation_id))

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(ChaincodeError, on_chaincode)
    app.add_exception_handler(GatewayError, on_gateway)
    app.add_exception_handler(FaceError, on_face)
    app.add_exception_handler(Exception, on_unexpected)


# Shared `responses=` for route decorators so the OpenAPI schema documents the error body.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse}
    for status in (401, 403, 404, 409, 410, 413, 422, 423, 429, 500, 503)
}
