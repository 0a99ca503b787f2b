"""The MIP chaincode definition: one policy, deployed the same everywhere, satisfied by a
majority of the orgs and by no single org (docs/chaincode.md, "Endorsement model"); one list
of contracts, each a contract class of chaincode/mip."""

from __future__ import annotations

import importlib
import itertools
import re
from pathlib import Path

from script_module import load_script

from chaincode.protocol.deployment import CHAINCODE_POLICY, CONTRACT_SPEC, POLICY_ORGS
from chaincode.protocol.orgs import MEMBER_ORGS
from chaincode.shim import Contract
from gateway.cli.processes import POLICY as CLI_POLICY
from network.devnet import policy

REPO = Path(__file__).resolve().parents[3]


def test_every_deployment_uses_the_one_definition() -> None:
    network_sh = (REPO / "scripts" / "network.sh").read_text()
    found = re.search(r'^MIP_POLICY="(.*)"$', network_sh, re.MULTILINE)
    assert found is not None and found.group(1) == CHAINCODE_POLICY
    assert CLI_POLICY == CHAINCODE_POLICY
    assert load_script("bench_ledger").POLICIES["mip"] == CHAINCODE_POLICY


def test_a_majority_and_no_single_org_satisfies_it() -> None:
    assert set(POLICY_ORGS) == MEMBER_ORGS
    envelope = policy.parse_signature_policy(CHAINCODE_POLICY)
    minimal = set(policy.minimal_org_sets(envelope))
    majority = len(MEMBER_ORGS) // 2 + 1
    assert minimal == {frozenset(c) for c in itertools.combinations(MEMBER_ORGS, majority)}
    assert all(len(s) > 1 for s in minimal)


def test_the_contract_spec_names_the_mip_contracts() -> None:
    names = set()
    for entry in CONTRACT_SPEC.split(","):
        module, _, cls = entry.partition(":")
        assert module.startswith("chaincode.mip."), entry
        contract = getattr(importlib.import_module(module), cls)
        assert issubclass(contract, Contract)
        names.add(contract.name)
    assert CONTRACT_SPEC.split(",")[0].endswith(":PassportContract")  # the default contract
    assert len(names) == len(CONTRACT_SPEC.split(","))
