"""Gateway-to-gateway private screening steps (gateway/services/private_screening.py).

Mounted under /api/v1/screening at every gateway; they answer where the gateway is one org's
and knows the other orgs' gateways (services/screening_consortium.py; else 503
`screening_not_configured`). Each request must carry the calling gateway's signed headers
(gateway/core/peer_auth.py: its service identity, within the clock window, a fresh nonce);
the body is a signed envelope (application/octet-stream) that the roles check again (sender,
recipient, step, the request recorded on the ledger). ``build_router`` serves the same steps
over given roles, for the protocol's tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from gateway.api.deps import StateDep
from gateway.core.errors import NotFound
from gateway.services.peer_requests import peer_requests
from gateway.services.private_screening import (
    GalleryRole,
    KeyHolderRole,
    PeerUnauthenticated,
    claimed_sender,
)
from gateway.services.screening_consortium import consortium_screening

# A query is 128 CKKS ciphertexts (about 30 MB); masked scores are 0.13 MB per 8,192
# references (16 MB per 1M): room for a gallery of 3M references.
SCREENING_BODY_LIMIT = 64 * 1024 * 1024
_OCTETS = "application/octet-stream"

router = APIRouter(prefix="/screening", tags=["screening"], include_in_schema=False)


async def _step(name: str, request: Request, state: StateDep) -> Response:
    service = consortium_screening(state)
    org = service._require()
    body = await request.body()
    caller = peer_requests(state).authenticate(org, request.headers, request.method,
                                               request.url.path, body)
    if claimed_sender(body) != caller:  # one org's request carrying another's message
        raise PeerUnauthenticated("the message is not from the calling gateway's org")
    return Response(await service.step(name, body), media_type=_OCTETS)


@router.post("/key", max_body_size=SCREENING_BODY_LIMIT)
async def key_step(request: Request, state: StateDep) -> Response:
    return await _step("key", request, state)


@router.post("/score", max_body_size=SCREENING_BODY_LIMIT)
async def score_step(request: Request, state: StateDep) -> Response:
    return await _step("score", request, state)


@router.post("/decide", max_body_size=SCREENING_BODY_LIMIT)
async def decide_step(request: Request, state: StateDep) -> Response:
    return await _step("decide", request, state)


@dataclass
class ScreeningRoles:
    key_holder: KeyHolderRole | None = None
    gallery: GalleryRole | None = None


def build_router(roles: ScreeningRoles) -> APIRouter:
    """The steps over given roles, unauthenticated at the HTTP layer (the envelopes are
    checked): the protocol's tests serve them."""
    router = APIRouter(tags=["screening"], include_in_schema=False)

    @router.post("/v1/screening/key", max_body_size=SCREENING_BODY_LIMIT)
    async def key(request: Request) -> Response:
        holder = _need(roles.key_holder)
        body = await request.body()
        return Response(await run_in_threadpool(holder.key, body), media_type=_OCTETS)

    @router.post("/v1/screening/decide", max_body_size=SCREENING_BODY_LIMIT)
    async def decide(request: Request) -> Response:
        holder = _need(roles.key_holder)
        body = await request.body()
        return Response(await run_in_threadpool(holder.decide, body), media_type=_OCTETS)

    @router.post("/v1/screening/score", max_body_size=SCREENING_BODY_LIMIT)
    async def score(request: Request) -> Response:
        gallery = _need(roles.gallery)
        body = await request.body()
        return Response(await run_in_threadpool(gallery.score, body), media_type=_OCTETS)

    return router


_R = TypeVar("_R", KeyHolderRole, GalleryRole)


def _need(role: _R | None) -> _R:
    if role is None:
        raise NotFound("this gateway plays no such screening role")
    return role
