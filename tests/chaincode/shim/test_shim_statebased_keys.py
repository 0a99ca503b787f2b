"""Key-level endorsement policies and composite-key helpers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaincode.shim import (
    InvalidCompositeKeyError,
    KeyEndorsementPolicy,
    PolicyError,
    RoleType,
    create_composite_key,
    split_composite_key,
)
from chaincode.shim._protos import msp_principal_pb2, policies_pb2
from chaincode.shim.errors import InvalidKeyError
from chaincode.shim.keys import partial_composite_key_range, validate_simple_keys


def _go_envelope(orgs: list[tuple[str, int]]) -> bytes:
    """What Go's statebased.Policy() marshals, built field by field."""
    envelope = policies_pb2.SignaturePolicyEnvelope()
    envelope.version = 0
    envelope.rule.n_out_of.n = len(orgs)
    for index, (msp_id, role) in enumerate(orgs):
        envelope.rule.n_out_of.rules.add().signed_by = index
        principal = envelope.identities.add()
        principal.principal_classification = msp_principal_pb2.MSPPrincipal.ROLE
        principal.principal = msp_principal_pb2.MSPRole(
            msp_identifier=msp_id, role=role
        ).SerializeToString()
    return envelope.SerializeToString()


def test_policy_requires_every_org_sorted() -> None:
    policy = KeyEndorsementPolicy()
    policy.add_orgs(RoleType.PEER, "SchoolMSP", "HospitalMSP")
    policy.add_orgs("MEMBER", "PharmacyMSP")
    assert policy.list_orgs() == ["HospitalMSP", "PharmacyMSP", "SchoolMSP"]
    peer, member = msp_principal_pb2.MSPRole.PEER, msp_principal_pb2.MSPRole.MEMBER
    assert policy.policy() == _go_envelope(
        [("HospitalMSP", peer), ("PharmacyMSP", member), ("SchoolMSP", peer)]
    )


def test_policy_round_trip_and_edit() -> None:
    policy = KeyEndorsementPolicy()
    policy.add_orgs(RoleType.PEER, "A", "B", "C")
    parsed = KeyEndorsementPolicy(policy.policy())
    assert parsed.list_orgs() == ["A", "B", "C"]
    assert parsed.policy() == policy.policy()
    parsed.del_orgs("B", "not-there")
    assert parsed.list_orgs() == ["A", "C"]
    envelope = policies_pb2.SignaturePolicyEnvelope.FromString(parsed.policy())
    assert envelope.rule.n_out_of.n == 2
    assert KeyEndorsementPolicy(None).policy() == _go_envelope([])


def test_policy_errors() -> None:
    with pytest.raises(PolicyError, match="does not exist"):
        KeyEndorsementPolicy().add_orgs("ADMIN", "A")
    with pytest.raises(PolicyError):
        KeyEndorsementPolicy(b"\xff\xff\xff")
    with pytest.raises(PolicyError, match="empty"):
        KeyEndorsementPolicy().add_orgs(RoleType.PEER, "")


def test_policy_matches_the_devnet_policy_language() -> None:
    # Imported here, not skipped when absent: the shim and devnet must keep one encoding.
    from network.devnet.policy import parse_signature_policy as parse

    policy = KeyEndorsementPolicy()
    policy.add_orgs(RoleType.PEER, "HospitalMSP", "SchoolMSP")
    expected = parse("AND('HospitalMSP.peer','SchoolMSP.peer')").SerializeToString()
    assert policy.policy() == expected


def test_composite_keys() -> None:
    key = create_composite_key("owner~asset", ["alice", "a1"])
    assert key == "\x00owner~asset\x00alice\x00a1\x00"
    assert split_composite_key(key) == ("owner~asset", ["alice", "a1"])
    assert split_composite_key(create_composite_key("t", [])) == ("t", [])
    assert split_composite_key(create_composite_key("t", ["", "é✓"])) == ("t", ["", "é✓"])
    assert partial_composite_key_range("t", ["a"]) == ("\x00t\x00a\x00", "\x00t\x00a\x00\U0010ffff")
    for bad_type, bad_attrs in [("a\x00", []), ("t", ["x\U0010ffff"]), ("t", ["\ud800"])]:
        with pytest.raises(InvalidCompositeKeyError):
            create_composite_key(bad_type, bad_attrs)
    for not_composite in ["plain", "", "\x00abc"]:
        with pytest.raises(InvalidCompositeKeyError):
            split_composite_key(not_composite)


def test_simple_key_validation() -> None:
    validate_simple_keys("a", "", "\x01")
    with pytest.raises(InvalidKeyError):
        validate_simple_keys("a", "\x00b")


_PART = st.text(
    alphabet=st.characters(blacklist_characters="\x00\U0010ffff", blacklist_categories=("Cs",))
)


@given(object_type=_PART, attributes=st.lists(_PART, max_size=5))
def test_composite_key_round_trip_property(object_type: str, attributes: list[str]) -> None:
    key = create_composite_key(object_type, attributes)
    assert split_composite_key(key) == (object_type, attributes)
    start, end = partial_composite_key_range(object_type, attributes)
    assert start <= key < end
