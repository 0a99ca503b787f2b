"""devnet collections: the MIP collections file, validation, CollectionConfigPackage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fabric_protos.peer import collection_pb2

from network.devnet import policy as P
from network.devnet.collections import (
    CollectionConfigError,
    implicit_collection,
    load_collections,
    parse_collections,
    to_package_proto,
)

MIP_FILE = Path(__file__).resolve().parents[3] / "network" / "fabric" / "collections_config.json"


def _good(**overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "name": "medical",
        "policy": "OR('HospitalMSP.member')",
        "requiredPeerCount": 0,
        "maxPeerCount": 1,
        "blockToLive": 0,
        "memberOnlyRead": True,
        "memberOnlyWrite": True,
    }
    item.update(overrides)
    return {k: v for k, v in item.items() if v is not None}


def test_mip_file_loads() -> None:
    configs = load_collections(MIP_FILE)
    assert list(configs) == ["medical", "education"]
    medical, education = configs["medical"], configs["education"]
    assert medical.member_orgs == {"HospitalMSP"}
    assert education.member_orgs == {"SchoolMSP"}
    for config in (medical, education):
        assert (config.required_peer_count, config.max_peer_count, config.block_to_live) == (
            0,
            1,
            0,
        )
        # Reads by grantees go through the contract on a member peer; writes need members.
        assert not config.member_only_read and config.member_only_write
        assert config.endorsement_policy is not None
        assert P.orgs_in(config.endorsement_policy) == config.member_orgs
    assert medical.is_member("HospitalMSP")
    assert not medical.is_member("SchoolMSP")
    assert not medical.is_member("PharmacyMSP")  # prescriptions go through the grant check
    assert education.is_member("SchoolMSP")
    assert not education.is_member("HospitalMSP")
    assert P.to_bytes(medical.member_orgs_policy) == P.to_bytes(
        P.parse_signature_policy("OR('HospitalMSP.member')")
    )


def test_package_proto_is_what_the_peer_cli_builds() -> None:
    package = to_package_proto(load_collections(MIP_FILE))
    assert isinstance(package, collection_pb2.CollectionConfigPackage)
    again = collection_pb2.CollectionConfigPackage.FromString(package.SerializeToString())
    assert [c.static_collection_config.name for c in again.config] == ["medical", "education"]
    medical = again.config[0].static_collection_config
    assert medical.required_peer_count == 0
    assert medical.maximum_peer_count == 1
    assert medical.block_to_live == 0
    # Grantees (pharmacies, employers) read through the contract's grant check on a member
    # peer, so reads are not limited to member clients; writes are, and need a member peer.
    assert not medical.member_only_read and medical.member_only_write
    assert P.orgs_in(medical.endorsement_policy.signature_policy) == {"HospitalMSP"}
    assert P.orgs_in(medical.member_orgs_policy.signature_policy) == {"HospitalMSP"}


def test_endorsement_policies() -> None:
    configs = parse_collections(
        [
            _good(
                name="a",
                endorsementPolicy={"signaturePolicy": "OR('HospitalMSP.peer')"},
            ),
            _good(
                name="b",
                endorsementPolicy={"channelConfigPolicy": "/Channel/Application/Endorsement"},
            ),
        ]
    )
    assert P.to_text(configs["a"].endorsement_policy) == "OutOf(1, 'HospitalMSP.peer')"
    assert P.to_text(configs["b"].endorsement_policy) == (
        "OutOf(2, 'HospitalMSP.peer', 'SchoolMSP.peer', 'PharmacyMSP.peer')"
    )
    package = to_package_proto(configs)
    a, b = (c.static_collection_config for c in package.config)
    assert a.endorsement_policy.WhichOneof("Type") == "signature_policy"
    assert b.endorsement_policy.channel_config_policy_reference == (
        "/Channel/Application/Endorsement"
    )


def test_peer_cli_defaults_for_missing_counts() -> None:
    config = parse_collections(
        [{"name": "c", "policy": "OR('SchoolMSP.member', 'PharmacyMSP.member')"}]
    )["c"]
    assert (config.required_peer_count, config.max_peer_count) == (0, 1)
    assert (config.block_to_live, config.member_only_read, config.member_only_write) == (
        0,
        False,
        False,
    )
    assert config.member_orgs == {"SchoolMSP", "PharmacyMSP"}


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([_good(name=None)], "name"),
        ([_good(name="")], "name"),
        ([_good(name="bad name")], "not allowed"),
        ([_good(name="_implicit_org_HospitalMSP")], "reserved"),
        ([_good(policy=None)], "policy"),
        ([_good(policy="OR('HospitalMSP.member'")], "invalid policy"),
        ([_good(policy="OR('HospitalMSP.boss')")], "invalid policy"),
        ([_good(policy="AND('HospitalMSP.member', 'SchoolMSP.member')")], "OR concatenation"),
        ([_good(policy="OR('EvilMSP.member')")], "not part of the channel"),
        ([_good(requiredPeerCount=2, maxPeerCount=1)], "maximum peer count"),
        ([_good(requiredPeerCount=-1)], "less than zero"),
        ([_good(maxPeerCount="1")], "integer"),
        ([_good(blockToLive=True)], "integer"),
        ([_good(memberOnlyRead="yes")], "true or false"),
        ([_good(requiredPeerCuont=1)], "unknown keys"),
        ([_good(), _good()], "duplicate"),
        (
            [
                _good(
                    endorsementPolicy={
                        "signaturePolicy": "OR('HospitalMSP.peer')",
                        "channelConfigPolicy": "/Channel/Application/Endorsement",
                    }
                )
            ],
            "both",
        ),
        ([_good(endorsementPolicy={"signaturePolicy": "OR("})], "endorsement policy"),
        (
            [_good(endorsementPolicy={"signaturePolicy": "OR('EvilMSP.peer')"})],
            "not in the channel",
        ),
        ([_good(endorsementPolicy="OR('HospitalMSP.peer')")], "endorsementPolicy"),
        ([_good(endorsementPolicy={"channelConfigPolicy": "/Channel/Nope"})], "endorsement"),
        (["medical"], "JSON object"),
    ],
)
def test_invalid_collections(items: list[Any], message: str) -> None:
    with pytest.raises(CollectionConfigError, match=message):
        parse_collections(items)


def test_invalid_files(tmp_path: Path) -> None:
    not_json = tmp_path / "broken.json"
    not_json.write_text("[{")
    with pytest.raises(CollectionConfigError, match="not valid JSON"):
        load_collections(not_json)
    an_object = tmp_path / "object.json"
    an_object.write_text(json.dumps(_good()))
    with pytest.raises(CollectionConfigError, match="array"):
        load_collections(an_object)
    with pytest.raises(CollectionConfigError, match="cannot read"):
        load_collections(tmp_path / "missing.json")
    no_name = tmp_path / "noname.json"
    no_name.write_text(json.dumps([_good(name=None)]))
    with pytest.raises(CollectionConfigError):
        load_collections(no_name)


def test_channel_orgs_can_be_given() -> None:
    items = [_good(policy="OR('Org1MSP.member')")]
    with pytest.raises(CollectionConfigError):
        parse_collections(items)
    assert parse_collections(items, channel_orgs=["Org1MSP"])["medical"].is_member("Org1MSP")


def test_implicit_collection() -> None:
    config = implicit_collection("PharmacyMSP")
    assert config.name == "_implicit_org_PharmacyMSP"
    assert config.is_member("PharmacyMSP") and not config.is_member("HospitalMSP")
    assert not config.member_only_read and not config.member_only_write
    assert (config.required_peer_count, config.max_peer_count, config.block_to_live) == (0, 1, 0)
    # Fabric's policydsl.SignedByMspMember
    assert P.to_text(config.member_orgs_policy) == "OutOf(1, 'PharmacyMSP.member')"
    assert P.to_text(config.endorsement_policy) == "OutOf(1, 'PharmacyMSP.peer')"
    with pytest.raises(CollectionConfigError):
        implicit_collection("bad msp")
