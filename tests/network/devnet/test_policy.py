"""devnet policies: policydsl parsing, cauthdsl evaluation, implicit meta, planning."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from fabric_protos.common import policies_pb2
from fabric_protos.msp import msp_principal_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from network.devnet import pki
from network.devnet import policy as P
from network.devnet.msp import MSPManager, ValidatedIdentity
from network.devnet.orgs import DEFAULT_PEER_ORGS

ORGS = ["HospitalMSP", "SchoolMSP", "PharmacyMSP"]
MEMBER, ADMIN, CLIENT, PEER, ORDERER = 0, 1, 2, 3, 4


# ------------------------------------------------------------------ hand-built expected protos


def _role(msp_id: str, role: int = MEMBER) -> msp_principal_pb2.MSPPrincipal:
    return msp_principal_pb2.MSPPrincipal(
        principal_classification=msp_principal_pb2.MSPPrincipal.ROLE,
        principal=msp_principal_pb2.MSPRole(msp_identifier=msp_id, role=role).SerializeToString(),
    )


def _by(i: int) -> policies_pb2.SignaturePolicy:
    return policies_pb2.SignaturePolicy(signed_by=i)


def _n(n: int, *rules: policies_pb2.SignaturePolicy) -> policies_pb2.SignaturePolicy:
    return policies_pb2.SignaturePolicy(
        n_out_of=policies_pb2.SignaturePolicy.NOutOf(n=n, rules=list(rules))
    )


def _env(
    rule: policies_pb2.SignaturePolicy, *principals: msp_principal_pb2.MSPPrincipal
) -> policies_pb2.SignaturePolicyEnvelope:
    return policies_pb2.SignaturePolicyEnvelope(version=0, rule=rule, identities=list(principals))


# The expected envelopes are those of Fabric's own policydsl tests (common/policydsl).
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("AND('A.member', 'B.member')", _env(_n(2, _by(0), _by(1)), _role("A"), _role("B"))),
        ("OR('A.member', 'B.member')", _env(_n(1, _by(0), _by(1)), _role("A"), _role("B"))),
        (
            "OR('A.member', AND('B.member', 'C.member'))",
            _env(_n(1, _by(2), _n(2, _by(0), _by(1))), _role("B"), _role("C"), _role("A")),
        ),
        (
            "OR(AND('A.member', 'B.member'), OR('C.admin', 'D.member'))",
            _env(
                _n(1, _n(2, _by(0), _by(1)), _n(1, _by(2), _by(3))),
                _role("A"),
                _role("B"),
                _role("C", ADMIN),
                _role("D"),
            ),
        ),
        (
            "OR('MSP.member', 'MSP.WITH.DOTS.member', 'MSP-WITH-DASHES.member')",
            _env(
                _n(1, _by(0), _by(1), _by(2)),
                _role("MSP"),
                _role("MSP.WITH.DOTS"),
                _role("MSP-WITH-DASHES"),
            ),
        ),
        (
            "OR('A.peer', 'B.admin', 'C.orderer', 'D.client')",
            _env(
                _n(1, _by(0), _by(1), _by(2), _by(3)),
                _role("A", PEER),
                _role("B", ADMIN),
                _role("C", ORDERER),
                _role("D", CLIENT),
            ),
        ),
        ("OutOf('1', 'A.member', 'B.member')", _env(_n(1, _by(0), _by(1)), _role("A"), _role("B"))),
        ("OutOf(0, 'A.member', 'B.member')", _env(_n(0, _by(0), _by(1)), _role("A"), _role("B"))),
        ("OutOf(3, 'A.member', 'B.member')", _env(_n(3, _by(0), _by(1)), _role("A"), _role("B"))),
        ("and('A.member')", _env(_n(1, _by(0)), _role("A"))),
        ('Or("A.member")', _env(_n(1, _by(0)), _role("A"))),
        (
            "  outof( 2 ,\n 'A.member', 'A.member' ) ",  # no principal de-duplication in 2.5
            _env(_n(2, _by(0), _by(1)), _role("A"), _role("A")),
        ),
    ],
)
def test_parse_matches_policydsl(text: str, expected: policies_pb2.SignaturePolicyEnvelope) -> None:
    got = P.parse_signature_policy(text)
    assert P.to_bytes(got) == P.to_bytes(expected)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "'A.member'",
        "A.member",
        "1",
        "OR()",
        "And()",
        "OutOf(1)",
        "OutOf(-1, 'A.member', 'B.member')",
        "OutOf(4, 'A.member', 'B.member')",
        "OutOf(true, 'A.member')",
        "OutOf(1, 2)",
        "OutOf(1, 'true')",
        "OR('A.member', Bmember)",
        "OR('A.member', 'Bmember')",
        "OR('A.superuser')",
        "OR('A b.member')",
        "XOR('A.member')",
        "oR('A.member')",
        "OR('A.member'",
        "OR('A.member'))",
        "OR('A.member' 'B.member')",
        "OR('A.member',)",
        "OR('A.member') AND('B.member')",
        "OR('A.member'; 'B.member')",
    ],
)
def test_bad_policies_raise_policy_error(text: str) -> None:
    with pytest.raises(P.PolicyError):
        P.parse_signature_policy(text)


def test_nesting_is_bounded() -> None:
    deep = "OR(" * 5000 + "'A.member'" + ")" * 5000
    with pytest.raises(P.PolicyError, match="nested"):
        P.parse_signature_policy(deep)
    fine = "OR(" * 40 + "'A.member'" + ")" * 40
    assert P.orgs_in(P.parse_signature_policy(fine)) == {"A"}


# ------------------------------------------------------------------ evaluation with real identities


@pytest.fixture(scope="module")
def ids(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ValidatedIdentity]:
    data_dir = tmp_path_factory.mktemp("policy")
    pki.generate_network(data_dir)
    manager = MSPManager.from_data_dir(data_dir)
    found: dict[str, ValidatedIdentity] = {}
    for org in DEFAULT_PEER_ORGS:
        base = pki.org_dir(data_dir, org)
        short = org.msp_id[0]  # H, S, P
        for key, rel in (
            ("peer", f"peers/peer0.{org.domain}/msp"),
            ("client", f"users/User1@{org.domain}/msp"),
            ("admin", f"users/Admin@{org.domain}/msp"),
        ):
            signer = pki.msp_signing_identity(base / rel, org.msp_id)
            found[f"{short}.{key}"] = manager.validate(signer.serialized)
    return found


def _subsets(names: list[str]) -> list[tuple[str, ...]]:
    return [c for k in range(len(names) + 1) for c in itertools.combinations(names, k)]


@pytest.mark.parametrize(
    ("text", "oracle"),
    [
        ("OR('HospitalMSP.peer', 'SchoolMSP.peer')", lambda s: "H" in s or "S" in s),
        ("AND('HospitalMSP.peer', 'SchoolMSP.peer')", lambda s: "H" in s and "S" in s),
        (
            "OR(AND('HospitalMSP.peer', 'SchoolMSP.peer'), 'PharmacyMSP.peer')",
            lambda s: ("H" in s and "S" in s) or "P" in s,
        ),
        (
            "AND('HospitalMSP.member', OR('SchoolMSP.peer', 'PharmacyMSP.member'))",
            lambda s: "H" in s and ("S" in s or "P" in s),
        ),
        (
            "OutOf(2, 'HospitalMSP.peer', 'SchoolMSP.peer', 'PharmacyMSP.peer')",
            lambda s: len(s) >= 2,
        ),
        (
            "OutOf(2, 'HospitalMSP.peer', AND('SchoolMSP.peer', 'PharmacyMSP.peer'), "
            "OR('SchoolMSP.peer', 'PharmacyMSP.peer'))",
            # {S, P}: the AND takes both peers and leaves the OR nothing, so only 1 of 2.
            lambda s: "H" in s and ("S" in s or "P" in s),
        ),
        ("OutOf(0, 'HospitalMSP.peer')", lambda s: True),
        ("OutOf(2, 'HospitalMSP.peer')", lambda s: False),
    ],
)
def test_truth_tables(
    ids: dict[str, ValidatedIdentity], text: str, oracle: Callable[[set[str]], bool]
) -> None:
    envelope = P.parse_signature_policy(text)
    for subset in _subsets(["H", "S", "P"]):
        signers = [ids[f"{org}.peer"] for org in subset]
        assert P.evaluate(envelope, signers) is oracle(set(subset)), subset


def test_each_identity_satisfies_one_principal(ids: dict[str, ValidatedIdentity]) -> None:
    twice = P.parse_signature_policy("AND('HospitalMSP.member', 'HospitalMSP.member')")
    assert not P.evaluate(twice, [ids["H.peer"]])
    assert not P.evaluate(twice, [ids["H.peer"], ids["H.peer"]])  # same cert counts once
    assert P.evaluate(twice, [ids["H.peer"], ids["H.client"]])
    out_of = P.parse_signature_policy("OutOf(2, 'HospitalMSP.member', 'SchoolMSP.member')")
    assert not P.evaluate(out_of, [ids["H.peer"], ids["H.admin"]])


def test_evaluation_is_greedy_like_cauthdsl(ids: dict[str, ValidatedIdentity]) -> None:
    # cauthdsl gives each principal the first unused identity that satisfies it, without
    # backtracking, so the order of signatures matters -- as on a real peer.
    envelope = P.parse_signature_policy("AND('HospitalMSP.member', 'HospitalMSP.peer')")
    assert P.evaluate(envelope, [ids["H.client"], ids["H.peer"]])
    assert not P.evaluate(envelope, [ids["H.peer"], ids["H.client"]])


def test_role_matching(ids: dict[str, ValidatedIdentity]) -> None:
    peer_policy = P.parse_signature_policy("OR('HospitalMSP.peer')")
    assert not P.evaluate(peer_policy, [ids["H.client"]])
    assert not P.evaluate(peer_policy, [ids["H.admin"]])
    assert not P.evaluate(peer_policy, [ids["S.peer"]])
    assert P.evaluate(peer_policy, [ids["H.client"], ids["H.peer"]])
    admin_policy = P.parse_signature_policy("OR('SchoolMSP.admin')")
    assert P.evaluate(admin_policy, [ids["S.admin"]])
    assert not P.evaluate(admin_policy, [ids["S.peer"], ids["S.client"]])
    client_policy = P.parse_signature_policy("OR('PharmacyMSP.client')")
    assert P.evaluate(client_policy, [ids["P.client"]])
    assert not P.evaluate(client_policy, [ids["P.admin"]])
    assert P.evaluate(P.parse_signature_policy("OR('PharmacyMSP.member')"), [ids["P.admin"]])
    assert not P.evaluate(peer_policy, [])


def test_implicit_meta(ids: dict[str, ValidatedIdentity]) -> None:
    majority = P.implicit_meta("MAJORITY Endorsement", ORGS)
    assert P.to_text(majority) == (
        "OutOf(2, 'HospitalMSP.peer', 'SchoolMSP.peer', 'PharmacyMSP.peer')"
    )
    for subset in _subsets(["H", "S", "P"]):
        peers = [ids[f"{o}.peer"] for o in subset]
        assert P.evaluate(majority, peers) is (len(subset) >= 2)
        clients = [ids[f"{o}.client"] for o in subset]
        assert not P.evaluate(majority, clients)  # Endorsement means peers
    any_ = P.implicit_meta("ANY Endorsement", DEFAULT_PEER_ORGS)
    all_ = P.implicit_meta("ImplicitMeta ALL Endorsement", ORGS)
    assert P.evaluate(any_, [ids["S.peer"]])
    assert not P.evaluate(all_, [ids["S.peer"], ids["P.peer"]])
    assert P.evaluate(all_, [ids["S.peer"], ids["P.peer"], ids["H.peer"]])
    assert P.to_text(P.implicit_meta("MAJORITY Endorsement", ORGS[:2])).startswith("OutOf(2,")
    assert P.to_text(P.implicit_meta("MAJORITY Endorsement", [*ORGS, "X", "Y"])).startswith(
        "OutOf(3,"
    )
    writers = P.implicit_meta("ANY Writers", ORGS)
    assert P.evaluate(writers, [ids["P.client"]])
    assert not P.evaluate(writers, [ids["P.peer"]])
    for bad in ("MOST Endorsement", "MAJORITY", "MAJORITY Nonsense", "ANY Endorsement extra"):
        with pytest.raises(P.PolicyError):
            P.implicit_meta(bad, ORGS)
    with pytest.raises(P.PolicyError):
        P.implicit_meta("ANY Endorsement", [])


def test_policy_from_definition(ids: dict[str, ValidatedIdentity]) -> None:
    a = P.policy_from_definition("MAJORITY Endorsement", ORGS)
    b = P.policy_from_definition("/Channel/Application/Endorsement", ORGS)
    c = P.policy_from_definition(
        "OutOf(2, 'HospitalMSP.peer', 'SchoolMSP.peer', 'PharmacyMSP.peer')", ORGS
    )
    assert P.to_bytes(a) == P.to_bytes(b) == P.to_bytes(c)
    d = P.policy_from_definition("OR('HospitalMSP.peer')", ORGS)
    assert P.evaluate(d, [ids["H.peer"]])
    with pytest.raises(P.PolicyError):
        P.policy_from_definition("SOMETIMES Endorsement", ORGS)


def test_minimal_org_sets() -> None:
    majority = P.implicit_meta("MAJORITY Endorsement", ORGS)
    assert P.minimal_org_sets(majority) == [
        frozenset({"HospitalMSP", "PharmacyMSP"}),
        frozenset({"HospitalMSP", "SchoolMSP"}),
        frozenset({"PharmacyMSP", "SchoolMSP"}),
    ]
    nested = P.parse_signature_policy(
        "OR(AND('SchoolMSP.peer', 'PharmacyMSP.peer'), 'HospitalMSP.member')"
    )
    assert P.minimal_org_sets(nested) == [
        frozenset({"HospitalMSP"}),
        frozenset({"PharmacyMSP", "SchoolMSP"}),
    ]
    assert P.minimal_org_sets(P.implicit_meta("ALL Endorsement", ORGS)) == [frozenset(ORGS)]
    assert P.minimal_org_sets(P.implicit_meta("ANY Endorsement", ORGS)) == [
        frozenset({o}) for o in sorted(ORGS)
    ]
    # A peer is not an admin, and one peer per org cannot fill two principals.
    assert P.minimal_org_sets(P.parse_signature_policy("OR('HospitalMSP.admin')")) == []
    two = P.parse_signature_policy("AND('HospitalMSP.member', 'HospitalMSP.peer')")
    assert P.minimal_org_sets(two) == []
    assert P.minimal_org_sets(P.parse_signature_policy("OutOf(0, 'HospitalMSP.peer')")) == [
        frozenset()
    ]


def test_orgs_in() -> None:
    envelope = P.parse_signature_policy(
        "OR(AND('SchoolMSP.peer', 'PharmacyMSP.admin'), 'HospitalMSP.member', 'SchoolMSP.client')"
    )
    assert P.orgs_in(envelope) == {"SchoolMSP", "PharmacyMSP", "HospitalMSP"}


def test_bytes_round_trip_and_checks() -> None:
    envelope = P.parse_signature_policy(
        "OR(AND('SchoolMSP.peer', 'PharmacyMSP.admin'), OutOf(1, 'HospitalMSP.member'))"
    )
    data = P.to_bytes(envelope)
    again = P.from_bytes(data)
    assert again == envelope
    assert P.to_bytes(again) == data
    assert P.to_text(again) == (
        "OutOf(1, OutOf(2, 'SchoolMSP.peer', 'PharmacyMSP.admin'), OutOf(1, 'HospitalMSP.member'))"
    )
    with pytest.raises(P.PolicyError):
        P.from_bytes(b"\xff\xff\xff")
    with pytest.raises(P.PolicyError):  # no rule at all
        P.from_bytes(b"")
    out_of_range = _env(_n(1, _by(0), _by(5)), _role("HospitalMSP"))
    with pytest.raises(P.PolicyError, match="out of range"):
        P.from_bytes(P.to_bytes(out_of_range))
    with pytest.raises(P.PolicyError):
        P.evaluate(out_of_range, [])


def test_collection_file_policy_parses() -> None:
    # the policies of network/fabric/collections_config.json
    for text in ("OR('HospitalMSP.member')", "OR('SchoolMSP.member')"):
        assert P.minimal_org_sets(P.parse_signature_policy(text))


# ------------------------------------------------------------------ properties (hypothesis)


_LEAF_ORGS = ["HospitalMSP", "SchoolMSP", "PharmacyMSP"]


@st.composite
def _tree(
    draw: st.DrawFn, orgs: list[str], depth: int = 0
) -> tuple[str, Callable[[set[str]], bool]]:
    """A random policy over distinct orgs (each at most once) and its boolean meaning."""
    if len(orgs) == 1 or (depth > 0 and draw(st.booleans())):
        org = orgs[0]
        role = draw(st.sampled_from(["peer", "member"]))
        return f"'{org}.{role}'", lambda s, org=org: org in s
    split = draw(st.integers(min_value=1, max_value=len(orgs)))
    groups = [orgs[:split], orgs[split:]] if split < len(orgs) else [orgs]
    children = [draw(_tree(g, depth + 1)) for g in groups if g]
    n = len(children)
    gate = draw(st.sampled_from(["AND", "OR", "OutOf"]))
    texts = ", ".join(t for t, _ in children)
    if gate == "AND":
        k, text = n, f"AND({texts})"
    elif gate == "OR":
        k, text = 1, f"OR({texts})"
    else:
        k = draw(st.integers(min_value=0, max_value=n + 1))
        text = f"OutOf({k}, {texts})"
    fns = [f for _, f in children]
    return text, lambda s, fns=fns, k=k: sum(f(s) for f in fns) >= k


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_random_policies_match_their_boolean_meaning(
    ids: dict[str, ValidatedIdentity], data: st.DataObject
) -> None:
    orgs = data.draw(st.permutations(_LEAF_ORGS))
    text, meaning = data.draw(_tree(list(orgs)))
    envelope = P.parse_signature_policy(text)
    # with each org named once, cauthdsl's use-once rule never bites: evaluation is the formula
    for subset in _subsets(["H", "S", "P"]):
        names = {dict(H="HospitalMSP", S="SchoolMSP", P="PharmacyMSP")[o] for o in subset}
        got = P.evaluate(envelope, [ids[f"{o}.peer"] for o in subset])
        assert got is meaning(names), (text, subset)
    # the planner's sets are exactly the minimal satisfying sets of the formula
    expected = [
        frozenset(c)
        for k in range(4)
        for c in itertools.combinations(sorted(_LEAF_ORGS), k)
        if meaning(set(c))
    ]
    minimal = [s for s in expected if not any(o < s for o in expected)]
    assert sorted(P.minimal_org_sets(envelope), key=sorted) == sorted(minimal, key=sorted)
    # text -> envelope -> text -> envelope is stable (principal numbering included)
    again = P.parse_signature_policy(P.to_text(envelope))
    assert P.to_bytes(again) == P.to_bytes(envelope)
