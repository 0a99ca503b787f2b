"""Fixtures for the shim tests: a running shim server and a fake peer connected to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from shim_contracts import Other, Probe
from shim_testkit import FakePeer, Running, User, connect_peer, default_user, start_shim

from chaincode.contracts.asset import AssetContract


@pytest.fixture
async def shim() -> AsyncIterator[Running]:
    running = await start_shim([Probe(), Other(), AssetContract()])
    yield running
    await running.server.stop(grace=None)


@pytest.fixture
async def peer(shim: Running) -> AsyncIterator[FakePeer]:
    fake = await connect_peer(shim.port)
    yield fake
    await fake.close()
    await fake.channel.close()


@pytest.fixture
def user() -> User:
    return default_user()
