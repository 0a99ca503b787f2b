"""Authenticated encryption of the gateway's per-holder and per-issuer secrets at rest.

Sealing is `face_engine.envelope` (version-2 envelopes, AES-256-GCM). Each kind of blob has
its own `PurposeKey`: a key derived by HKDF-SHA256 from a root secret with the kind's label,
and the label as the envelope's purpose, so a key for one kind of blob never opens another
kind (and the envelope says `WrongPurpose` if one is tried). The context binds a blob to
its row (passport id, org), so a blob copied to another row does not open there.

Keys: the key provider's `face-factor` and `kyc-issuer` KEKs for what the gateway itself
must open (a holder's face-factor key, released after a face match; a KYC issuer's private
key, used at every enrolment): in production they are non-extractable keys of a PKCS#11
token that seals and opens these blobs itself; the development file provider derives them
from `face_factor_kek` with these same labels (gateway/core/keys). The holder's master
secret is the root for what only an unlocked holder opens (wallet and account directory).

Blobs written before the envelope module (`0x01 || nonce || AES-256-GCM(key, row)`) are
still in gateways' databases; `open_sealed` reads them through `face_engine.envelope_legacy`
and the next write of the row (`seal`) stores an envelope.
"""

from __future__ import annotations

from dataclasses import dataclass

from face_engine import envelope, envelope_legacy
from gateway.core.keys.names import FACE_FACTOR_LABEL, KYC_ISSUER_LABEL

LEGACY_FORMAT = b"\x01"

__all__ = ["FACE_FACTOR_LABEL", "HOLDER_STATE_LABEL", "KYC_ISSUER_LABEL", "PurposeKey",
           "SealedBlobError", "derive_key", "open_sealed", "seal"]

# Purpose labels (HKDF info and envelope purpose); one per kind of blob (the gateway's own
# two are named with its keys, gateway/core/keys/names.py).
HOLDER_STATE_LABEL = b"MIP-gateway-holder-state-v1"


class SealedBlobError(Exception):
    """A sealed blob does not open: wrong key, wrong row, altered, or not a blob at all."""


@dataclass(frozen=True, repr=False)
class PurposeKey:
    """The key of one kind of blob, and that kind's label (the key derived here from a
    root, or a key provider's KEK)."""

    label: bytes
    key: envelope.SealingKey

    @property
    def purpose(self) -> str:
        return self.label.decode("ascii")

    def __repr__(self) -> str:
        return f"PurposeKey({self.purpose}, {self.key!r})"


def derive_key(root: bytes, label: bytes) -> PurposeKey:
    """The key of one purpose under `root` (HKDF-SHA256, no salt, info = label)."""
    return PurposeKey(label, envelope.Key.derive(root, label))


def seal(key: PurposeKey, plaintext: bytes, row: bytes) -> bytes:
    return key.key.seal(plaintext, purpose=key.purpose, context=row)


def open_sealed(key: PurposeKey, blob: bytes, row: bytes) -> bytes:
    if blob[:1] == LEGACY_FORMAT:
        return _open_legacy(key, blob, row)
    try:
        return key.key.open(blob, purpose=key.purpose, context=row)
    except envelope.EnvelopeError as exc:
        raise SealedBlobError(f"sealed blob does not open with this key and row: {exc}") \
            from None


def _open_legacy(key: PurposeKey, blob: bytes, row: bytes) -> bytes:
    """The pre-envelope format: 0x01 || nonce(12) || AES-256-GCM(key, plaintext, aad=row)."""
    if not isinstance(key.key, envelope.Key):
        # written before held keys existed: only the file provider's derived bytes open it
        raise SealedBlobError("a pre-envelope blob opens only under the file key provider")
    try:
        return envelope_legacy.open_aes_gcm_prefixed(key.key.raw_bytes(), blob[1:], row)
    except envelope.Tampered:
        raise SealedBlobError("sealed blob does not open with this key and row") from None
