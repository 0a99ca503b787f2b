"""X25519 keys from Ed25519 keys, the one place MIP converts them (sealing guardian shares and
profile data keys, and the linkage proof's Diffie-Hellman, gateway/holder/linkage_proof.py),
and key ids.

Guardians are known on the ledger only by their Ed25519 passport public keys, so a share is
sealed to the X25519 key obtained from that Ed25519 key by libsodium's birational map
(`crypto_sign_ed25519_pk_to_curve25519`, and `..._sk_to_curve25519` on the guardian's side).
Why that is acceptable: libsodium provides and documents the conversion for exactly this use
(one long-term key for signing and for sealing); the two uses run different protocols
(Ed25519 signatures over domain-separated requests vs. X25519 Diffie-Hellman inside a sealed
box, which hashes the shared point with both public keys), so neither produces values an
attacker can replay in the other; and the security of X25519 on the converted key rests on the
same discrete-log problem on the same curve. The conversion refuses small-order and
non-canonical points, which is why a bad guardian key is reported, not silently used.
"""

from __future__ import annotations

import hashlib

import nacl.exceptions
import nacl.signing
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from nacl.public import PrivateKey, PublicKey

from gateway.holder.errors import InvalidKeyMaterial

_KEY_ID_DOMAIN = b"MIP-X25519-KEY-ID-V1\x00"


def x25519_public_from_ed25519(ed25519_public_raw: bytes) -> PublicKey:
    """The X25519 public key matching a raw 32-byte Ed25519 public key.

    Raises `InvalidKeyMaterial` for a wrong length or a point libsodium refuses.
    """
    if not isinstance(ed25519_public_raw, bytes) or len(ed25519_public_raw) != 32:
        raise InvalidKeyMaterial("an Ed25519 public key is 32 raw bytes")
    try:
        return nacl.signing.VerifyKey(ed25519_public_raw).to_curve25519_public_key()
    except nacl.exceptions.CryptoError as exc:
        raise InvalidKeyMaterial("not a usable Ed25519 public key") from exc


def x25519_private_from_ed25519(private: Ed25519PrivateKey) -> PrivateKey:
    """The X25519 private key matching an Ed25519 private key (same key pair, other use)."""
    if not isinstance(private, Ed25519PrivateKey):
        raise InvalidKeyMaterial("expected an Ed25519PrivateKey")
    seed = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return nacl.signing.SigningKey(seed).to_curve25519_private_key()


def x25519_key_id(public: PublicKey) -> str:
    """A stable identifier (hex) of an X25519 public key, as stores index recipients by.

    Domain-separated hash so that the id of a converted guardian key does not equal any hash
    of its Ed25519 form that other records may hold.
    """
    if not isinstance(public, PublicKey):
        raise InvalidKeyMaterial("expected a nacl.public.PublicKey")
    return hashlib.sha256(_KEY_ID_DOMAIN + bytes(public)).hexdigest()
