"""Linkage proofs: a holder shows ONE chosen member org that two of their accounts are theirs.

The proof (gateway/holder/linkage_proof.py) is designated-verifier: its tag is keyed by
Diffie-Hellman between each account key and the verifier org's X25519 key, so only that org
can check it, and that org could have computed the very same tag alone (`forge_linkage`):
the proof convinces the verifier and nobody it is shown to. Nothing of it goes on the ledger.

- **Verifier keys.** Each org's key is derived from this gateway's `linkage` derivation key
  (gateway/core/keys; HKDF-SHA256, one key per MSP id) and its public half registered on
  the ledger by the org's admin (`Linkage:RegisterVerifierKey`, `register_key`). The holder
  names a verifier *org*; the holder's gateway takes that org's key from the ledger, never
  from the client, so the proof cannot be designated to a key a third party slipped in.
- **Proving** (`prove`, `prove_for_session`): both accounts must be the holder's (their keys
  are at hand: the desk session's directory, or a self-custody holder's key files), different,
  and open on the ledger with exactly those keys. The expiry is this gateway's clock plus a
  bounded TTL; the nonce may be a challenge the verifier gave the holder.
- **Verifying** (`verify`): only staff of the verifier org, with this gateway's private key of
  that org; the account keys and status come from `Account:Get` through the org's own peer,
  and the expiry is checked against this gateway's clock (a proof's `expires` is the
  prover's claim; it is only accepted within `MAX_TTL_S` of the verifier's now).

Every refusal is a typed error; proving and verifying write nothing anywhere.
"""

from __future__ import annotations

import base64
import logging
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from chaincode.protocol.ids import verifier_id_for
from face_engine.protect.keyed_rotation import KeyDeriver
from gateway.core.errors import ApiError, Conflict, Forbidden, Gone, InvalidRequest, NotFound
from gateway.core.security import ROLES, StaffMember, require_role
from gateway.fabric import ChaincodeError, Contract
from gateway.holder.linkage_proof import (
    MAX_TTL_S,
    LinkageError,
    LinkageExpired,
    LinkageNotProven,
    LinkageProof,
    LinkedAccount,
    SameAccount,
    WrongVerifier,
    prove_linkage,
    verify_linkage,
)

from .ledger_reads import json_object

if TYPE_CHECKING:
    from .holders import HolderSession
    from .state import AppState

log = logging.getLogger("mip.gateway.linkage")

HKDF_INFO = b"mip linkage verifier key v1\x00"
DEFAULT_TTL_S = 3600
MIN_TTL_S = 60
# A verifier refuses a proof valid for more than MAX_TTL_S by ITS clock; five minutes less
# here keeps a longest-lived proof acceptable to a verifier whose clock is a little behind.
MAX_PROOF_TTL_S = MAX_TTL_S - 300
# Any staff member of the verifier org may check a proof it was given (the holder chose to
# tell that org); the gateway's own service identity is no person and checks nothing.
VERIFIER_ROLES = tuple(r for r in ROLES if r != "gateway")


@dataclass(frozen=True)
class VerifierKey:
    """One org's linkage verifier key as this gateway holds it."""

    org: str
    private: X25519PrivateKey
    public_raw: bytes

    @property
    def verifier_id(self) -> str:
        return verifier_id_for(self.org, self.public_raw)

    @property
    def public_b64(self) -> str:
        return base64.b64encode(self.public_raw).decode()

    def __repr__(self) -> str:
        return f"VerifierKey({self.verifier_id!r}, <private key withheld>)"


def derive_verifier_key(deriver: KeyDeriver, org: str) -> VerifierKey:
    """The org's X25519 key from the gateway's linkage key: stable across restarts, one
    per org."""
    material = deriver.expand(HKDF_INFO + org.encode(), 32)
    private = X25519PrivateKey.from_private_bytes(material)  # X25519 clamps any 32 bytes
    return VerifierKey(org, private, private.public_key().public_bytes(Encoding.Raw,
                                                                       PublicFormat.Raw))


def verifier_key(state: AppState, org: str) -> VerifierKey:
    return state.service(f"linkage_key:{org}",
                         lambda s: derive_verifier_key(s.keys.deriver("linkage"), org))


# --- ledger reads ---------------------------------------------------------------------------


def _member_org(state: AppState, org: str, what: str) -> str:
    if org not in state.ledger.orgs():
        raise InvalidRequest(f"{what} must be a member org", code="unknown_verifier")
    return org


async def verifier_record(reader: Contract, org: str) -> dict[str, Any]:
    """`Linkage:GetVerifierKey`: the org's registered key, or 404 verifier_key_not_registered."""
    try:
        return json_object(await reader.evaluate("Linkage:GetVerifierKey", [org]))
    except ChaincodeError as exc:
        if exc.chaincode_message.startswith("not_found: "):
            raise NotFound(f"{org} has registered no linkage verifier key",
                           code="verifier_key_not_registered") from None
        raise


async def _open_account(reader: Contract, pseudonym: str) -> dict[str, Any]:
    """`Account:Get`, refusing unknown (404) and closed (409) accounts."""
    try:
        record = json_object(await reader.evaluate("Account:Get", [pseudonym]))
    except ChaincodeError as exc:
        if exc.chaincode_message.startswith("not_found: "):
            raise NotFound("no such account on the ledger", code="account_not_found") from None
        raise
    if record.get("status") != "open":
        raise Conflict("an account of the proof is closed", code="account_closed")
    return record


def _ledger_key(record: dict[str, Any]) -> bytes:
    try:
        return base64.b64decode(str(record["public_key"]), validate=True)
    except (KeyError, ValueError):
        raise ApiError("unexpected answer from the ledger", code="ledger_answer",
                       status=502) from None


# --- the holder's side ----------------------------------------------------------------------


def _public_raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _check_ttl(ttl_s: int) -> int:
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or not (
            MIN_TTL_S <= ttl_s <= MAX_PROOF_TTL_S):
        raise InvalidRequest(f"ttl_s must be {MIN_TTL_S} to {MAX_PROOF_TTL_S} seconds")
    return ttl_s


async def prove(state: AppState, reader_org: str,
                account_a: tuple[str, Ed25519PrivateKey], account_b: tuple[str, Ed25519PrivateKey],
                verifier_org: str, ttl_s: int = DEFAULT_TTL_S, nonce: str | None = None
                ) -> dict[str, Any]:
    """A proof that the holder of both keys owns both accounts, designated to `verifier_org`.

    `reader_org`'s gateway identity reads the ledger (the holder's own gateway's org, whose
    peer it trusts). Each key must be the account's key on record and each account open.
    """
    (pseudonym_a, key_a), (pseudonym_b, key_b) = account_a, account_b
    if pseudonym_a == pseudonym_b:
        raise InvalidRequest("a linkage proof relates two different accounts",
                             code="same_account")
    _member_org(state, verifier_org, "verifier_org")
    _check_ttl(ttl_s)
    nonce = secrets.token_hex(16) if nonce is None else nonce
    if not 16 <= len(nonce) <= 128:
        raise InvalidRequest("nonce must be 16 to 128 characters")
    reader = state.ledger.carrier(reader_org)
    for pseudonym, key in ((pseudonym_a, key_a), (pseudonym_b, key_b)):
        record = await _open_account(reader, pseudonym)
        if _ledger_key(record) != _public_raw(key):
            # A proof with a key the ledger does not hold for the account would never verify;
            # refusing here says why instead.
            raise Conflict("the key is not this account's key on the ledger",
                           code="key_mismatch")
    registered = await verifier_record(reader, verifier_org)
    verifier_public = _ledger_key(registered)
    verifier_id = verifier_id_for(verifier_org, verifier_public)
    expires = int(time.time()) + ttl_s
    try:
        proof = prove_linkage(key_a, pseudonym_a, key_b, pseudonym_b, verifier_id,
                              verifier_public, nonce, expires)
    except SameAccount:
        raise InvalidRequest("a linkage proof relates two different accounts",
                             code="same_account") from None
    except LinkageError as exc:
        raise InvalidRequest(str(exc), code="invalid_proof") from None
    log.info("linkage proof made for %s", verifier_org)
    return {"proof": proof.to_dict(), "verifier_org": verifier_org,
            "verifier_public_key": registered["public_key"]}


async def prove_for_session(state: AppState, session: HolderSession, pseudonym_a: str,
                            pseudonym_b: str, verifier_org: str, ttl_s: int = DEFAULT_TTL_S,
                            nonce: str | None = None) -> dict[str, Any]:
    """`prove` for a level-2 desk session: both accounts from the holder's own directory.

    For a holder whose keys another org's gateway holds (custody_client.py), that gateway
    makes the proof, designated to this org only, relating an account at this org to another
    account the holder names (custody.py)."""
    from .custody_client import RemoteHolderSession, custody_client

    session.require_level(2)
    if pseudonym_a == pseudonym_b:
        raise InvalidRequest("a linkage proof relates two different accounts",
                             code="same_account")
    if isinstance(session, RemoteHolderSession):
        if verifier_org != state.settings.org:
            raise Forbidden("at another org's desk a linkage proof is made for this org's "
                            "own verifier only", code="verifier_not_desk_org")
        _check_ttl(ttl_s)
        here = {a.pseudonym for a in session.accounts()}
        if pseudonym_a not in here and pseudonym_b not in here:
            raise NotFound("neither account is this holder's account at this org",
                           code="account_not_found")
        account, other = (pseudonym_a, pseudonym_b) if pseudonym_a in here \
            else (pseudonym_b, pseudonym_a)
        payload: dict[str, Any] = {"handle": session.handle, "account": account,
                                   "other_account": other, "ttl_s": ttl_s}
        if nonce is not None:
            payload["nonce"] = nonce
        out: dict[str, Any] = await custody_client(state).call(
            session.custodian, "/sessions/linkage-proofs", payload)
        return out
    for pseudonym in (pseudonym_a, pseudonym_b):
        if session.account(pseudonym).status != "open":  # 404 for another holder's account
            raise Conflict("this account is closed", code="account_closed")
    return await prove(state, session.staff.org,
                       (pseudonym_a, session.account_key(pseudonym_a).private),
                       (pseudonym_b, session.account_key(pseudonym_b).private),
                       verifier_org, ttl_s, nonce)


# --- the verifier's side --------------------------------------------------------------------


async def register_key(state: AppState, member: StaffMember) -> dict[str, Any]:
    """Register this gateway's verifier key of the admin's org on the ledger; idempotent."""
    require_role(member, ("admin",))
    key = verifier_key(state, member.org)
    try:
        current = await verifier_record(state.ledger.carrier(member.org), member.org)
    except NotFound:
        current = None
    newly = current is None or current.get("public_key") != key.public_b64
    if newly:
        await state.ledger.for_staff(member).submit("Linkage:RegisterVerifierKey",
                                                    [key.public_b64])
    log.info("linkage verifier key of %s %s", member.org,
             "registered" if newly else "was registered")
    return {"org": member.org, "verifier_id": key.verifier_id, "public_key": key.public_b64,
            "newly_registered": newly}


async def verify_as_staff(state: AppState, member: StaffMember, proof: Any,
                          nonce: str | None = None) -> dict[str, Any]:
    """`verify` for a staff member: any role but `gateway`, for their own org only."""
    require_role(member, VERIFIER_ROLES)
    return await verify(state, member.org, proof, nonce)


async def verify(state: AppState, org: str, proof: Any,
                 nonce: str | None = None) -> dict[str, Any]:
    """Check a proof given to `org` with this gateway's key of that org (the caller is that
    org's: a staff member through `verify_as_staff`, or the gateway's operator on the CLI)."""
    try:
        parsed = LinkageProof.from_dict(proof)
    except LinkageError as exc:
        raise InvalidRequest(f"malformed linkage proof: {exc}", code="invalid_proof") from None
    key = verifier_key(state, _member_org(state, org, "the verifier org"))
    if parsed.verifier_id != key.verifier_id:
        raise Forbidden("this proof is designated to another verifier (or an old key)",
                        code="wrong_verifier")
    if parsed.pseudonym_a == parsed.pseudonym_b:
        raise InvalidRequest("a linkage proof relates two different accounts",
                             code="same_account")
    if nonce is not None and not secrets.compare_digest(nonce.encode(), parsed.nonce.encode()):
        raise InvalidRequest("the proof does not answer your nonce", code="nonce_mismatch")
    reader = state.ledger.carrier(org)  # the verifier's own peer
    records = [await _open_account(reader, p) for p in (parsed.pseudonym_a, parsed.pseudonym_b)]
    a, b = (LinkedAccount(str(r["pseudonym"]), _ledger_key(r)) for r in records)
    try:
        verify_linkage(parsed, key.verifier_id, key.private, a, b)
    except WrongVerifier:
        raise Forbidden("this proof is designated to another verifier",
                        code="wrong_verifier") from None
    except LinkageExpired:
        raise Gone("the linkage proof has expired", code="proof_expired") from None
    except SameAccount:
        raise InvalidRequest("a linkage proof relates two different accounts",
                             code="same_account") from None
    except LinkageNotProven:
        raise InvalidRequest("the linkage proof does not verify for these accounts",
                             code="linkage_not_proven") from None
    except LinkageError as exc:
        raise InvalidRequest(f"malformed linkage proof: {exc}", code="invalid_proof") from None
    log.info("linkage proof verified for %s", org)
    return {"linked": True, "verifier_id": key.verifier_id, "nonce": parsed.nonce,
            "expires": parsed.expires,
            "accounts": [{"pseudonym": str(r["pseudonym"]),
                          "institution": str(r.get("institution", ""))} for r in records]}
