"""Private data collections: Fabric's collections_config.json, validated as the peer does.

The same file is passed to `peer lifecycle chaincode approveformyorg --collections-config` on the
real network; `to_package_proto` builds the CollectionConfigPackage the peer CLI would build.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fabric_protos.peer import collection_pb2, policy_pb2

from network.devnet.orgs import DEFAULT_PEER_ORGS, OrgSpec
from network.devnet.policy import (
    PolicyError,
    orgs_in,
    parse_signature_policy,
    policy_from_definition,
)

__all__ = [
    "IMPLICIT_COLLECTION_PREFIX",
    "CollectionConfig",
    "CollectionConfigError",
    "implicit_collection",
    "load_collections",
    "parse_collections",
    "to_package_proto",
]

_CollectionConfigPackage: Any = collection_pb2.CollectionConfigPackage  # type: ignore[attr-defined]
_CollectionConfigProto: Any = collection_pb2.CollectionConfig  # type: ignore[attr-defined]
_StaticCollectionConfig: Any = collection_pb2.StaticCollectionConfig  # type: ignore[attr-defined]
_CollectionPolicyConfig: Any = collection_pb2.CollectionPolicyConfig  # type: ignore[attr-defined]
_ApplicationPolicy: Any = policy_pb2.ApplicationPolicy  # type: ignore[attr-defined]

# Fabric's ccmetadata.AllowedCharsCollectionName; "_implicit_org_" names belong to the peer.
_NAME = re.compile(r"[A-Za-z0-9_-]+")
IMPLICIT_COLLECTION_PREFIX = "_implicit_org_"
_IMPLICIT_PREFIX = IMPLICIT_COLLECTION_PREFIX
_KNOWN_KEYS = {
    "name",
    "policy",
    "requiredPeerCount",
    "maxPeerCount",
    "blockToLive",
    "memberOnlyRead",
    "memberOnlyWrite",
    "endorsementPolicy",
}
_INT32_MAX = 2**31 - 1
_UINT64_MAX = 2**64 - 1


class CollectionConfigError(ValueError):
    """A collections config file that Fabric's peer would refuse (or that cannot be read)."""


@dataclass(frozen=True)
class CollectionConfig:
    """One static private data collection."""

    name: str
    member_orgs: frozenset[str]
    required_peer_count: int
    max_peer_count: int
    block_to_live: int
    member_only_read: bool
    member_only_write: bool
    endorsement_policy: Any | None  # SignaturePolicyEnvelope, or None: the chaincode's policy
    member_orgs_policy: Any  # SignaturePolicyEnvelope (an OR of members), as in the file
    policy_text: str
    endorsement_signature_policy: str | None = None  # the file's text, to rebuild the proto
    endorsement_channel_policy: str | None = None  # e.g. "/Channel/Application/Endorsement"

    def is_member(self, msp_id: str) -> bool:
        return msp_id in self.member_orgs


def _fail(name: str, message: str) -> CollectionConfigError:
    return CollectionConfigError(f"collection-name: {name} -- {message}")


def _int(item: Mapping[str, Any], key: str, name: str, default: int, maximum: int) -> int:
    value = item.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(name, f"{key} must be an integer")
    if value < 0:
        raise _fail(name, f"{key} ({value}) cannot be less than zero")
    if value > maximum:
        raise _fail(name, f"{key} ({value}) is too large")
    return value


def _bool(item: Mapping[str, Any], key: str, name: str) -> bool:
    value = item.get(key, False)
    if not isinstance(value, bool):
        raise _fail(name, f"{key} must be true or false")
    return value


def _only_ors(rule: Any) -> bool:
    # Fabric (lifecycle validateSpOrConcat): a member orgs policy must be an OR of principals,
    # since membership is "any of these orgs", not a threshold.
    if rule.WhichOneof("Type") == "signed_by":
        return True
    return bool(rule.n_out_of.n == 1) and all(_only_ors(r) for r in rule.n_out_of.rules)


def _parse_one(item: Any, channel_orgs: Sequence[str]) -> CollectionConfig:
    if not isinstance(item, dict):
        raise CollectionConfigError("each collection must be a JSON object")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise CollectionConfigError('collection without a name ("name" is required)')
    if _NAME.fullmatch(name) is None:
        raise _fail(name, f"name not allowed; a valid collection name matches {_NAME.pattern}")
    if name.startswith(_IMPLICIT_PREFIX):
        raise _fail(name, f"names starting with {_IMPLICIT_PREFIX} are reserved for the peer")
    unknown = set(item) - _KNOWN_KEYS
    if unknown:
        raise _fail(name, f"unknown keys {sorted(unknown)}")

    policy_text = item.get("policy")
    if not isinstance(policy_text, str) or not policy_text.strip():
        raise _fail(name, '"policy" (the member orgs signature policy) is required')
    try:
        member_policy = parse_signature_policy(policy_text)
    except PolicyError as exc:
        raise _fail(name, f"invalid policy {policy_text!r}: {exc}") from exc
    if not _only_ors(member_policy.rule):
        raise _fail(name, "error in member org policy: signature policy is not an OR concatenation")
    members = frozenset(orgs_in(member_policy))
    for msp_id in sorted(members):
        if msp_id not in channel_orgs:
            raise _fail(name, f"collection member {msp_id} is not part of the channel")

    # The peer CLI's defaults when the counts are absent: requiredPeerCount 0, maxPeerCount 1.
    required = _int(item, "requiredPeerCount", name, 0, _INT32_MAX)
    maximum = _int(item, "maxPeerCount", name, 1, _INT32_MAX)
    if maximum < required:
        raise _fail(
            name,
            f"maximum peer count ({maximum}) cannot be less than the required peer count "
            f"({required})",
        )
    block_to_live = _int(item, "blockToLive", name, 0, _UINT64_MAX)

    endorsement = None
    sig_text: str | None = None
    channel_ref: str | None = None
    raw_ep = item.get("endorsementPolicy")
    if raw_ep is not None:
        if not isinstance(raw_ep, dict) or set(raw_ep) - {"signaturePolicy", "channelConfigPolicy"}:
            raise _fail(name, "endorsementPolicy must hold signaturePolicy or channelConfigPolicy")
        sig_text = raw_ep.get("signaturePolicy") or None
        channel_ref = raw_ep.get("channelConfigPolicy") or None
        if sig_text is not None and channel_ref is not None:
            raise _fail(name, "cannot specify both signaturePolicy and channelConfigPolicy")
        try:
            if isinstance(sig_text, str):
                endorsement = parse_signature_policy(sig_text)
            elif isinstance(channel_ref, str):
                ref = channel_ref if channel_ref.startswith("/") else f"/{channel_ref}"
                endorsement = policy_from_definition(ref, channel_orgs)
            elif sig_text is not None or channel_ref is not None:
                raise _fail(name, "endorsement policy must be a string")
        except PolicyError as exc:
            raise _fail(name, f"invalid endorsement policy: {exc}") from exc
        if endorsement is not None:
            unknown_orgs = orgs_in(endorsement) - set(channel_orgs)
            if unknown_orgs:
                raise _fail(
                    name,
                    f"endorsement policy names orgs not in the channel: {sorted(unknown_orgs)}",
                )

    return CollectionConfig(
        name=name,
        member_orgs=members,
        required_peer_count=required,
        max_peer_count=maximum,
        block_to_live=block_to_live,
        member_only_read=_bool(item, "memberOnlyRead", name),
        member_only_write=_bool(item, "memberOnlyWrite", name),
        endorsement_policy=endorsement,
        member_orgs_policy=member_policy,
        policy_text=policy_text,
        endorsement_signature_policy=sig_text,
        endorsement_channel_policy=channel_ref,
    )


def implicit_collection(msp_id: str) -> CollectionConfig:
    """The peer's implicit per-org collection `_implicit_org_<MSP id>`.

    As Fabric's GenerateImplicitCollectionForOrg with core.yaml's default dissemination policy:
    the org is the only member (SignedByMspMember), requiredPeerCount 0, maxPeerCount 1, kept
    forever, readable and writable by anyone the chaincode lets through. Writes are validated
    against the org's own Endorsement policy (lifecycle's ImplicitCollectionEndorsementPolicy,
    i.e. one of the org's peers), unless a key-level policy applies.
    """
    text = f"OR('{msp_id}.member')"
    try:
        member_policy = parse_signature_policy(text)
        endorsement = parse_signature_policy(f"OR('{msp_id}.peer')")
    except PolicyError as exc:
        raise CollectionConfigError(f"{msp_id!r} cannot name an implicit collection") from exc
    return CollectionConfig(
        name=f"{IMPLICIT_COLLECTION_PREFIX}{msp_id}",
        member_orgs=frozenset({msp_id}),
        required_peer_count=0,
        max_peer_count=1,
        block_to_live=0,
        member_only_read=False,
        member_only_write=False,
        endorsement_policy=endorsement,
        member_orgs_policy=member_policy,
        policy_text=text,
    )


def parse_collections(
    data: Any, *, channel_orgs: Iterable[str | OrgSpec] = DEFAULT_PEER_ORGS
) -> dict[str, CollectionConfig]:
    """Validate already-decoded collections JSON (a list of collection objects)."""
    orgs = [o.msp_id if isinstance(o, OrgSpec) else str(o) for o in channel_orgs]
    if not isinstance(data, list):
        raise CollectionConfigError("a collections config is a JSON array of collections")
    configs: dict[str, CollectionConfig] = {}
    for item in data:
        config = _parse_one(item, orgs)
        if config.name in configs:
            raise _fail(config.name, "found duplicate in collection configuration")
        configs[config.name] = config
    return configs


def load_collections(
    path: Path, *, channel_orgs: Iterable[str | OrgSpec] = DEFAULT_PEER_ORGS
) -> dict[str, CollectionConfig]:
    """Load and validate a Fabric collections_config.json; keys are collection names.

    `channel_orgs` are the channel's member MSPs (MIP's three peer orgs by default): every
    collection member must be one, and channel-config endorsement policies are resolved over them.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CollectionConfigError(f"cannot read collections config {path}: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CollectionConfigError(f"collections config {path} is not valid JSON: {exc}") from exc
    return parse_collections(data, channel_orgs=channel_orgs)


def to_package_proto(configs: Mapping[str, CollectionConfig] | Iterable[CollectionConfig]) -> Any:
    """The `peer.CollectionConfigPackage` that `peer lifecycle ... --collections-config` builds."""
    items = list(configs.values()) if isinstance(configs, Mapping) else list(configs)
    package = _CollectionConfigPackage()
    for config in items:
        static = _StaticCollectionConfig(
            name=config.name,
            member_orgs_policy=_CollectionPolicyConfig(signature_policy=config.member_orgs_policy),
            required_peer_count=config.required_peer_count,
            maximum_peer_count=config.max_peer_count,
            block_to_live=config.block_to_live,
            member_only_read=config.member_only_read,
            member_only_write=config.member_only_write,
        )
        if config.endorsement_signature_policy is not None:
            static.endorsement_policy.CopyFrom(
                _ApplicationPolicy(signature_policy=config.endorsement_policy)
            )
        elif config.endorsement_channel_policy is not None:
            static.endorsement_policy.CopyFrom(
                _ApplicationPolicy(
                    channel_config_policy_reference=config.endorsement_channel_policy
                )
            )
        package.config.append(_CollectionConfigProto(static_collection_config=static))
    return package
