"""Org clients shared by the devnet test modules; each module starts its own `net` fixture."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from devnet_client import TestClient


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def hospital(net: Any) -> AsyncIterator[TestClient]:
    client = TestClient(net.data_dir, net.port, "HospitalMSP")
    yield client
    await client.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def school(net: Any) -> AsyncIterator[TestClient]:
    client = TestClient(net.data_dir, net.port, "SchoolMSP")
    yield client
    await client.close()
