"""Signature policies: Fabric's policy language, implicit-meta rules and cauthdsl evaluation.

`parse_signature_policy` produces the same `SignaturePolicyEnvelope` as Fabric 2.5's
`common/policydsl.FromString` (principals numbered as govaluate evaluates them: a gate's nested
gates first, then its own principals; no principal de-duplication). `evaluate` follows
`common/cauthdsl`: gates are evaluated left to right, greedily, and each identity satisfies at
most one principal.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from fabric_protos.common import policies_pb2
from fabric_protos.msp import identities_pb2, msp_principal_pb2

from network.devnet.msp import DecodeError, ValidatedIdentity, satisfies_principal
from network.devnet.orgs import OrgSpec

__all__ = [
    "PolicyError",
    "evaluate",
    "from_bytes",
    "implicit_meta",
    "minimal_org_sets",
    "orgs_in",
    "parse_signature_policy",
    "policy_from_definition",
    "to_bytes",
    "to_text",
]

# protobuf's generated classes are built at import time, so mypy cannot see them.
_Envelope: Any = policies_pb2.SignaturePolicyEnvelope  # type: ignore[attr-defined]
_SignaturePolicy: Any = policies_pb2.SignaturePolicy  # type: ignore[attr-defined]
_MSPPrincipal: Any = msp_principal_pb2.MSPPrincipal  # type: ignore[attr-defined]
_MSPRole: Any = msp_principal_pb2.MSPRole  # type: ignore[attr-defined]
_OrganizationUnit: Any = msp_principal_pb2.OrganizationUnit  # type: ignore[attr-defined]
_SerializedIdentity: Any = identities_pb2.SerializedIdentity  # type: ignore[attr-defined]

# The principal syntax of policydsl: <MSP id>.<role>, MSP id of [[:alnum:].-] (ASCII in RE2).
_PRINCIPAL = re.compile(r"^([A-Za-z0-9.-]+)([.])(admin|member|client|peer|orderer)$")
_ROLES = {
    "member": 0,  # msp_principal_pb2.MSPRole.MEMBER
    "admin": 1,
    "client": 2,
    "peer": 3,
    "orderer": 4,
}
_ROLE_NAMES = {v: k for k, v in _ROLES.items()}
_GATES = {
    "AND": "and", "And": "and", "and": "and",
    "OR": "or", "Or": "or", "or": "or",
    "OUTOF": "outof", "OutOf": "outof", "outof": "outof",
}  # fmt: skip
_MAX_ORGS_FOR_PLANNING = 16
_MAX_DEPTH = 64


class PolicyError(ValueError):
    """A policy that cannot be parsed, built or evaluated."""


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class _Token:
    kind: str  # name | number | string | ( | ) | ,
    text: str
    pos: int


_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<punct>[(),])
    )""",
    re.VERBOSE | re.DOTALL,
)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN_RE.match(text, pos)
        if match is None or match.end() == pos:
            raise PolicyError(f"unexpected character at offset {pos} in policy string")
        group = match.lastgroup or ""
        kind, value, start = group, match.group(group), match.start(group)
        if kind == "string":
            value = re.sub(r"\\(.)", r"\1", value[1:-1], flags=re.DOTALL)
        elif kind == "punct":
            kind = value
        tokens.append(_Token(kind, value, start))
        pos = match.end()
    return tokens


@dataclass
class _Gate:
    threshold: int
    args: list[_Gate | str]


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, kind: str) -> _Token:
        token = self.peek()
        if token is None:
            raise PolicyError("unexpected end of policy string")
        if token.kind != kind:
            raise PolicyError(f"expected {kind!r} at offset {token.pos}, found {token.text!r}")
        self.i += 1
        return token

    def parse(self) -> _Gate:
        token = self.peek()
        if token is None:
            raise PolicyError("empty policy string")
        if token.kind != "name":
            raise PolicyError("a policy must be a gate: AND(...), OR(...) or OutOf(n, ...)")
        gate = self.gate()
        if self.peek() is not None:
            raise PolicyError(
                f"unexpected text after the policy at offset {self.tokens[self.i].pos}"
            )
        return gate

    def gate(self) -> _Gate:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise PolicyError(f"policy is nested more than {_MAX_DEPTH} gates deep")
        try:
            return self._gate()
        finally:
            self.depth -= 1

    def _gate(self) -> _Gate:
        name = self.take("name")
        kind = _GATES.get(name.text)
        if kind is None:
            raise PolicyError(f"unknown gate {name.text!r} (use AND, OR or OutOf)")
        self.take("(")
        threshold: int | None = None
        if kind == "outof":
            threshold = self.threshold()
            self.take(",")
        args: list[_Gate | str] = [self.argument()]
        while (token := self.peek()) is not None and token.kind == ",":
            self.take(",")
            args.append(self.argument())
        self.take(")")
        if kind == "and":
            threshold = len(args)
        elif kind == "or":
            threshold = 1
        assert threshold is not None
        # policydsl: t may be 0 (always satisfied) up to n+1 (never: immutable keys).
        if threshold < 0 or threshold > len(args) + 1:
            raise PolicyError(f"invalid t-out-of-n predicate, t {threshold}, n {len(args)}")
        return _Gate(threshold, args)

    def threshold(self) -> int:
        token = self.peek()
        if token is None:
            raise PolicyError("unexpected end of policy string")
        self.i += 1
        if token.kind == "number":
            return int(float(token.text))  # govaluate numbers are float64; Go's int() truncates
        if token.kind == "string" and re.fullmatch(r"-?\d+", token.text):
            return int(token.text)  # policydsl also accepts OutOf('2', ...)
        raise PolicyError(f"OutOf needs a number first, found {token.text!r}")

    def argument(self) -> _Gate | str:
        token = self.peek()
        if token is None:
            raise PolicyError("unexpected end of policy string")
        if token.kind == "name":
            return self.gate()
        if token.kind == "string":
            self.i += 1
            if not _PRINCIPAL.match(token.text):
                raise PolicyError(f"unrecognized token {token.text!r} in policy string")
            return token.text
        raise PolicyError(f"expected a principal or a gate at offset {token.pos}")


def _role_principal(msp_id: str, role: str) -> Any:
    return _MSPPrincipal(
        principal_classification=_MSPPrincipal.ROLE,
        principal=_MSPRole(msp_identifier=msp_id, role=_ROLES[role]).SerializeToString(),
    )


def _build(gate: _Gate, principals: list[Any]) -> Any:
    # govaluate evaluates a call's arguments before the call itself, so every nested gate
    # numbers its principals before the enclosing gate numbers its own.
    built: list[Any] = [None] * len(gate.args)
    for i, arg in enumerate(gate.args):
        if isinstance(arg, _Gate):
            built[i] = _build(arg, principals)
    for i, arg in enumerate(gate.args):
        if isinstance(arg, str):
            match = _PRINCIPAL.match(arg)
            assert match is not None
            principals.append(_role_principal(match.group(1), match.group(3)))
            built[i] = _SignaturePolicy(signed_by=len(principals) - 1)
    return _SignaturePolicy(
        n_out_of=_SignaturePolicy.NOutOf(n=gate.threshold, rules=built),
    )


def parse_signature_policy(text: str) -> Any:
    """Fabric's policy language -> `policies_pb2.SignaturePolicyEnvelope` (as policydsl)."""
    if not isinstance(text, str):
        raise PolicyError("policy must be a string")
    gate = _Parser(text).parse()
    principals: list[Any] = []
    rule = _build(gate, principals)
    return _Envelope(version=0, rule=rule, identities=principals)


# --------------------------------------------------------------------------- implicit meta

# Each org's sub-policy, as test-network's configtx.yaml defines them.
_ORG_SUBPOLICIES = {
    "Endorsement": ("peer",),
    "Readers": ("admin", "peer", "client"),
    "Writers": ("admin", "client"),
    "Admins": ("admin",),
}
_CHANNEL_POLICY_PATHS = {
    # Peer's default chaincode endorsement policy and its channel-config path form.
    "/Channel/Application/Endorsement": "MAJORITY Endorsement",
    "/Channel/Application/LifecycleEndorsement": "MAJORITY Endorsement",
    "/Channel/Application/Readers": "ANY Readers",
    "/Channel/Application/Writers": "ANY Writers",
    "/Channel/Application/Admins": "MAJORITY Admins",
}


def _org_ids(orgs: Iterable[str | OrgSpec]) -> list[str]:
    ids = [o.msp_id if isinstance(o, OrgSpec) else str(o) for o in orgs]
    if not ids:
        raise PolicyError("an implicit-meta policy needs at least one org")
    if len(set(ids)) != len(ids):
        raise PolicyError("duplicate org in the channel's org list")
    for msp_id in ids:
        if not re.fullmatch(r"[A-Za-z0-9.-]+", msp_id):
            raise PolicyError(f"MSP id {msp_id!r} cannot appear in a signature policy")
    return ids


def implicit_meta(rule: str, orgs: Iterable[str | OrgSpec]) -> Any:
    """ "MAJORITY Endorsement" (ANY/ALL/MAJORITY of Endorsement/Readers/Writers/Admins) as one
    signature policy over the channel's orgs.

    An ImplicitMeta policy asks that k of the orgs' sub-policies be satisfied (MAJORITY: n/2+1);
    each org's Endorsement sub-policy is that org's peer role. Because every identity belongs to
    exactly one org, one OutOf(k, ...) envelope has the same truth table.
    """
    words = rule.split()
    if words and words[0] == "ImplicitMeta":
        words = words[1:]
    if len(words) != 2 or words[0] not in ("ANY", "ALL", "MAJORITY"):
        raise PolicyError(f"not an implicit-meta rule: {rule!r}")
    kind, sub = words
    roles = _ORG_SUBPOLICIES.get(sub)
    if roles is None:
        raise PolicyError(f"unknown org sub-policy {sub!r}")
    ids = _org_ids(orgs)
    threshold = {"ANY": 1, "ALL": len(ids), "MAJORITY": len(ids) // 2 + 1}[kind]
    parts = []
    for msp_id in ids:
        quoted = ", ".join(f"'{msp_id}.{role}'" for role in roles)
        parts.append(f"OR({quoted})" if len(roles) > 1 else quoted)
    return parse_signature_policy(f"OutOf({threshold}, {', '.join(parts)})")


def policy_from_definition(text: str, orgs: Iterable[str | OrgSpec]) -> Any:
    """A signature policy text, an implicit-meta rule, or a channel-config policy path."""
    stripped = text.strip()
    if stripped in _CHANNEL_POLICY_PATHS:
        return implicit_meta(_CHANNEL_POLICY_PATHS[stripped], orgs)
    first = stripped.split()[0] if stripped else ""
    if first in ("ANY", "ALL", "MAJORITY", "ImplicitMeta"):
        return implicit_meta(stripped, orgs)
    return parse_signature_policy(stripped)


# --------------------------------------------------------------------------- bytes


def to_bytes(envelope: Any) -> bytes:
    """Deterministic serialization (what goes into VALIDATION_PARAMETER metadata)."""
    return bytes(envelope.SerializeToString(deterministic=True))


def from_bytes(data: bytes) -> Any:
    """Parse serialized SignaturePolicyEnvelope bytes and check they are well formed."""
    try:
        envelope = _Envelope.FromString(bytes(data))
    except DecodeError as exc:
        raise PolicyError("cannot parse SignaturePolicyEnvelope bytes") from exc
    _check(envelope.rule, len(envelope.identities), depth=0)
    return envelope


def _check(rule: Any, n_identities: int, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise PolicyError("policy is nested too deeply")
    which = rule.WhichOneof("Type")
    if which == "signed_by":
        if not 0 <= rule.signed_by < n_identities:
            raise PolicyError(
                f"identity index out of range, requested {rule.signed_by}, "
                f"but identities length is {n_identities}"
            )
    elif which == "n_out_of":
        for sub in rule.n_out_of.rules:
            _check(sub, n_identities, depth + 1)
    else:
        raise PolicyError("policy rule has neither signed_by nor n_out_of")


# --------------------------------------------------------------------------- evaluation


def _compile(
    rule: Any, matches: Callable[[int, int], bool], n_signers: int
) -> Callable[[list[bool]], bool]:
    which = rule.WhichOneof("Type")
    if which == "signed_by":
        principal = rule.signed_by

        def signed_by(used: list[bool]) -> bool:
            for i in range(n_signers):
                if not used[i] and matches(principal, i):
                    used[i] = True
                    return True
            return False

        return signed_by
    subs = [_compile(r, matches, n_signers) for r in rule.n_out_of.rules]
    needed = rule.n_out_of.n

    def n_out_of(used: list[bool]) -> bool:
        # cauthdsl: each sub-policy works on a copy of `used` and keeps it only on success.
        verified = 0
        for sub in subs:
            trial = list(used)
            if sub(trial):
                verified += 1
                used[:] = trial
        return verified >= needed

    return n_out_of


def _run(envelope: Any, n_signers: int, matches: Callable[[int, int], bool]) -> bool:
    if not envelope.HasField("rule"):
        raise PolicyError("policy envelope has no rule")
    _check(envelope.rule, len(envelope.identities), depth=0)
    return _compile(envelope.rule, matches, n_signers)([False] * n_signers)


def evaluate(envelope: Any, identities: Sequence[ValidatedIdentity]) -> bool:
    """Whether these (already signature-checked) identities satisfy the policy, as cauthdsl.

    Identities are de-duplicated first (the same certificate twice counts once).
    """
    unique: dict[tuple[str, bytes], ValidatedIdentity] = {}
    for identity in identities:
        unique.setdefault(identity.dedup_key, identity)
    signers = list(unique.values())
    principals = list(envelope.identities)
    cache: dict[tuple[int, int], bool] = {}

    def matches(p: int, s: int) -> bool:
        key = (p, s)
        if key not in cache:
            cache[key] = satisfies_principal(signers[s], principals[p])
        return cache[key]

    return _run(envelope, len(signers), matches)


def _principal_msp(principal: Any) -> str | None:
    try:
        kind = principal.principal_classification
        if kind == _MSPPrincipal.ROLE:
            return str(_MSPRole.FromString(principal.principal).msp_identifier)
        if kind == _MSPPrincipal.ORGANIZATION_UNIT:
            return str(_OrganizationUnit.FromString(principal.principal).msp_identifier)
        if kind == _MSPPrincipal.IDENTITY:
            return str(_SerializedIdentity.FromString(principal.principal).mspid)
    except DecodeError:
        return None
    return None


def orgs_in(envelope: Any) -> set[str]:
    """The MSP ids named by the policy's principals."""
    found = {_principal_msp(p) for p in envelope.identities}
    return {m for m in found if m}


def _peer_satisfies(principal: Any, msp_id: str) -> bool:
    # What one org's peer (NodeOU "peer") satisfies: its org's MEMBER and PEER roles.
    if principal.principal_classification != _MSPPrincipal.ROLE:
        return False
    try:
        role = _MSPRole.FromString(principal.principal)
    except DecodeError:
        return False
    return bool(role.msp_identifier == msp_id and role.role in (_ROLES["member"], _ROLES["peer"]))


def minimal_org_sets(envelope: Any) -> list[frozenset[str]]:
    """Minimal sets of orgs whose peers (one endorsement each) satisfy the policy.

    Sorted smallest first, then by name; the Gateway plans endorsements from the first set whose
    peers are all available. A set is minimal when no proper subset also satisfies the policy.
    """
    candidates = sorted(orgs_in(envelope))
    if len(candidates) > _MAX_ORGS_FOR_PLANNING:
        raise PolicyError(f"too many orgs in policy to plan endorsements ({len(candidates)})")
    principals = list(envelope.identities)
    found: list[frozenset[str]] = []
    for size in range(0, len(candidates) + 1):
        for combo in itertools.combinations(candidates, size):
            chosen = frozenset(combo)
            if any(f <= chosen for f in found):
                continue
            signers = list(combo)

            def matches(p: int, s: int, signers: list[str] = signers) -> bool:
                return _peer_satisfies(principals[p], signers[s])

            if _run(envelope, len(signers), matches):
                found.append(chosen)
    return sorted(found, key=lambda s: (len(s), sorted(s)))


# --------------------------------------------------------------------------- display


def _principal_text(principal: Any) -> str:
    if principal.principal_classification == _MSPPrincipal.ROLE:
        role = _MSPRole.FromString(principal.principal)
        return f"'{role.msp_identifier}.{_ROLE_NAMES.get(role.role, str(role.role))}'"
    return f"<principal of {_principal_msp(principal) or 'unknown MSP'}>"


def to_text(envelope: Any) -> str:
    """A readable form in the policy language (for messages; not byte-identical input)."""
    principals = list(envelope.identities)

    def render(rule: Any) -> str:
        if rule.WhichOneof("Type") == "signed_by":
            return _principal_text(principals[rule.signed_by])
        rules = ", ".join(render(r) for r in rule.n_out_of.rules)
        return f"OutOf({rule.n_out_of.n}, {rules})"

    _check(envelope.rule, len(principals), depth=0)
    return render(envelope.rule)
