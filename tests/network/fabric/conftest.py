"""A real Fabric network for `fabric` tests: reuse a deployed one or bring one up for the session.

Order of preference:
1. MIP_CONNECTION names a connection.json whose "network" is "fabric" and whose chaincode
   servers run the asset contract (network.sh records it beside the profile): use it as it is.
2. Fabric's binaries are on PATH or in $FABRIC_BIN: `scripts/network.sh up` + `deploy` with the
   asset contract and the channel's MAJORITY policy (these tests check the Gateway's plans
   against it; network.sh's default is the MIP contract) into a temporary state dir on ports
   shifted by MIP_FABRIC_TEST_PORT_OFFSET (default 300, so a network already running on the
   default ports, or the MIP scenario tests' network on 400, is left alone), and `down` +
   `clean` at the end.
3. Otherwise every `fabric` test is skipped, saying which binaries are missing where.

`raft3_network` (test_raft3.py, test_node_chaincode.py) is always a network of its own: three
etcdraft orderers (MIP_ORDERERS=3), the asset contract as `mip` with the channel's MAJORITY
policy, on ports shifted by MIP_FABRIC_RAFT_TEST_PORT_OFFSET (default 600); the Node chaincode
test deploys `nodeasset` beside it. test_raft3.py kills an orderer, so it runs last (file order).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from fabric_network import (
    ASSET_CONTRACT,
    FabricNetwork,
    fabric_profile_from_env,
    missing_fabric_binaries,
    session_network,
)


@pytest.fixture(scope="session")
def fabric_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FabricNetwork]:
    existing = fabric_profile_from_env(ASSET_CONTRACT)
    if existing is not None:
        yield FabricNetwork(connection=existing, state_dir=None)
        return
    reason = missing_fabric_binaries()
    if reason:
        pytest.skip(reason)
    state = tmp_path_factory.mktemp("fabric") / "state"
    offset = os.environ.get("MIP_FABRIC_TEST_PORT_OFFSET", "300")
    settings = {"MIP_CHAINCODE_CONTRACT": ASSET_CONTRACT, "MIP_CHAINCODE_POLICY": "channel"}
    with session_network(state, offset, settings) as net:
        yield net


@pytest.fixture(scope="session")
def raft3_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FabricNetwork]:
    reason = missing_fabric_binaries()
    if reason:
        pytest.skip(reason)
    state = tmp_path_factory.mktemp("fabric-raft3") / "state"
    offset = os.environ.get("MIP_FABRIC_RAFT_TEST_PORT_OFFSET", "600")
    settings = {"MIP_ORDERERS": "3", "MIP_CHAINCODE_CONTRACT": ASSET_CONTRACT,
                "MIP_CHAINCODE_POLICY": "channel"}
    with session_network(state, offset, settings) as net:
        yield net
