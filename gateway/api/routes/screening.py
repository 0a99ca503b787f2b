"""Gateway-to-gateway private screening steps (gateway/services/private_screening.py).

Bodies are signed envelopes (application/octet-stream): the calling org is authenticated by
its screening key's signature, checked in the service. Not mounted in the app yet: the
enrolment does not screen across orgs yet (docs/face.md, 5b); ``build_router`` gives the
routes over a gateway's roles, and the tests serve them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from gateway.core.errors import NotFound
from gateway.services.private_screening import GalleryRole, KeyHolderRole

# A query is 128 CKKS ciphertexts (about 30 MB); masked scores are 0.13 MB per 8,192
# references (16 MB per 1M): room for a gallery of 3M references.
SCREENING_BODY_LIMIT = 64 * 1024 * 1024
_OCTETS = "application/octet-stream"


@dataclass
class ScreeningRoles:
    key_holder: KeyHolderRole | None = None
    gallery: GalleryRole | None = None


def build_router(roles: ScreeningRoles) -> APIRouter:
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
