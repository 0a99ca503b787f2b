"""Fixtures for the MIP contract tests: one devnet per session with the MIP chaincode."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from mip_testkit import MipClients, MipNetwork, running_mip_devnet


@pytest.fixture(scope="session")
def mip_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MipNetwork]:
    with running_mip_devnet(tmp_path_factory.mktemp("mip-devnet")) as net:
        yield net


@pytest.fixture
async def mip(mip_network: MipNetwork) -> AsyncIterator[MipClients]:
    clients = MipClients(mip_network)
    try:
        yield clients
    finally:
        await clients.close()
