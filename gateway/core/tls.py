"""TLS for `mip serve`: when plain HTTP is refused, and a self-signed certificate made at run time.

The counter page opens the camera (`getUserMedia`), which browsers allow only in a secure
context: https, or http on the loopback host. Beyond loopback, plain HTTP would also carry the
staff's bearer tokens and holders' face frames in clear. So `mip serve` refuses a
non-loopback host without TLS unless told `--insecure-http` (for a TLS-terminating proxy in
front).

`self_signed(folder, name)` makes (or reuses) a certificate for `name` (a DNS name or an IP
address) with `cryptography`: an ECDSA P-256 key written 0600, valid for `VALIDITY`, remade
when it no longer names `name` or has less than `RENEW_BEFORE` left. It lives in the data dir
(never in the repository); clients trust it by its SHA-256 fingerprint, or by taking the
certificate file as their CA.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.core.config import ConfigError

VALIDITY = datetime.timedelta(days=90)
RENEW_BEFORE = datetime.timedelta(days=7)
CERT_FILE = "self-signed.crt"
KEY_FILE = "self-signed.key"
# RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
_DNS_NAME = re.compile(r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
                       r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")


class TlsError(ConfigError):
    """A TLS option is incomplete or names something unusable."""


@dataclass(frozen=True)
class ServerCertificate:
    cert_file: Path
    key_file: Path
    fingerprint: str  # SHA-256 of the DER certificate, colon-separated upper-case hex
    created: bool  # False when an existing one was reused


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses: the only hosts a browser treats as a
    secure context over plain HTTP (and the only ones no other machine reaches)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name.strip("[]")))
    except ValueError:
        pass
    if not _DNS_NAME.fullmatch(name):
        raise TlsError(f"--tls-self-signed needs a host name or IP address, got {name!r}")
    return x509.DNSName(name.lower())


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def _reusable(cert_file: Path, key_file: Path, san: x509.GeneralName) -> x509.Certificate | None:
    if not (cert_file.is_file() and key_file.is_file()):
        return None
    try:
        cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return None
    left = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    return cert if list(names) == [san] and left > RENEW_BEFORE else None


def self_signed(folder: Path, name: str) -> ServerCertificate:
    """A certificate for `name` in `folder` (made if absent, expiring or for another name)."""
    san = _san(name)
    cert_file, key_file = folder / CERT_FILE, folder / KEY_FILE
    existing = _reusable(cert_file, key_file, san)
    if existing is not None:
        return ServerCertificate(cert_file, key_file, fingerprint(existing), created=False)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "MIP gateway")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # clients' clocks drift
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName([san]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False,
            crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    _write_private(key_file, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return ServerCertificate(cert_file, key_file, fingerprint(cert), created=True)


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    # Created 0600 from the start: never readable by others, not even for an instant.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def check_pair(cert_file: Path | None, key_file: Path | None) -> tuple[Path, Path] | None:
    """The given certificate and key files (both or neither), checked to exist."""
    if cert_file is None and key_file is None:
        return None
    if cert_file is None or key_file is None:
        raise TlsError("--tls-cert and --tls-key go together")
    for path in (cert_file, key_file):
        if not path.is_file():
            raise TlsError(f"{path} is not a file")
    return cert_file, key_file
