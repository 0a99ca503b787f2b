"""The MIP chaincode policy: one definition, deployed the same everywhere, satisfied by a
majority of the orgs and by no single org (docs/chaincode.md, "Endorsement model")."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

from script_module import load_script

from chaincode.mip.endorsement import CHAINCODE_POLICY, POLICY_ORGS
from chaincode.mip.staff import MEMBER_ORGS
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
