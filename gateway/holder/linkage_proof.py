"""Designated-verifier proof that two accounts belong to one holder (nothing goes on the ledger).

The holder, who has both account keys, converts each Ed25519 account key to X25519 and runs
Diffie-Hellman with the chosen verifier's X25519 key. The two shared secrets key (through
HKDF-SHA256) one HMAC-SHA256 tag over (verifier id, account A, account B, nonce, expiry).

- Only the designated verifier can check it: checking needs a shared secret, which takes
  either both account private keys or the verifier's private key.
- It convinces nobody else: the verifier can compute the very same tag from its own private
  key and the two public keys (`forge_linkage`), so showing the proof to a third party proves
  nothing about the holder. That is the point: linkage is disclosed to one party only.
- It is bound to the verifier's id, both accounts, a nonce and an expiry, so it cannot be
  re-targeted to other accounts or reused after it expires.

Account public keys come from the ledger (`Account:Get`); the proof itself travels off-chain,
which is why this lives in the gateway and not in the contract: the holder's gateway proves,
the verifier org's gateway checks, and the ledger holds only the verifier's key
(`Linkage:RegisterVerifierKey`) and the id derived from it (chaincode/protocol/ids.py). The
Ed25519 -> X25519 conversion is gateway/holder/x25519.py's (libsodium's, through PyNaCl).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from hmac import compare_digest
from typing import Any

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from chaincode.protocol.canonical import canonical_json
from gateway.holder.errors import InvalidKeyMaterial
from gateway.holder.x25519 import x25519_private_from_ed25519, x25519_public_from_ed25519

VERSION = "MIP-LINKAGE-V1"
MAX_TTL_S = 24 * 3600


class LinkageError(ValueError):
    """A linkage proof that is malformed, expired, or does not verify for this verifier.

    The subclasses say which, so a gateway can answer each with its own error code."""


class SameAccount(LinkageError):
    """Both sides of the proof are one account: that links nothing."""


class WrongVerifier(LinkageError):
    """The proof is designated to another verifier."""


class LinkageExpired(LinkageError):
    """The proof's expiry has passed (by the verifier's clock)."""


class LinkageNotProven(LinkageError):
    """The tag does not verify for these accounts and this verifier."""


@dataclass(frozen=True)
class LinkedAccount:
    pseudonym: str
    public_key: bytes  # raw Ed25519 account key, as on the ledger (base64 there)


@dataclass(frozen=True)
class LinkageProof:
    verifier_id: str
    pseudonym_a: str
    pseudonym_b: str
    nonce: str
    expires: int
    tag: str  # hex HMAC-SHA256

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, value: Any) -> LinkageProof:
        if not isinstance(value, dict) or set(value) != set(cls.__dataclass_fields__):
            raise LinkageError(f"a linkage proof has exactly {sorted(cls.__dataclass_fields__)}")
        for name in ("verifier_id", "pseudonym_a", "pseudonym_b", "nonce", "tag"):
            if not isinstance(value[name], str):
                raise LinkageError(f"{name} must be a string")
        if not isinstance(value["expires"], int) or isinstance(value["expires"], bool):
            raise LinkageError("expires must be an integer")
        return cls(**value)


def ed25519_private_to_x25519(key: Ed25519PrivateKey) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(bytes(x25519_private_from_ed25519(key)))


def ed25519_public_to_x25519(public_key: bytes) -> X25519PublicKey:
    try:
        return X25519PublicKey.from_public_bytes(bytes(x25519_public_from_ed25519(public_key)))
    except InvalidKeyMaterial as exc:
        raise LinkageError("not a valid Ed25519 public key") from exc


def _exchange(private: X25519PrivateKey, public: X25519PublicKey) -> bytes:
    try:
        return private.exchange(public)
    except ValueError as exc:  # low-order point: all-zero secret
        raise LinkageError("key exchange gave a degenerate secret") from exc


def _tag(secret_a: bytes, secret_b: bytes, verifier_id: str, a: LinkedAccount, b: LinkedAccount,
         nonce: str, expires: int) -> str:
    statement = canonical_json({
        "version": VERSION,
        "verifier_id": verifier_id,
        "account_a": {"pseudonym": a.pseudonym, "public_key": a.public_key.hex()},
        "account_b": {"pseudonym": b.pseudonym, "public_key": b.public_key.hex()},
        "nonce": nonce,
        "expires": expires,
    })
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=hashlib.sha256(statement).digest(),
        info=VERSION.encode(),
    ).derive(secret_a + secret_b)
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(statement)
    return mac.finalize().hex()


def _check_shape(verifier_id: str, a: LinkedAccount, b: LinkedAccount, nonce: str) -> None:
    if not verifier_id:
        raise LinkageError("verifier id must not be empty")
    if a.public_key == b.public_key or a.pseudonym == b.pseudonym:
        raise SameAccount("a linkage proof relates two different accounts")
    if not 16 <= len(nonce) <= 128:
        raise LinkageError("nonce must be 16 to 128 characters")


def prove_linkage(
    key_a: Ed25519PrivateKey, pseudonym_a: str,
    key_b: Ed25519PrivateKey, pseudonym_b: str,
    verifier_id: str, verifier_public: bytes, nonce: str, expires: int,
) -> LinkageProof:
    """The holder's side: needs both account private keys and the verifier's X25519 key."""
    a = LinkedAccount(pseudonym_a, key_a.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
    b = LinkedAccount(pseudonym_b, key_b.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
    _check_shape(verifier_id, a, b, nonce)
    verifier = X25519PublicKey.from_public_bytes(verifier_public)
    secret_a = _exchange(ed25519_private_to_x25519(key_a), verifier)
    secret_b = _exchange(ed25519_private_to_x25519(key_b), verifier)
    tag = _tag(secret_a, secret_b, verifier_id, a, b, nonce, expires)
    return LinkageProof(verifier_id, pseudonym_a, pseudonym_b, nonce, expires, tag)


def forge_linkage(
    verifier_private: X25519PrivateKey, verifier_id: str,
    a: LinkedAccount, b: LinkedAccount, nonce: str, expires: int,
) -> LinkageProof:
    """What the verifier can compute alone: why a proof convinces no one but the verifier."""
    _check_shape(verifier_id, a, b, nonce)
    secret_a = _exchange(verifier_private, ed25519_public_to_x25519(a.public_key))
    secret_b = _exchange(verifier_private, ed25519_public_to_x25519(b.public_key))
    tag = _tag(secret_a, secret_b, verifier_id, a, b, nonce, expires)
    return LinkageProof(verifier_id, a.pseudonym, b.pseudonym, nonce, expires, tag)


def verify_linkage(
    proof: LinkageProof, verifier_id: str, verifier_private: X25519PrivateKey,
    a: LinkedAccount, b: LinkedAccount, now: int | None = None,
) -> None:
    """The designated verifier's check; raises LinkageError unless the proof holds.

    `a` and `b` carry the account keys the verifier fetched from the ledger (Account:Get).
    """
    now = int(time.time()) if now is None else now
    if proof.verifier_id != verifier_id:
        raise WrongVerifier("the proof is designated to another verifier")
    if (proof.pseudonym_a, proof.pseudonym_b) != (a.pseudonym, b.pseudonym):
        raise LinkageNotProven("the proof is about other accounts")
    if proof.expires < now:
        raise LinkageExpired("the proof has expired")
    if proof.expires > now + MAX_TTL_S:
        raise LinkageError("the proof is valid for too long")
    expected = forge_linkage(verifier_private, verifier_id, a, b, proof.nonce, proof.expires)
    try:
        tag = bytes.fromhex(proof.tag)
    except ValueError as exc:
        raise LinkageError("tag is not hex") from exc
    if not compare_digest(tag, bytes.fromhex(expected.tag)):
        raise LinkageNotProven("the linkage proof does not verify")
