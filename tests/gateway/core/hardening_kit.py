"""A gateway app without a ledger, for tests of what wraps every route (error handling,
body limits, headers): `create_app` with development settings over a temporary data dir,
plus test-only routes added by the test. httpx's ASGI transport runs no lifespan, so no
state (ledger, face engine) is built."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from gateway.core.config import Settings
from gateway.main import create_app


def bare_app(data_dir: Path, **overrides: Any) -> FastAPI:
    values: dict[str, Any] = {"data_dir": data_dir, "connection": data_dir / "connection.json",
                              "mode": "development", **overrides}
    return create_app(Settings(**values))


def client(app: FastAPI, *, raise_app_exceptions: bool = True,
           base_url: str = "http://gateway") -> httpx.AsyncClient:
    # raise_app_exceptions=True: what escapes the app reaches the client here as it would reach
    # the server (uvicorn), which logs it with its traceback.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    return httpx.AsyncClient(transport=transport, base_url=base_url)
