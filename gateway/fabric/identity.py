"""Client identities: the serialized MSP identity Fabric calls the creator, and MSP folders."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ._protos import identities_pb2
from .signing import Signer, SigningKeyError


class IdentityError(ValueError):
    """An identity (certificate, MSP folder) is missing or malformed."""


@dataclass(frozen=True)
class Identity:
    """An X.509 identity of an MSP member: what Fabric records as a transaction's creator."""

    msp_id: str
    cert_pem: bytes
    certificate: x509.Certificate = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.msp_id:
            raise IdentityError("msp_id must not be empty")
        if isinstance(self.cert_pem, str):
            object.__setattr__(self, "cert_pem", self.cert_pem.encode())
        try:
            cert = x509.load_pem_x509_certificate(self.cert_pem)
        except ValueError as exc:
            raise IdentityError(f"not a PEM X.509 certificate: {exc}") from None
        object.__setattr__(self, "certificate", cert)

    def serialize(self) -> bytes:
        """SerializedIdentity bytes (msp.SerializedIdentity{mspid, id_bytes = cert PEM})."""
        return identities_pb2.SerializedIdentity(
            mspid=self.msp_id, id_bytes=self.cert_pem
        ).SerializeToString()

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        key = self.certificate.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise IdentityError("Fabric identity certificates carry ECDSA public keys")
        return key


class MspCredentials(NamedTuple):
    identity: Identity
    signer: Signer


def _public_bytes(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def credentials_from_pem(msp_id: str, cert_pem: bytes, key_pem: bytes) -> MspCredentials:
    """Pair a certificate with its private key, refusing a key that does not match."""
    identity = Identity(msp_id, cert_pem)
    signer = Signer.from_pem(key_pem)
    if _public_bytes(signer.public_key) != _public_bytes(identity.public_key):
        raise IdentityError("private key does not match the certificate's public key")
    return MspCredentials(identity, signer)


def load_msp_folder(path: str | Path, msp_id: str) -> MspCredentials:
    """Read `signcerts/*.pem` and the matching key in `keystore/` (cryptogen / Fabric CA layout).

    cryptogen names the key `priv_sk`, Fabric CA `<ski>_sk`; when the keystore holds several
    keys, the one whose public key matches the certificate is used.
    """
    root = Path(path)
    certs = sorted((root / "signcerts").glob("*.pem"))
    if len(certs) != 1:
        raise IdentityError(
            f"expected exactly one certificate in {root / 'signcerts'}, found {len(certs)}"
        )
    identity = Identity(msp_id, certs[0].read_bytes())
    keystore = root / "keystore"
    key_files = sorted(p for p in keystore.glob("*") if p.is_file()) if keystore.is_dir() else []
    if not key_files:
        raise IdentityError(f"no private key in {keystore}")
    wanted = _public_bytes(identity.public_key)
    for key_file in key_files:
        try:
            signer = Signer.from_pem(key_file.read_bytes())
        except SigningKeyError:
            continue
        if _public_bytes(signer.public_key) == wanted:
            return MspCredentials(identity, signer)
    raise IdentityError(f"no key in {keystore} matches the certificate {certs[0].name}")
