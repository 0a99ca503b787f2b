"""KYC anonymous credentials (Hyperledger anoncreds 0.2.3, CL signatures with a link secret).

Each member org is a KYC issuer. It publishes a schema `mip-kyc` {kyc_level, passport_epoch}
and a credential definition on the ledger (public parts only). At enrolment its gateway
issues the holder a credential bound to the holder's link secret. To open an account the
holder presents a zero-knowledge predicate `kyc_level >= min_level` over that credential: the
chaincode learns that some passport of that level exists behind the account, not which one,
and two presentations of one credential cannot be linked.

The presentation's nonce is derived from the account's public key and pseudonym, so a
presentation made for one account does not verify for another (it cannot be replayed).

This module holds the chaincode's side (identifiers, presentation request, verification) and
the off-chain sides the gateway and tests use (`KycIssuer`, `KycHolder`).

anoncreds 0.2.3's `Presentation.verify` checks each proof against the predicate carried
inside the proof, not against the value in the verifier's request (a proof of `>= 2` verifies
against a request for `>= 3`), so `verify_account_presentation` compares them itself.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from anoncreds import (  # type: ignore[import-untyped]
    AnoncredsError,
    Credential,
    CredentialDefinition,
    CredentialOffer,
    CredentialRequest,
    Presentation,
    PresentCredentials,
    Schema,
    create_link_secret,
)

from chaincode.mip.errors import BadSignature, InvalidRequest

SCHEMA_NAME = "mip-kyc"
SCHEMA_VERSION = "1.0"
ATTRIBUTES = ("kyc_level", "passport_epoch")
PREDICATE_REFERENT = "kyc"
MAX_DOCUMENT_BYTES = 64 * 1024
_NONCE_DOMAIN = b"MIP-ACCOUNT-OPEN-NONCE-V1\x00"


def issuer_id(org: str) -> str:
    return f"mip:{org}"


def schema_id(org: str) -> str:
    return f"{issuer_id(org)}:schema:{SCHEMA_NAME}:{SCHEMA_VERSION}"


def cred_def_id(org: str, tag: str) -> str:
    return f"{issuer_id(org)}:creddef:{SCHEMA_NAME}:{tag}"


def org_of_cred_def_id(identifier: str) -> str:
    parts = identifier.split(":")
    if len(parts) != 5 or parts[0] != "mip" or parts[2] != "creddef" or parts[3] != SCHEMA_NAME:
        raise InvalidRequest("not a MIP KYC credential definition id")
    return parts[1]


def account_nonce(account_public_key: bytes, pseudonym: str) -> str:
    """The presentation nonce for an account: 80 bits (anoncreds' size) of a domain hash."""
    digest = hashlib.sha256(_NONCE_DOMAIN + account_public_key + pseudonym.encode()).digest()
    return str(int.from_bytes(digest[:10], "big"))


def presentation_request(nonce: str, min_level: int) -> dict[str, Any]:
    """What the chaincode asks: one predicate kyc_level >= min_level, nothing revealed."""
    return {
        "name": "mip-account-open",
        "version": "1.0",
        "nonce": nonce,
        "requested_attributes": {},
        "requested_predicates": {
            PREDICATE_REFERENT: {"name": "kyc_level", "p_type": ">=", "p_value": min_level}
        },
    }


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
    if "revocation" in cred_def.get("value", {}):
        raise InvalidRequest("revocable KYC credential definitions are not supported")
    return IssuerDocuments(org, schema_id(org), cred_def_id(org, tag), schema, cred_def)


@dataclass(frozen=True)
class VerifiedPresentation:
    cred_def_id: str
    digest: str  # sha256 of the presentation as sent: lets anyone find and re-check it


def presentation_identifiers(presentation: Mapping[str, Any]) -> list[dict[str, Any]]:
    identifiers = presentation.get("identifiers")
    if not isinstance(identifiers, list) or len(identifiers) != 1:
        raise InvalidRequest("presentation must prove over exactly one credential")
    ident = identifiers[0]
    if not isinstance(ident, dict) or ident.get("rev_reg_id") is not None:
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
) -> VerifiedPresentation:
    """Check `presentation` against the request for (nonce, min_level) and the registered
    issuers (cred_def_id -> documents). Raises BadSignature if it does not verify."""
    ident = presentation_identifiers(presentation)[0]
    issuer = issuers.get(str(ident.get("cred_def_id")))
    if issuer is None:
        raise BadSignature("presentation is over a credential of an unregistered KYC issuer")
    if ident.get("schema_id") != issuer.schema_id:
        raise InvalidRequest("presentation names the wrong schema")
    _check_predicates(presentation, min_level)
    request = presentation_request(nonce, min_level)
    try:
        ok = Presentation.load(presentation).verify(
            request, {issuer.schema_id: issuer.schema}, {issuer.cred_def_id: issuer.cred_def}
        )
    except AnoncredsError as exc:
        raise BadSignature(f"presentation does not verify ({exc.code.name})") from exc
    if not ok:
        raise BadSignature("presentation does not verify (wrong account, nonce or issuer)")
    digest = hashlib.sha256(json.dumps(presentation, sort_keys=True).encode()).hexdigest()
    return VerifiedPresentation(issuer.cred_def_id, digest)


# --- off-chain: the issuing org's gateway and the holder's wallet --------------------------------


class KycIssuer:
    """An org's KYC issuer. The private credential definition never leaves this object."""

    def __init__(self, org: str, tag: str = "kyc1") -> None:
        self.org = org
        self.schema = Schema.create(SCHEMA_NAME, SCHEMA_VERSION, issuer_id(org), list(ATTRIBUTES))
        # Generating the CL key pair takes a few seconds (safe primes).
        self.cred_def, self._cred_def_private, self._key_proof = CredentialDefinition.create(
            schema_id(org), self.schema, issuer_id(org), tag, "CL", support_revocation=False
        )
        self.schema_id = schema_id(org)
        self.cred_def_id = cred_def_id(org, tag)

    def public_documents(self) -> tuple[str, str]:
        """(schema JSON, credential definition JSON): what `Account:RegisterKycIssuer` takes."""
        return self.schema.to_json(), self.cred_def.to_json()

    def offer(self) -> Any:
        return CredentialOffer.create(self.schema_id, self.cred_def_id, self._key_proof)

    def issue(self, offer: Any, request: Any, kyc_level: int, passport_epoch: int) -> Any:
        return Credential.create(
            self.cred_def, self._cred_def_private, offer, request,
            {"kyc_level": str(kyc_level), "passport_epoch": str(passport_epoch)},
        )


class KycHolder:
    """The holder's wallet: a link secret and the KYC credentials bound to it."""

    def __init__(self) -> None:
        self._link_secret = create_link_secret()
        self._credentials: dict[str, tuple[Any, KycIssuer]] = {}

    def obtain(self, issuer: KycIssuer, kyc_level: int, passport_epoch: int = 1) -> None:
        """Run the issuance protocol with `issuer` (offer, blinded request, credential)."""
        offer = issuer.offer()
        request, metadata = CredentialRequest.create(
            secrets.token_hex(16), None, issuer.cred_def, self._link_secret, "mip", offer
        )
        credential = issuer.issue(offer, request, kyc_level, passport_epoch)
        credential = credential.process(metadata, self._link_secret, issuer.cred_def)
        self._credentials[issuer.cred_def_id] = (credential, issuer)

    def present(self, account_public_key: bytes, pseudonym: str, min_level: int) -> dict[str, Any]:
        """A presentation of kyc_level >= min_level bound to this account (key, pseudonym)."""
        if not self._credentials:
            raise ValueError("the holder has no KYC credential")
        credential, issuer = next(iter(self._credentials.values()))
        request = presentation_request(account_nonce(account_public_key, pseudonym), min_level)
        present = PresentCredentials()
        present.add_predicates(credential, PREDICATE_REFERENT)
        presentation = Presentation.create(
            request, present, None, self._link_secret,
            {issuer.schema_id: issuer.schema}, {issuer.cred_def_id: issuer.cred_def},
        )
        value: dict[str, Any] = presentation.to_dict()
        return value


def time_verification(
    presentation: dict[str, Any], nonce: str, min_level: int,
    issuers: Mapping[str, IssuerDocuments], rounds: int = 5,
) -> float:
    """Median seconds of `verify_account_presentation` (benchmark helper)."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        verify_account_presentation(presentation, nonce, min_level, issuers)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]
