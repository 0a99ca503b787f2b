"""Fabric's Node chaincode runtime (npm's fabric-shim, CCaaS server mode) on the real network.

`scripts/network.sh deploy` with MIP_CHAINCODE_RUNTIME=node serves scripts/node_chaincode as a
second chaincode, `nodeasset`, beside the Python-served `mip` (both the asset contract): the
pair the same-run comparison in scripts/bench_ledger.py measures. Both must do the same ledger
work, so the state they write for the same call must be byte-identical.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from fabric_network import FabricNetwork, install_node_chaincode, run_network_sh

from gateway.fabric import EndorseError, Gateway, GatewayError

pytestmark = [pytest.mark.fabric, pytest.mark.timeout(300)]

NODE_SETTINGS = {"MIP_CHAINCODE_NAME": "nodeasset", "MIP_CHAINCODE_RUNTIME": "node",
                 "MIP_CHAINCODE_PORT": "7060", "MIP_CHAINCODE_POLICY": "channel"}


@pytest.fixture(scope="module")
def node_profile(raft3_network: FabricNetwork) -> Iterator[Path]:
    install_node_chaincode()
    assert raft3_network.state_dir is not None and raft3_network.env is not None
    run_network_sh("deploy", {**raft3_network.env, **NODE_SETTINGS})
    yield raft3_network.state_dir / "connection.nodeasset.json"


@pytest.fixture
async def gateway(node_profile: Path) -> AsyncIterator[Gateway]:
    async with Gateway.from_connection(node_profile, "HospitalMSP", "User1") as gw:
        yield gw


def test_deploy_records_node_runtime(raft3_network: FabricNetwork, node_profile: Path) -> None:
    assert raft3_network.state_dir is not None
    pids = {p.stem for p in (raft3_network.state_dir / "pids").glob("cc-nodeasset-*.pid")}
    assert pids == {"cc-nodeasset-hospital", "cc-nodeasset-school", "cc-nodeasset-pharmacy"}
    record = (raft3_network.state_dir / "chaincode" / "nodeasset.contract").read_text()
    assert record.startswith("node:")
    # The mip chaincode's profile is left as it was.
    assert '"chaincode": "mip"' in (raft3_network.state_dir / "connection.json").read_text()


async def test_node_and_python_write_the_same_state(gateway: Gateway) -> None:
    asset_id = f"cmp-{secrets.token_hex(4)}"
    args = [asset_id, "blue", "5", "owner-" + "x" * 20, "1300"]
    channel = gateway.get_network("mipchannel")
    node, python = channel.get_contract("nodeasset"), channel.get_contract("mip")
    await node.submit("CreateAsset", args)
    await python.submit("CreateAsset", args)
    stored_node = await node.evaluate("ReadAsset", [asset_id])
    stored_python = await python.evaluate("ReadAsset", [asset_id])
    assert stored_node == stored_python
    assert stored_node == (
        b'{"AppraisedValue":1300,"Color":"blue","ID":"' + asset_id.encode()
        + b'","Owner":"owner-xxxxxxxxxxxxxxxxxxxx","Size":5}')


async def test_node_contract_errors(gateway: Gateway) -> None:
    node = gateway.get_network("mipchannel").get_contract("nodeasset")
    asset_id = f"dup-{secrets.token_hex(4)}"
    await node.submit("CreateAsset", [asset_id, "red", "1", "o", "2"])
    with pytest.raises(EndorseError, match="already exists"):
        await node.submit("CreateAsset", [asset_id, "red", "1", "o", "2"])
    with pytest.raises(GatewayError, match="does not exist"):
        await node.evaluate("ReadAsset", ["no-such-asset"])
