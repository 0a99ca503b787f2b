"""Authenticated encryption of the gateway's per-holder and per-issuer secrets at rest.

Each purpose gets its own key, HKDF-SHA256 of a root secret with a purpose label, so a key
for one kind of blob never opens another kind; the AAD binds a blob to its row (passport id,
org), so a blob copied to another row does not open there. AES-256-GCM with a random 96-bit
nonce (blobs are few per key: far below GCM's random-nonce limit).

Roots: `GatewaySecrets.face_factor_kek` for what the gateway itself must open (a holder's
face-factor key, released after a face match; a KYC issuer's private key, used at every
enrolment), and the holder's master secret for what only an unlocked holder opens (wallet
and account directory). The gateway's secrets file holds `face_factor_kek` only for devnet
and the demo; production injects it from a secret store (gateway/core/secrets.py).
"""

from __future__ import annotations

import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

FORMAT = b"\x01"
NONCE_BYTES = 12

# Purpose labels (HKDF info); one per kind of blob.
FACE_FACTOR_LABEL = b"MIP-gateway-face-factor-key-v1"
KYC_ISSUER_LABEL = b"MIP-gateway-kyc-issuer-v1"
HOLDER_STATE_LABEL = b"MIP-gateway-holder-state-v1"


class SealedBlobError(Exception):
    """A sealed blob does not open: wrong key, wrong row, altered, or not a blob at all."""


def derive_key(root: bytes, label: bytes) -> bytes:
    """The 32-byte key of one purpose under `root`."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(root)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return FORMAT + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, blob: bytes, aad: bytes) -> bytes:
    if len(blob) < 1 + NONCE_BYTES + 16 or blob[:1] != FORMAT:
        raise SealedBlobError("not a sealed blob of a known format")
    nonce, body = blob[1:1 + NONCE_BYTES], blob[1 + NONCE_BYTES:]
    try:
        return AESGCM(key).decrypt(nonce, body, aad)
    except InvalidTag:
        raise SealedBlobError("sealed blob does not open with this key and row") from None
