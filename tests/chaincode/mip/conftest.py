"""Fixtures for the MIP contract tests: one network per session with the MIP chaincode.

Every test that uses `mip_network` (directly or through `mip`) runs twice: on devnet, and as
its `fabric`-marked variant on the real Fabric network of scripts/network.sh (`pytest -m
fabric` runs only those; `-m "not fabric"` only devnet). Without Fabric's binaries ($FABRIC_BIN
or PATH) the fabric variants are skipped, naming what is missing. pytest finishes every test
of one network before starting the other, so the two never run at the same time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from mip_testkit import (
    Holder,
    MipClients,
    MipNetwork,
    fabric_unavailable_reason,
    make_kyc_issuers,
    new_holder,
    running_mip_network,
)

from gateway.kyc.issuer import KycIssuer


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the fabric variants skipped up front when they cannot run, so the summary folds
    them into one line per file instead of one per test."""
    fabric_items = [
        item for item in items
        if getattr(item, "callspec", None) is not None
        and item.callspec.params.get("mip_network") == "fabric"  # type: ignore[attr-defined]
    ]
    if not fabric_items:
        return
    reason = fabric_unavailable_reason()
    if reason is not None:
        for item in fabric_items:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(
    scope="session", params=["devnet", pytest.param("fabric", marks=pytest.mark.fabric)]
)
def mip_network(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MipNetwork]:
    target = str(request.param)
    with running_mip_network(target, tmp_path_factory.mktemp(f"mip-{target}")) as net:
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
