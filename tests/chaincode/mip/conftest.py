"""Fixtures for the MIP contract tests: one devnet per session with the MIP chaincode."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from mip_testkit import (
    Holder,
    MipClients,
    MipNetwork,
    make_kyc_issuers,
    new_holder,
    running_mip_devnet,
)

from chaincode.mip.kyc_credentials import KycIssuer


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


@pytest.fixture(scope="session")
def kyc_issuers() -> dict[str, KycIssuer]:
    """KYC issuers (private parts stay in the test) for HospitalMSP and SchoolMSP."""
    return make_kyc_issuers()


@pytest.fixture
async def holder(mip: MipClients, kyc_issuers: dict[str, KycIssuer]) -> Holder:
    """A fresh level-2 holder enrolled at HospitalMSP, with a KYC credential."""
    return await new_holder(mip, kyc_issuers)
