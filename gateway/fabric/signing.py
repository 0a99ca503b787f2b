"""ECDSA signing the way Fabric verifies it: SHA-256 digest, DER signature, low-S.

Fabric's MSP refuses a signature whose S lies in the upper half of the curve order
(the malleable twin of a valid signature), so every signature is normalised to low-S.
pyca/cryptography signs and (de)serialises DER but has no low-S option, so the rule
(S -> n - S when S > n/2, Fabric's bccsp/utils ToLowS) is composed here from its
decode/encode_dss_signature -- once for the project, in chaincode/protocol/ecdsa.py, which
devnet (minting and verifying Fabric signatures as a peer) uses too; `to_low_s`, `is_low_s`
and `curve_order` stay exported by gateway.fabric for the client's callers.
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from chaincode.protocol.ecdsa import UnsupportedCurve, is_low_s, to_low_s
from chaincode.protocol.ecdsa import curve_order as _curve_order

__all__ = ["Signer", "SigningKeyError", "curve_order", "is_low_s", "sha256", "to_low_s"]

# Immutable algorithm object, built once rather than per signature.
_ECDSA_PREHASHED_SHA256 = ec.ECDSA(Prehashed(hashes.SHA256()))


class SigningKeyError(ValueError):
    """The private key cannot be used to sign for Fabric (not PEM, not EC, wrong curve)."""


def sha256(message: bytes) -> bytes:
    """The digest Fabric signs and verifies (its default BCCSP hash family is SHA2-256)."""
    return hashlib.sha256(message).digest()


def curve_order(curve: ec.EllipticCurve) -> int:
    """The group order n of a curve Fabric accepts (P-256, P-384); SigningKeyError otherwise."""
    try:
        return _curve_order(curve)
    except UnsupportedCurve as exc:
        raise SigningKeyError(str(exc)) from None


class Signer:
    """Signs messages with an ECDSA private key; the key never leaves this object."""

    __slots__ = ("_key",)

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private_key, ec.EllipticCurvePrivateKey):
            raise SigningKeyError("Fabric identities sign with ECDSA keys")
        curve_order(private_key.curve)  # refuse unsupported curves up front
        self._key = private_key

    @classmethod
    def from_pem(cls, key_pem: bytes, password: bytes | None = None) -> Signer:
        """Load a PKCS#8 or SEC1 PEM private key (cryptogen and Fabric CA write PKCS#8)."""
        try:
            key = serialization.load_pem_private_key(key_pem, password=password)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            # The message of the underlying error never includes key material.
            raise SigningKeyError(f"cannot load private key PEM: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise SigningKeyError("Fabric identities sign with ECDSA keys")
        return cls(key)

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._key.public_key()

    def sign_digest(self, digest: bytes) -> bytes:
        """Sign a SHA-256 digest; returns a low-S DER signature."""
        if len(digest) != hashlib.sha256().digest_size:
            raise ValueError("digest must be a 32-byte SHA-256 digest")
        der = self._key.sign(digest, _ECDSA_PREHASHED_SHA256)
        return to_low_s(der, self._key.curve)

    def sign(self, message: bytes) -> bytes:
        """Hash `message` with SHA-256 and sign it; returns a low-S DER signature."""
        return self.sign_digest(sha256(message))

    def __repr__(self) -> str:
        return f"Signer(curve={self._key.curve.name})"
