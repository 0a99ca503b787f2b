"""Read-only path for data sealed before ``face_engine.envelope`` existed.

Stored blobs outlive a gateway run (the gateway's SQLite rows, the dedup index directory,
holders' profile files), and face-reference commitments are on the ledger, so the formats
that were written before the envelope module must still open. Nothing writes them any
more: every caller seals with ``face_engine.envelope`` and moves a legacy item to the new
format when it rewrites it (re-wrap, re-key, compaction, password change).

The two primitives the old formats used, each with the caller's own associated data and
no header:

* AES-256-GCM, 12-byte nonce (face references v1, dedup index format 1, the gateway's
  holder/issuer blobs ``0x01 || nonce || ciphertext``);
* XChaCha20-Poly1305 (IETF), 24-byte nonce, via libsodium (vault blobs v1, profile records
  of schema 1 with a nonce column).

Both raise ``face_engine.envelope.Tampered`` when the bytes do not authenticate.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from face_engine.envelope import KEY_BYTES, Tampered

AES_GCM_NONCE_BYTES = 12
XCHACHA_NONCE_BYTES = 24
TAG_BYTES = 16


def open_aes_gcm(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    """AES-256-GCM as the pre-envelope formats used it."""
    if len(key) != KEY_BYTES or len(nonce) != AES_GCM_NONCE_BYTES \
            or len(ciphertext) < TAG_BYTES:
        raise Tampered("legacy AES-GCM blob is malformed")
    try:
        plaintext: bytes = AESGCM(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        raise Tampered("legacy AES-GCM blob failed authentication") from None
    return plaintext


def open_aes_gcm_prefixed(key: bytes, nonce_and_ciphertext: bytes, aad: bytes) -> bytes:
    """``nonce(12) || ciphertext`` in one byte string (wrapped keys, dedup units)."""
    return open_aes_gcm(key, nonce_and_ciphertext[:AES_GCM_NONCE_BYTES],
                        nonce_and_ciphertext[AES_GCM_NONCE_BYTES:], aad)


def open_xchacha20poly1305(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    """XChaCha20-Poly1305 (libsodium IETF construction) as the vault v1 and profile
    schema-1 records used it."""
    # imported here: only gateway data ever used it, face_engine alone need not load nacl
    import nacl.exceptions
    from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_decrypt

    if len(key) != KEY_BYTES or len(nonce) != XCHACHA_NONCE_BYTES \
            or len(ciphertext) < TAG_BYTES:
        raise Tampered("legacy XChaCha20-Poly1305 blob is malformed")
    try:
        plaintext: bytes = crypto_aead_xchacha20poly1305_ietf_decrypt(
            ciphertext, aad, nonce, key)
    except (nacl.exceptions.CryptoError, TypeError, ValueError):
        raise Tampered("legacy XChaCha20-Poly1305 blob failed authentication") from None
    return plaintext
