"""The gateway's sealed holder/issuer blobs: envelopes now, the 0x01 format still read."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from face_engine import envelope
from gateway.services.holder_sealing import (
    FACE_FACTOR_LABEL,
    HOLDER_STATE_LABEL,
    KYC_ISSUER_LABEL,
    SealedBlobError,
    derive_key,
    open_sealed,
    seal,
)


@pytest.fixture
def root() -> bytes:
    return os.urandom(32)


def test_round_trip_writes_an_envelope(root: bytes) -> None:
    key = derive_key(root, FACE_FACTOR_LABEL)
    blob = seal(key, b"face key bytes", b"P-1")
    assert envelope.is_envelope(blob)
    assert blob[1:5] == envelope.purpose_id(FACE_FACTOR_LABEL.decode())
    assert open_sealed(key, blob, b"P-1") == b"face key bytes"


def test_other_row_purpose_root_or_bytes_refused(root: bytes) -> None:
    key = derive_key(root, FACE_FACTOR_LABEL)
    blob = seal(key, b"face key bytes", b"P-1")
    with pytest.raises(SealedBlobError):
        open_sealed(key, blob, b"P-2")
    with pytest.raises(SealedBlobError):
        open_sealed(derive_key(root, KYC_ISSUER_LABEL), blob, b"P-1")
    with pytest.raises(SealedBlobError):
        open_sealed(derive_key(os.urandom(32), FACE_FACTOR_LABEL), blob, b"P-1")
    with pytest.raises(SealedBlobError):
        open_sealed(key, blob[:-1] + bytes([blob[-1] ^ 1]), b"P-1")
    with pytest.raises(SealedBlobError):
        open_sealed(key, b"not a blob", b"P-1")


def _legacy_seal(root: bytes, label: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """The format the gateway wrote before face_engine.envelope (kept here as a fixture)."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(root)
    nonce = os.urandom(12)
    return b"\x01" + nonce + AESGCM(raw).encrypt(nonce, plaintext, aad)


@pytest.mark.parametrize("label", [FACE_FACTOR_LABEL, KYC_ISSUER_LABEL, HOLDER_STATE_LABEL])
def test_legacy_blobs_still_open(root: bytes, label: bytes) -> None:
    old = _legacy_seal(root, label, b"stored before the upgrade", b"P-1")
    key = derive_key(root, label)
    assert open_sealed(key, old, b"P-1") == b"stored before the upgrade"
    with pytest.raises(SealedBlobError):
        open_sealed(key, old, b"P-2")
    with pytest.raises(SealedBlobError):
        open_sealed(key, old[:-1] + bytes([old[-1] ^ 1]), b"P-1")
    # read old, write new: the row's next write is an envelope
    assert envelope.is_envelope(seal(key, open_sealed(key, old, b"P-1"), b"P-1"))


def test_repr_hides_key(root: bytes) -> None:
    key = derive_key(root, FACE_FACTOR_LABEL)
    assert key.key.raw_bytes().hex() not in repr(key)
