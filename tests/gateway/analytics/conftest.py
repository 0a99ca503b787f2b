"""Fixtures for the analytics tests: one devnet with the MIP contract for the whole session
(started only if an integration test asks for it), staff clients, an in-memory budget."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

# The MIP test kit (devnet start, staff identities) lives beside the contract tests.
_MIP_TESTS = Path(__file__).resolve().parents[2] / "chaincode" / "mip"
if str(_MIP_TESTS) not in sys.path:
    sys.path.append(str(_MIP_TESTS))

from mip_testkit import MipClients, MipNetwork, running_mip_devnet  # noqa: E402


@pytest.fixture(scope="session")
def analytics_devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MipNetwork]:
    with running_mip_devnet(tmp_path_factory.mktemp("analytics-devnet")) as net:
        yield net


@pytest.fixture
async def mip(analytics_devnet: MipNetwork) -> AsyncIterator[MipClients]:
    clients = MipClients(analytics_devnet)
    try:
        yield clients
    finally:
        await clients.close()
