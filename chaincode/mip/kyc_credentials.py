"""KYC anonymous credentials (Hyperledger anoncreds 0.2.3, CL signatures with a link secret).

Each member org is a KYC issuer. It publishes a schema `mip-kyc` {kyc_level, passport_epoch}
and a credential definition on the ledger (public parts only). At enrolment its gateway
issues the holder a credential bound to the holder's link secret. To open an account the
holder presents a zero-knowledge predicate `kyc_level >= min_level` over that credential: the
chaincode learns that some passport of that level exists behind the account, not which one,
and two presentations of one credential cannot be linked.

The presentation's nonce is derived from the account's public key and pseudonym, so a
presentation made for one account does not verify for another (it cannot be replayed).

Revocation: a credential definition may support revocation (anoncreds CL_ACCUM registries).
The issuer then publishes its revocation registry definition and, after every change, its
revocation status list on the ledger; a presentation must prove non-revocation against the
latest published list (its timestamp), so a revoked passport's credential opens no account,
and an account whose proof predates the latest list must re-prove before it acts.

This module is the chaincode's side (checking the public documents, verifying a presentation).
The identifiers, nonces and presentation request both sides use are in
`chaincode/protocol/kyc.py`; the issuer (holding the CL private key), the holder's wallet and
their persistence are off-chain, in `gateway/kyc/`.

anoncreds 0.2.3's `Presentation.verify` checks each proof against the predicate carried
inside the proof, not against the value in the verifier's request (a proof of `>= 2` verifies
against a request for `>= 3`), so `verify_account_presentation` compares them itself.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from anoncreds import (  # type: ignore[import-untyped]
    AnoncredsError,
    CredentialDefinition,
    Presentation,
    RevocationRegistryDefinition,
    RevocationStatusList,
    Schema,
)
from anoncreds import bindings as _anoncreds_bindings

from chaincode.mip.errors import BadSignature, InvalidRequest, PreconditionFailed
from chaincode.protocol.kyc import (
    ATTRIBUTES,
    SCHEMA_NAME,
    SCHEMA_VERSION,
    cred_def_id,
    issuer_id,
    presentation_request,
    rev_reg_id,
    schema_id,
)

# Load the native library now, under Python's import lock. anoncreds' own lazy loader is not
# thread-safe: two threads making their first anoncreds call at once both install its Rust
# logger, and the second panics ("env_logger::init should not be called after logger
# initialized"), failing that call (seen when issuers are created in parallel).
_anoncreds_bindings.get_library()

MAX_DOCUMENT_BYTES = 64 * 1024


def org_of_cred_def_id(identifier: str) -> str:
    parts = identifier.split(":")
    if len(parts) != 5 or parts[0] != "mip" or parts[2] != "creddef" or parts[3] != SCHEMA_NAME:
        raise InvalidRequest("not a MIP KYC credential definition id")
    return parts[1]


def _load_json(text: str, what: str) -> dict[str, Any]:
    if not isinstance(text, str) or len(text.encode()) > MAX_DOCUMENT_BYTES:
        raise InvalidRequest(f"{what} must be a JSON string of at most {MAX_DOCUMENT_BYTES} bytes")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"{what} is not JSON") from exc
    if not isinstance(value, dict):
        raise InvalidRequest(f"{what} must be a JSON object")
    return value


@dataclass(frozen=True)
class IssuerDocuments:
    org: str
    schema_id: str
    cred_def_id: str
    schema: dict[str, Any]
    cred_def: dict[str, Any]

    @property
    def revocable(self) -> bool:
        return "revocation" in self.cred_def.get("value", {})

    @property
    def tag(self) -> str:
        return str(self.cred_def["tag"])


@dataclass(frozen=True)
class RevocationDocuments:
    """A revocation registry definition and its latest status list, as on the ledger."""

    rev_reg_id: str
    cred_def_id: str
    rev_reg_def: dict[str, Any]
    status_list: dict[str, Any]

    @property
    def timestamp(self) -> int:
        return int(self.status_list["timestamp"])


def check_issuer_documents(org: str, schema_json: str, cred_def_json: str) -> IssuerDocuments:
    """Parse and check an org's public KYC schema and credential definition."""
    schema = _load_json(schema_json, "schema")
    cred_def = _load_json(cred_def_json, "credential definition")
    try:
        Schema.load(schema)
        CredentialDefinition.load(cred_def)
    except AnoncredsError as exc:
        # A private credential definition does not parse as a public one: refused here.
        raise InvalidRequest(f"not an anoncreds public document: {exc.code.name}") from exc
    if (schema.get("name"), schema.get("version")) != (SCHEMA_NAME, SCHEMA_VERSION):
        raise InvalidRequest(f"schema must be {SCHEMA_NAME} {SCHEMA_VERSION}")
    if sorted(schema.get("attrNames", [])) != sorted(ATTRIBUTES):
        raise InvalidRequest(f"schema attributes must be {list(ATTRIBUTES)}")
    if schema.get("issuerId") != issuer_id(org) or cred_def.get("issuerId") != issuer_id(org):
        raise InvalidRequest(f"documents must be issued by {issuer_id(org)} (the caller's org)")
    if cred_def.get("schemaId") != schema_id(org):
        raise InvalidRequest(f"credential definition must reference {schema_id(org)}")
    if cred_def.get("type") != "CL":
        raise InvalidRequest("credential definition must be of type CL")
    tag = cred_def.get("tag")
    if not isinstance(tag, str) or not tag.isalnum() or len(tag) > 32:
        raise InvalidRequest("credential definition tag must be 1-32 letters or digits")
    return IssuerDocuments(org, schema_id(org), cred_def_id(org, tag), schema, cred_def)


def check_revocation_documents(
    issuer: IssuerDocuments, rev_reg_def_json: str, status_list_json: str
) -> RevocationDocuments:
    """Parse and check a revocation registry definition and status list for `issuer`."""
    if not issuer.revocable:
        raise InvalidRequest("this credential definition does not support revocation")
    rev_reg_def = _load_json(rev_reg_def_json, "revocation registry definition")
    status_list = _load_json(status_list_json, "revocation status list")
    try:
        RevocationRegistryDefinition.load(rev_reg_def)
        RevocationStatusList.load(status_list)
    except AnoncredsError as exc:
        raise InvalidRequest(f"not an anoncreds public document: {exc.code.name}") from exc
    tag = rev_reg_def.get("tag")
    if not isinstance(tag, str) or not tag.isalnum() or len(tag) > 32:
        raise InvalidRequest("revocation registry tag must be 1-32 letters or digits")
    identifier = rev_reg_id(issuer.org, issuer.tag, tag)
    if rev_reg_def.get("issuerId") != issuer_id(issuer.org) or status_list.get(
            "issuerId") != issuer_id(issuer.org):
        raise InvalidRequest(f"documents must be issued by {issuer_id(issuer.org)}")
    if rev_reg_def.get("credDefId") != issuer.cred_def_id:
        raise InvalidRequest(f"registry must belong to {issuer.cred_def_id}")
    if status_list.get("revRegDefId") != identifier:
        raise InvalidRequest(f"status list must name {identifier}")
    if not isinstance(status_list.get("timestamp"), int):
        raise InvalidRequest("status list needs an integer timestamp")
    return RevocationDocuments(identifier, issuer.cred_def_id, rev_reg_def, status_list)


@dataclass(frozen=True)
class VerifiedPresentation:
    cred_def_id: str
    digest: str  # sha256 of the presentation as sent: lets anyone find and re-check it
    rev_reg_id: str | None
    revocation_time: int | None


def presentation_identifiers(presentation: Mapping[str, Any]) -> list[dict[str, Any]]:
    identifiers = presentation.get("identifiers")
    if not isinstance(identifiers, list) or len(identifiers) != 1:
        raise InvalidRequest("presentation must prove over exactly one credential")
    if not isinstance(identifiers[0], dict):
        raise InvalidRequest("presentation identifiers are malformed")
    return identifiers


def _check_predicates(presentation: Mapping[str, Any], min_level: int) -> None:
    try:
        proofs = presentation["proof"]["proofs"]
        requested = presentation["requested_proof"]
        predicates = [g["predicate"] for p in proofs for g in p["primary_proof"]["ge_proofs"]]
        revealed = [p["primary_proof"]["eq_proof"]["revealed_attrs"] for p in proofs]
    except (KeyError, TypeError) as exc:
        raise InvalidRequest("presentation is malformed") from exc
    expected = {"attr_name": "kyc_level", "p_type": "GE", "value": min_level}
    if predicates != [expected]:
        raise BadSignature(f"presentation does not prove kyc_level >= {min_level}")
    if any(revealed) or requested.get("revealed_attrs") or requested.get("self_attested_attrs"):
        raise InvalidRequest("presentation must reveal nothing")


def verify_account_presentation(
    presentation: dict[str, Any],
    nonce: str,
    min_level: int,
    issuers: Mapping[str, IssuerDocuments],
    revocation: Mapping[str, RevocationDocuments] | None = None,
) -> VerifiedPresentation:
    """Check `presentation` against the request for (nonce, min_level) and the registered
    issuers (cred_def_id -> documents) and revocation registries (rev_reg_id -> latest list).
    Raises BadSignature if it does not verify, PreconditionFailed if it proves against a list
    that is no longer the latest."""
    ident = presentation_identifiers(presentation)[0]
    issuer = issuers.get(str(ident.get("cred_def_id")))
    if issuer is None:
        raise BadSignature("presentation is over a credential of an unregistered KYC issuer")
    if ident.get("schema_id") != issuer.schema_id:
        raise InvalidRequest("presentation names the wrong schema")
    _check_predicates(presentation, min_level)
    registry: RevocationDocuments | None = None
    if issuer.revocable:
        registry = (revocation or {}).get(str(ident.get("rev_reg_id")))
        if registry is None or registry.cred_def_id != issuer.cred_def_id:
            raise BadSignature("presentation does not prove non-revocation in a published "
                               "registry of its issuer")
        if ident.get("timestamp") != registry.timestamp:
            raise PreconditionFailed("presentation answers an old revocation list; prove "
                                     "against the latest")
    elif ident.get("rev_reg_id") is not None:
        raise InvalidRequest("credential definition does not support revocation")
    request = presentation_request(nonce, min_level,
                                   registry.timestamp if registry is not None else None)
    try:
        if registry is None:
            ok = Presentation.load(presentation).verify(
                request, {issuer.schema_id: issuer.schema}, {issuer.cred_def_id: issuer.cred_def}
            )
        else:
            ok = Presentation.load(presentation).verify(
                request, {issuer.schema_id: issuer.schema}, {issuer.cred_def_id: issuer.cred_def},
                {registry.rev_reg_id: registry.rev_reg_def}, [registry.status_list],
            )
    except AnoncredsError as exc:
        raise BadSignature(f"presentation does not verify ({exc.code.name})") from exc
    if not ok:
        raise BadSignature("presentation does not verify (wrong account, nonce, issuer, or "
                           "the credential is revoked)")
    digest = hashlib.sha256(json.dumps(presentation, sort_keys=True).encode()).hexdigest()
    return VerifiedPresentation(issuer.cred_def_id, digest,
                                registry.rev_reg_id if registry else None,
                                registry.timestamp if registry else None)
