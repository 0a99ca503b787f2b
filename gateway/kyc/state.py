"""Saving and loading KYC issuers and wallets (the gateway keeps them across restarts).

The JSON holds private key material (the CL private key, the registry's private part, a link
secret): callers encrypt it before it touches a disk, as gateway/services/kyc.py and
holders.py do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from anoncreds import (  # type: ignore[import-untyped]
    AnoncredsError,
    Credential,
    CredentialDefinition,
    CredentialDefinitionPrivate,
    KeyCorrectnessProof,
    RevocationRegistryDefinition,
    RevocationRegistryDefinitionPrivate,
    RevocationStatusList,
    Schema,
)

from chaincode.protocol.kyc import cred_def_id, rev_reg_id, schema_id
from gateway.kyc.issuer import KycIssuer, Registry
from gateway.kyc.wallet import KycHolder

ISSUER_STATE_VERSION = 2  # 2: several revocation registries (1 is still read)
HOLDER_STATE_VERSION = 1


class KycStateError(ValueError):
    """A saved issuer or wallet is malformed, of another version, or names an unknown issuer."""


def _registry_from_state(issuer: KycIssuer, item: Mapping[str, Any]) -> Registry:
    tag = str(item["tag"])
    return Registry(
        rev_reg_id(issuer.org, issuer.tag, tag), tag,
        RevocationRegistryDefinition.load(item["rev_reg_def"]),
        RevocationRegistryDefinitionPrivate.load(item["rev_reg_private"]),
        RevocationStatusList.load(item["status_list"]),
        int(item["next_index"]), bool(item["published"]))


def _issuer_from_state(state: Mapping[str, Any]) -> KycIssuer:
    issuer = KycIssuer.__new__(KycIssuer)
    try:
        version = state["version"]
        if version not in (1, ISSUER_STATE_VERSION):
            raise KycStateError("unsupported KYC issuer state version")
        issuer.org = str(state["org"])
        issuer.tag = str(state["tag"])
        issuer.schema = Schema.load(state["schema"])
        issuer.cred_def = CredentialDefinition.load(state["cred_def"])
        issuer._cred_def_private = CredentialDefinitionPrivate.load(state["cred_def_private"])
        issuer._key_proof = KeyCorrectnessProof.load(state["key_proof"])
        issuer.schema_id = schema_id(issuer.org)
        issuer.cred_def_id = cred_def_id(issuer.org, issuer.tag)
        issuer.revocable = bool(state["revocable"])
        issuer.registries = {}
        if issuer.revocable:
            # Version 1 held one registry ("r1", published when the issuer was registered).
            items = state["registries"] if version == ISSUER_STATE_VERSION else [
                {"tag": "r1", "rev_reg_def": state["rev_reg_def"],
                 "rev_reg_private": state["rev_reg_private"],
                 "status_list": state["status_list"], "next_index": state["next_index"],
                 "published": True}]
            if not isinstance(items, list) or not items:
                raise KycStateError("malformed KYC issuer state")
            for item in items:
                registry = _registry_from_state(issuer, item)
                issuer.registries[registry.rev_reg_id] = registry
        # Version 1 opened no second registry: its size is that of its one registry.
        issuer.registry_size = (int(state["registry_size"]) if version == ISSUER_STATE_VERSION
                                else issuer.current.capacity if issuer.revocable else 0)
    except (KeyError, TypeError, ValueError, AnoncredsError) as exc:
        if isinstance(exc, KycStateError):
            raise
        raise KycStateError("malformed KYC issuer state") from None
    return issuer


def issuer_state(issuer: KycIssuer) -> dict[str, Any]:
    """Everything needed to rebuild `issuer` (private parts included: encrypt it at rest)."""
    state: dict[str, Any] = {
        "version": ISSUER_STATE_VERSION,
        "org": issuer.org,
        "tag": issuer.tag,
        "schema": issuer.schema.to_dict(),
        "cred_def": issuer.cred_def.to_dict(),
        "cred_def_private": issuer._cred_def_private.to_dict(),
        "key_proof": issuer._key_proof.to_dict(),
        "revocable": issuer.revocable,
        "registry_size": issuer.registry_size,
    }
    if issuer.revocable:
        state["registries"] = [
            {"tag": r.tag, "rev_reg_def": r.definition.to_dict(),
             "rev_reg_private": r.private.to_dict(), "status_list": r.status_list.to_dict(),
             "next_index": r.next_index, "published": r.published}
            for r in issuer.registries.values()]
    return state


def issuer_from_state(state: Mapping[str, Any]) -> KycIssuer:
    """The issuer `issuer_state` saved. The tails file must still be where it was."""
    return _issuer_from_state(state)


def holder_state(holder: KycHolder) -> dict[str, Any]:
    """The wallet: link secret and credentials (with their issuer's id and registry index)."""
    return {
        "version": HOLDER_STATE_VERSION,
        "link_secret": holder._link_secret,
        "credentials": [
            {"cred_def_id": cdid, "credential": credential.to_dict(), "index": index}
            for cdid, (credential, _issuer, index) in holder._credentials.items()
        ],
    }


def holder_from_state(state: Mapping[str, Any], issuers: Mapping[str, KycIssuer]) -> KycHolder:
    """The wallet `holder_state` saved; `issuers` (cred_def_id -> issuer) supplies each
    credential's issuer documents (the public ones are what presenting uses)."""
    holder = KycHolder.__new__(KycHolder)
    try:
        if state["version"] != HOLDER_STATE_VERSION:
            raise KycStateError("unsupported KYC wallet state version")
        link_secret = state["link_secret"]
        if not isinstance(link_secret, str) or not link_secret.isdigit():
            raise KycStateError("malformed KYC wallet state")
        holder._link_secret = link_secret
        holder._credentials = {}
        for item in state["credentials"]:
            cdid = str(item["cred_def_id"])
            issuer = issuers.get(cdid)
            if issuer is None:
                raise KycStateError("the wallet holds a credential of an unknown issuer")
            index = item["index"]
            holder._credentials[cdid] = (Credential.load(item["credential"]), issuer,
                                         None if index is None else int(index))
    except (KeyError, TypeError, ValueError, AnoncredsError) as exc:
        if isinstance(exc, KycStateError):
            raise
        raise KycStateError("malformed KYC wallet state") from None
    return holder
