"""Typed contract errors with stable codes.

Each error's message starts with its code (`access_denied: ...`) so a client that only sees
the peer's text (the Gateway passes the chaincode message through) can still branch on it.
Statuses are >= 400 because Fabric treats any status below 400 as success.
"""

from __future__ import annotations

from chaincode.shim import ContractError


class MipError(ContractError):
    code = "mip_error"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(f"{self.code}: {message}", status=self.status)
        self.detail = message


class InvalidRequest(MipError):
    code = "invalid_request"
    status = 400


class BadSignature(MipError):
    code = "bad_signature"
    status = 401


class AccessDenied(MipError):
    code = "access_denied"
    status = 403


class NotFound(MipError):
    code = "not_found"
    status = 404


class Conflict(MipError):
    code = "conflict"
    status = 409


class Replay(MipError):
    code = "replay"
    status = 409


class Expired(MipError):
    code = "expired"
    status = 410


class PreconditionFailed(MipError):
    """The record exists but its state forbids the action (revoked, exhausted, suspended...)."""

    code = "precondition_failed"
    status = 412


class ClockSkew(MipError):
    """The proposal's timestamp is too far from this endorser's clock (holder_auth.py)."""

    code = "clock_skew"
    status = 503
