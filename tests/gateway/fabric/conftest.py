"""Fixtures for the Gateway client tests: a run-time user identity and a fake gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fabric_testkit import FakeGateway, Served, User, issue, make_ca, serve

from gateway.fabric import Deadlines, Gateway, Identity, Signer


@pytest.fixture
def user() -> User:
    ca = make_ca("ca.hospital.mip.local")
    pair = issue(ca, "User1@hospital.mip.local")
    return User(ca, pair, Identity("HospitalMSP", pair.cert_pem), Signer.from_pem(pair.key_pem))


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    result = await serve(FakeGateway())
    yield result
    await result.server.stop(grace=None)


@pytest.fixture
async def gateway(served: Served, user: User) -> AsyncIterator[Gateway]:
    assert served.tls_ca is not None
    async with Gateway.connect(
        served.endpoint,
        user.identity,
        user.signer,
        tls_root_cert=served.tls_ca.cert_pem,
        deadlines=Deadlines(evaluate=2, endorse=2, submit=2, commit_status=2),
    ) as gw:
        yield gw
