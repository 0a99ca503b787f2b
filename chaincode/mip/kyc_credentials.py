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
import tempfile
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
    CredentialRevocationConfig,
    CredentialRevocationState,
    Presentation,
    PresentCredentials,
    RevocationRegistryDefinition,
    RevocationStatusList,
    Schema,
    create_link_secret,
)
from anoncreds import bindings as _anoncreds_bindings

from chaincode.mip.errors import BadSignature, InvalidRequest, PreconditionFailed

# Load the native library now, under Python's import lock. anoncreds' own lazy loader is not
# thread-safe: two threads making their first anoncreds call at once both install its Rust
# logger, and the second panics ("env_logger::init should not be called after logger
# initialized"), failing that call (seen when issuers are created in parallel).
_anoncreds_bindings.get_library()

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


def rev_reg_id(org: str, cred_tag: str, tag: str) -> str:
    return f"{issuer_id(org)}:revreg:{SCHEMA_NAME}:{cred_tag}:{tag}"


def org_of_cred_def_id(identifier: str) -> str:
    parts = identifier.split(":")
    if len(parts) != 5 or parts[0] != "mip" or parts[2] != "creddef" or parts[3] != SCHEMA_NAME:
        raise InvalidRequest("not a MIP KYC credential definition id")
    return parts[1]


def account_nonce(account_public_key: bytes, pseudonym: str) -> str:
    """The presentation nonce for an account: 80 bits (anoncreds' size) of a domain hash."""
    digest = hashlib.sha256(_NONCE_DOMAIN + account_public_key + pseudonym.encode()).digest()
    return str(int.from_bytes(digest[:10], "big"))


def reprove_nonce(account_public_key: bytes, pseudonym: str, revocation_time: int) -> str:
    """Nonce of a re-proof: bound to the account and to the revocation list it answers."""
    digest = hashlib.sha256(_NONCE_DOMAIN + b"reprove\x00" + account_public_key
                            + pseudonym.encode() + str(revocation_time).encode()).digest()
    return str(int.from_bytes(digest[:10], "big"))


def presentation_request(
    nonce: str, min_level: int, revocation_time: int | None = None
) -> dict[str, Any]:
    """What the chaincode asks: one predicate kyc_level >= min_level, nothing revealed, and
    for revocable credentials non-revocation at the latest published list."""
    request = _base_request(nonce, min_level)
    if revocation_time is not None:
        request["non_revoked"] = {"from": revocation_time, "to": revocation_time}
    return request


def _base_request(nonce: str, min_level: int) -> dict[str, Any]:
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


# --- off-chain: the issuing org's gateway and the holder's wallet --------------------------------


class KycIssuer:
    """An org's KYC issuer. Private parts (credential definition, registry) stay in here."""

    def __init__(self, org: str, tag: str = "kyc1", *, revocable: bool = True,
                 max_credentials: int = 256, tails_dir: str | None = None) -> None:
        self.org = org
        self.tag = tag
        self.schema = Schema.create(SCHEMA_NAME, SCHEMA_VERSION, issuer_id(org), list(ATTRIBUTES))
        # Generating the CL key pair takes seconds (safe primes).
        self.cred_def, self._cred_def_private, self._key_proof = CredentialDefinition.create(
            schema_id(org), self.schema, issuer_id(org), tag, "CL", support_revocation=revocable
        )
        self.schema_id = schema_id(org)
        self.cred_def_id = cred_def_id(org, tag)
        self.revocable = revocable
        self._next_index = 1  # anoncreds registry indexes start at 1
        self.rev_reg_id: str | None = None
        if revocable:
            self.rev_reg_id = rev_reg_id(org, tag, "r1")
            self.rev_reg_def, self._rev_reg_private = RevocationRegistryDefinition.create(
                self.cred_def_id, self.cred_def, issuer_id(org), "r1", "CL_ACCUM",
                max_credentials, tails_dir_path=tails_dir or tempfile.mkdtemp(prefix="mip-tails-"),
            )
            self.status_list = RevocationStatusList.create(
                self.cred_def, self.rev_reg_id, self.rev_reg_def, self._rev_reg_private,
                issuer_id(org), True, int(time.time()),
            )

    @property
    def tails_path(self) -> str:
        """Where holders get the tails file (a local path here; a URL in a deployment)."""
        return str(self.rev_reg_def.to_dict()["value"]["tailsLocation"])

    def public_documents(self) -> tuple[str, str]:
        """(schema JSON, credential definition JSON): what `Account:RegisterKycIssuer` takes."""
        return self.schema.to_json(), self.cred_def.to_json()

    def revocation_documents(self) -> tuple[str, str]:
        """(registry definition JSON, latest status list JSON): `Account:PublishKycRevocation`."""
        return self.rev_reg_def.to_json(), self.status_list.to_json()

    def offer(self) -> Any:
        return CredentialOffer.create(self.schema_id, self.cred_def_id, self._key_proof)

    def issue(self, offer: Any, request: Any, kyc_level: int,
              passport_epoch: int) -> tuple[Any, int | None]:
        """A credential and its registry index (kept by the issuer against the passport)."""
        values = {"kyc_level": str(kyc_level), "passport_epoch": str(passport_epoch)}
        if not self.revocable:
            credential = Credential.create(self.cred_def, self._cred_def_private, offer,
                                           request, values)
            return credential, None
        index = self._next_index
        self._next_index += 1
        config = CredentialRevocationConfig(self.rev_reg_def, self._rev_reg_private,
                                            self.status_list, index)
        credential = Credential.create(self.cred_def, self._cred_def_private, offer, request,
                                       values, None, config)
        return credential, index

    def revoke(self, index: int) -> None:
        """Revoke credential `index`; publish `revocation_documents()` afterwards."""
        previous = int(self.status_list.to_dict()["timestamp"])
        self.status_list = self.status_list.update(
            self.cred_def, self.rev_reg_def, self._rev_reg_private, None, [index],
            max(int(time.time()), previous + 1),
        )


class KycHolder:
    """The holder's wallet: a link secret and the KYC credentials bound to it."""

    def __init__(self) -> None:
        self._link_secret = create_link_secret()
        self._credentials: dict[str, tuple[Any, KycIssuer, int | None]] = {}

    def obtain(self, issuer: KycIssuer, kyc_level: int, passport_epoch: int = 1) -> int | None:
        """Run the issuance protocol with `issuer`; returns the registry index, if any."""
        offer = issuer.offer()
        request, metadata = CredentialRequest.create(
            secrets.token_hex(16), None, issuer.cred_def, self._link_secret, "mip", offer
        )
        credential, index = issuer.issue(offer, request, kyc_level, passport_epoch)
        credential = credential.process(metadata, self._link_secret, issuer.cred_def,
                                        issuer.rev_reg_def if issuer.revocable else None)
        self._credentials[issuer.cred_def_id] = (credential, issuer, index)
        return index

    def present(self, account_public_key: bytes, pseudonym: str, min_level: int, *,
                status_list: Mapping[str, Any] | None = None,
                reprove: bool = False) -> dict[str, Any]:
        """A presentation of kyc_level >= min_level bound to this account (key, pseudonym).

        For a revocable credential it proves non-revocation at `status_list` (the latest one
        on the ledger; by default the issuer's current list).
        """
        if not self._credentials:
            raise ValueError("the holder has no KYC credential")
        credential, issuer, index = next(iter(self._credentials.values()))
        present = PresentCredentials()
        revocation_time: int | None = None
        if issuer.revocable and index is not None:
            status = (RevocationStatusList.load(dict(status_list)) if status_list is not None
                      else issuer.status_list)
            revocation_time = int(status.to_dict()["timestamp"])
            state = CredentialRevocationState.create(issuer.rev_reg_def, status, index,
                                                     issuer.tails_path)
            present.add_predicates(credential, PREDICATE_REFERENT, timestamp=revocation_time,
                                   rev_state=state)
        else:
            present.add_predicates(credential, PREDICATE_REFERENT)
        if reprove:
            if revocation_time is None:
                raise ValueError("only revocable credentials are re-proved")
            nonce = reprove_nonce(account_public_key, pseudonym, revocation_time)
        else:
            nonce = account_nonce(account_public_key, pseudonym)
        request = presentation_request(nonce, min_level, revocation_time)
        presentation = Presentation.create(
            request, present, None, self._link_secret,
            {issuer.schema_id: issuer.schema}, {issuer.cred_def_id: issuer.cred_def},
        )
        value: dict[str, Any] = presentation.to_dict()
        return value


def time_verification(
    presentation: dict[str, Any], nonce: str, min_level: int,
    issuers: Mapping[str, IssuerDocuments],
    revocation: Mapping[str, RevocationDocuments] | None = None, rounds: int = 5,
) -> float:
    """Median seconds of `verify_account_presentation` (benchmark helper)."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        verify_account_presentation(presentation, nonce, min_level, issuers, revocation)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


# --- off-chain persistence (the gateway keeps issuers and wallets across restarts) ---------------
#
# Only the gateway and tests use these; the chaincode never does. The JSON holds private key
# material (the CL private key, the registry's private part, a link secret): callers encrypt it
# before it touches a disk, as gateway/services/kyc.py and holders.py do.

ISSUER_STATE_VERSION = 1
HOLDER_STATE_VERSION = 1


class KycStateError(ValueError):
    """A saved issuer or wallet is malformed, of another version, or names an unknown issuer."""


def _issuer_from_state(state: Mapping[str, Any]) -> KycIssuer:
    from anoncreds import (
        CredentialDefinitionPrivate,
        KeyCorrectnessProof,
        RevocationRegistryDefinitionPrivate,
    )

    issuer = KycIssuer.__new__(KycIssuer)
    try:
        if state["version"] != ISSUER_STATE_VERSION:
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
        issuer._next_index = int(state["next_index"])
        issuer.rev_reg_id = None
        if issuer.revocable:
            issuer.rev_reg_id = rev_reg_id(issuer.org, issuer.tag, "r1")
            issuer.rev_reg_def = RevocationRegistryDefinition.load(state["rev_reg_def"])
            issuer._rev_reg_private = RevocationRegistryDefinitionPrivate.load(
                state["rev_reg_private"])
            issuer.status_list = RevocationStatusList.load(state["status_list"])
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
        "next_index": issuer._next_index,
    }
    if issuer.revocable:
        state["rev_reg_def"] = issuer.rev_reg_def.to_dict()
        state["rev_reg_private"] = issuer._rev_reg_private.to_dict()
        state["status_list"] = issuer.status_list.to_dict()
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
