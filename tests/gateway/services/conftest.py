"""Fixtures for the gateway service tests (see gateway_testkit.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from gateway_testkit import GatewayClient, make_settings
from mip_testkit import MipNetwork, running_mip_devnet

from face_engine.engine import FaceEngine
from gateway.main import create_app
from gateway.services.ledger import ensure_service_identities
from gateway.services.state import build_state


@pytest.fixture(scope="session")
def gw_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MipNetwork]:
    with running_mip_devnet(tmp_path_factory.mktemp("gw-devnet")) as net:
        ensure_service_identities(net.connection)
        yield net


@pytest.fixture(scope="session")
def face_engine() -> FaceEngine:
    from face_engine.engine import load_default_engine

    return load_default_engine()


@pytest.fixture(scope="session")
def gw_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gw-data")


@pytest.fixture
async def gw(gw_network: MipNetwork, gw_data_dir: Path,
             face_engine: FaceEngine) -> AsyncIterator[GatewayClient]:
    """The app on a fresh event loop, over the session's devnet and gateway data dir."""
    settings = make_settings(gw_data_dir, gw_network.connection)
    state = build_state(settings)
    state._face = face_engine
    app = create_app(state=state)
    app.state.mip = state  # httpx's ASGI transport does not run the lifespan
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        try:
            yield GatewayClient(state, http)
        finally:
            await state.close()
