"""The linkage proof's pure parts (gateway/holder/linkage_proof.py): input checks, and the
Ed25519 -> X25519 conversion it takes from gateway/holder/x25519.py, which must give the keys
libsodium's conversion gives (proofs made before the conversion moved keep verifying). The
proof against ledger records is tests/chaincode/mip/test_linkage.py."""

from __future__ import annotations

import dataclasses
import secrets
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from nacl.bindings import crypto_sign_ed25519_pk_to_curve25519, crypto_sign_ed25519_sk_to_curve25519

from gateway.holder.linkage_proof import (
    LinkageError,
    LinkageProof,
    LinkedAccount,
    ed25519_private_to_x25519,
    ed25519_public_to_x25519,
    forge_linkage,
    prove_linkage,
    verify_linkage,
)


def _public(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def test_conversion_is_libsodiums() -> None:
    for _ in range(8):
        key = Ed25519PrivateKey.generate()
        public = key.public_key().public_bytes_raw()
        assert ed25519_public_to_x25519(public).public_bytes_raw() == (
            crypto_sign_ed25519_pk_to_curve25519(public))
        assert ed25519_private_to_x25519(key).private_bytes_raw() == (
            crypto_sign_ed25519_sk_to_curve25519(key.private_bytes_raw() + public))
        # the two halves still make one pair
        assert ed25519_private_to_x25519(key).public_key().public_bytes_raw() == (
            ed25519_public_to_x25519(public).public_bytes_raw())
    for bad in (b"", b"\x01" * 31, b"\xff" * 32):
        with pytest.raises(LinkageError):
            ed25519_public_to_x25519(bad)


def test_a_proof_verifies_for_its_verifier_only() -> None:
    verifier, other = X25519PrivateKey.generate(), X25519PrivateKey.generate()
    key_a, key_b = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    a = LinkedAccount("a" * 64, key_a.public_key().public_bytes_raw())
    b = LinkedAccount("b" * 64, key_b.public_key().public_bytes_raw())
    expires = int(time.time()) + 60
    proof = prove_linkage(key_a, a.pseudonym, key_b, b.pseudonym, "v", _public(verifier),
                          secrets.token_hex(16), expires)
    verify_linkage(proof, "v", verifier, a, b)
    with pytest.raises(LinkageError):
        verify_linkage(proof, "v", other, a, b)


def test_linkage_input_checks() -> None:
    """Pure checks: bad keys, one account twice, over-long validity, malformed proofs."""
    verifier = X25519PrivateKey.generate()
    key_a, key_b = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    now = int(time.time())
    with pytest.raises(LinkageError):
        prove_linkage(key_a, "a" * 64, key_a, "b" * 64, "v", _public(verifier), "n" * 16, now + 60)
    with pytest.raises(LinkageError):
        prove_linkage(key_a, "a" * 64, key_b, "b" * 64, "v", _public(verifier), "short", now + 60)
    proof = prove_linkage(key_a, "a" * 64, key_b, "b" * 64, "v", _public(verifier), "n" * 16,
                          now + 3 * 24 * 3600)
    a = LinkedAccount("a" * 64, key_a.public_key().public_bytes_raw())
    b = LinkedAccount("b" * 64, key_b.public_key().public_bytes_raw())
    with pytest.raises(LinkageError, match="too long"):
        verify_linkage(proof, "v", verifier, a, b)
    with pytest.raises(LinkageError):  # not a point on the curve
        forge_linkage(verifier, "v", a, LinkedAccount("b" * 64, b"\xff" * 32), "n" * 16, now)
    for bad in ({}, {**proof.to_dict(), "extra": 1}, {**proof.to_dict(), "expires": "1"},
                {**proof.to_dict(), "tag": 5}):
        with pytest.raises(LinkageError):
            LinkageProof.from_dict(bad)
    with pytest.raises(LinkageError, match="hex"):
        verify_linkage(dataclasses.replace(proof, tag="zz", expires=now + 60), "v", verifier, a, b)
