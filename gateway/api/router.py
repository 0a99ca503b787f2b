"""All routers under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter

from gateway.api.routes import (
    accounts,
    admin,
    analytics,
    audit,
    checks,
    credentials,
    custody,
    enrolment,
    grants,
    guardian_rotation,
    health,
    key_moves,
    linkage,
    oprf,
    passports,
    pharmacy,
    profile,
    reviews,
    screening,
    wallet_views,
)
from gateway.core.errors import ERROR_RESPONSES

api_router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)
for module in (health, enrolment, passports, accounts, credentials, grants, pharmacy, checks,
               audit, analytics, admin, profile, linkage, custody, oprf, reviews,
               screening, wallet_views, key_moves, guardian_rotation):
    api_router.include_router(module.router)
