"""`python -m network.devnet up --data DIR` (the README's command) serves the MIP contracts.

The chaincode devnet serves is named `mip`: a new data dir gets the MIP contracts under MIP's
majority policy (chaincode/protocol/deployment.py), and the asset-transfer sample only with
`--contract asset`. Started as a real process through the CLI entry, then asked by a Fabric
Gateway client.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from devnet_process import running_devnet

from chaincode.protocol.deployment import CHAINCODE_POLICY, CONTRACT_SPEC
from gateway.fabric import ChaincodeError, Gateway
from network.devnet.__main__ import _contract_and_policy
from network.devnet.config import DEFAULT_CONTRACT, ConfigError, DevnetConfig

METADATA_PROBE: tuple[str, tuple[str, ...]] = ("org.hyperledger.fabric:GetMetadata", ())


async def test_up_without_contract_serves_mip_and_refuses_asset(tmp_path: Path) -> None:
    with running_devnet(tmp_path, probe=METADATA_PROBE, contract=None) as devnet:
        saved = json.loads((devnet.data_dir / "devnet.json").read_text())
        assert saved["contract"] == CONTRACT_SPEC
        assert saved["policy"] == CHAINCODE_POLICY
        async with Gateway.from_connection(devnet.connection, "HospitalMSP", "User1") as gw:
            contract = gw.get_network("mipchannel").get_contract("mip")
            setting = json.loads(await contract.evaluate("Config:Get", ["vouch_k"]))
            assert setting == {"name": "vouch_k", "value": 2, "default": True}
            with pytest.raises(ChaincodeError):
                await contract.evaluate("AssetExists", ["asset-1"])


def _args(contract: str | None = None, policy: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(contract=contract, policy=policy)


def test_named_contracts_bring_their_policy(tmp_path: Path) -> None:
    assert _contract_and_policy(_args(), None) == (CONTRACT_SPEC, CHAINCODE_POLICY)
    assert _contract_and_policy(_args("mip"), None) == (CONTRACT_SPEC, CHAINCODE_POLICY)
    assert _contract_and_policy(_args("asset"), None) == (DEFAULT_CONTRACT,
                                                          "MAJORITY Endorsement")
    assert _contract_and_policy(_args("asset", "ANY Endorsement"), None) == (
        DEFAULT_CONTRACT, "ANY Endorsement")
    # A data dir with a devnet.json keeps what it says unless told otherwise.
    saved = DevnetConfig(data_dir=tmp_path)
    assert _contract_and_policy(_args(), saved) == (None, None)
    with pytest.raises(ConfigError, match="--contract must be one of"):
        _contract_and_policy(_args("assets"), None)
