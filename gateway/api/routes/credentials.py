"""Routes of the credentials area (filled in by its owner)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["credentials"])
