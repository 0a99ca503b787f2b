"""The profile's cryptography: per-record data keys, AEAD with bound context, sealed envelopes.

* Each record has its own random 32-byte data key. The record's data and its metadata are
  encrypted separately with XChaCha20-Poly1305 (random 24-byte nonces), each with AAD naming
  the record id, the owner's key id, kind, source, creation time and which part it is, so the
  store's operator cannot move a ciphertext to another record, owner or label unnoticed.
* The data key reaches each reader in an envelope: a libsodium sealed box to the reader's
  X25519 public key (anonymous sender; X25519 + XSalsa20-Poly1305 with an ephemeral key). A
  sealed box does not say who sealed it, which is why authenticity comes from the AEAD: a
  substituted envelope yields a key that fails to open the record's ciphertext.
"""

from __future__ import annotations

import secrets

import nacl.exceptions
from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
    crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
)
from nacl.public import PrivateKey, PublicKey, SealedBox

from chaincode.protocol.canonical import canonical_json
from gateway.profile.errors import RecordCorrupt

DATA_KEY_BYTES = 32
NONCE_BYTES = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
_AAD_DOMAIN = b"MIP-PROFILE-RECORD-V1\n"


def new_data_key() -> bytes:
    return secrets.token_bytes(DATA_KEY_BYTES)


def record_aad(record_id: str, owner: str, kind: str, source: str, created: int,
               part: str) -> bytes:
    """The associated data binding one ciphertext (`part` "data" or "meta") to its record."""
    return _AAD_DOMAIN + canonical_json({
        "record": record_id, "owner": owner, "kind": kind, "source": source,
        "created": created, "part": part,
    })


def encrypt(data_key: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
    """(nonce, ciphertext) of `plaintext` under `data_key`."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce, crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, aad, nonce, data_key)


def decrypt(data_key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes, record_id: str) -> bytes:
    try:
        return crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, aad, nonce, data_key)
    except (nacl.exceptions.CryptoError, TypeError, ValueError):
        raise RecordCorrupt(f"record {record_id} fails authentication") from None


def seal_key(data_key: bytes, recipient: PublicKey) -> bytes:
    return SealedBox(recipient).encrypt(data_key)


def open_key(sealed: bytes, recipient: PrivateKey, record_id: str) -> bytes:
    try:
        data_key = SealedBox(recipient).decrypt(sealed)
    except (nacl.exceptions.CryptoError, TypeError, ValueError):
        raise RecordCorrupt(f"the key envelope of record {record_id} does not open") from None
    if len(data_key) != DATA_KEY_BYTES:
        raise RecordCorrupt(f"the key envelope of record {record_id} is malformed")
    return data_key
