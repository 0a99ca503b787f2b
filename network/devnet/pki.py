"""Crypto material for devnet: a cryptogen-compatible layout minted with `cryptography`.

Everything here is generated at run time (ECDSA P-256, SHA-256) and laid out exactly as
Fabric's `cryptogen` does (see docs/ledger.md), so the same folders work with a real Fabric
peer. Identities minted later by `add_identity` carry Fabric CA's `hf.Attrs` extension so
chaincode attribute checks (`cid.GetAttributeValue`) behave as on a Fabric CA network.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from fabric_protos.msp import identities_pb2

# Fabric's low-S rule has one home, the Gateway client's public signing API (see its docstring).
from chaincode.protocol.ecdsa import curve_order as _curve_order
from chaincode.protocol.ecdsa import is_low_s, to_low_s
from network.devnet.orgs import DEFAULT_PEER_ORGS, ORDERER_ORG, OrgSpec

__all__ = [
    "CRL_FILE",
    "HF_ATTRS_OID",
    "NODE_OUS",
    "AttributeNameError",
    "IdentityExistsError",
    "PKIError",
    "Revocation",
    "SigningIdentity",
    "UnknownIdentityError",
    "UnknownOrgError",
    "add_identity",
    "ca_cert_path",
    "crl_path",
    "curve_order",
    "generate_network",
    "generate_org",
    "hf_attrs_extension",
    "issue_leaf_certificate",
    "issue_tls_server_cert",
    "load_certificate",
    "load_private_key",
    "msp_signing_identity",
    "org_dir",
    "revoke_certificate",
    "revoke_identity",
    "sign",
    "tlsca_cert_path",
    "write_connection_profile",
]

# Fabric CA puts enrollment attributes in this private extension (lib/attrmgr/attrmgr.go).
HF_ATTRS_OID = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")
# The NodeOU roles of Fabric's MSP (msp/config.yaml) -- an identity carries exactly one.
NODE_OUS = ("client", "peer", "admin", "orderer")

# cryptogen's default subject fields (internal/cryptogen/ca/ca.go).
_COUNTRY = "US"
_PROVINCE = "California"
_LOCALITY = "San Francisco"
_VALIDITY = dt.timedelta(days=3650)
# cryptogen back-dates NotBefore by five minutes to tolerate clock skew between hosts.
_BACKDATE = dt.timedelta(minutes=5)

_ORG_INDEX = "orgs.json"
# Where an org's CRL lives: its org-level msp/crls/, the folder configtxgen copies into the
# channel MSP definition's revocation_list and devnet's MSP re-reads while running.
CRL_FILE = "crl.pem"
# Fabric's MSP ignores a CRL's nextUpdate; Fabric CA's gencrl defaults to one day, which only
# matters to other relying parties. A year keeps devnet's CRL from looking stale to them.
_CRL_VALIDITY = dt.timedelta(days=365)
_ATTR_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class PKIError(ValueError):
    """Bad input to, or inconsistent state of, the devnet crypto material."""


class UnknownOrgError(PKIError):
    """The MSP id has no generated organisation under the data directory."""


class IdentityExistsError(PKIError):
    """An identity with this name already exists in the organisation."""


class AttributeNameError(PKIError):
    """An attribute name is malformed or reserved (`hf.*` is set by the CA itself)."""


class UnknownIdentityError(PKIError):
    """No identity of that name in the organisation (nothing to revoke)."""


def curve_order() -> int:
    """The order n of the P-256 group devnet mints keys on (signatures need s <= n/2)."""
    return _curve_order(ec.SECP256R1())


# --------------------------------------------------------------------------- file helpers


def _atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write via a temp file + rename so a crash never leaves a half-written key or cert."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,  # cryptogen writes PKCS#8 ("PRIVATE KEY")
        serialization.NoEncryption(),
    )
    _atomic_write(path, pem, 0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    _atomic_write(path, cert.public_bytes(serialization.Encoding.PEM))


def load_private_key(path: Path | str) -> ec.EllipticCurvePrivateKey:
    """Load a PEM ECDSA private key (PKCS#8 or SEC1)."""
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PKIError(f"{path} is not an ECDSA private key")
    return key


def load_certificate(path: Path | str) -> x509.Certificate:
    """Load one PEM X.509 certificate."""
    return x509.load_pem_x509_certificate(Path(path).read_bytes())


# --------------------------------------------------------------------------- signing


_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())  # immutable: shared by every signature


def sign(private_key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """ECDSA-SHA256 DER signature, normalised to low-S as Fabric's BCCSP does."""
    return to_low_s(private_key.sign(data, _ECDSA_SHA256), private_key.curve)


@dataclass(frozen=True)
class SigningIdentity:
    """A member's certificate and key, as a Fabric client or peer signs with them."""

    msp_id: str
    cert_pem: bytes
    private_key: ec.EllipticCurvePrivateKey

    @property
    def serialized(self) -> bytes:
        """`msp.SerializedIdentity` bytes: what goes in SignatureHeader.creator."""
        message = identities_pb2.SerializedIdentity(  # type: ignore[attr-defined]
            mspid=self.msp_id, id_bytes=self.cert_pem
        )
        return bytes(message.SerializeToString())

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    def sign(self, data: bytes) -> bytes:
        return sign(self.private_key, data)


def msp_signing_identity(msp_dir: Path, msp_id: str) -> SigningIdentity:
    """The signing identity of an MSP folder (`signcerts/*-cert.pem` + `keystore/priv_sk`)."""
    certs = sorted((Path(msp_dir) / "signcerts").glob("*.pem"))
    if len(certs) != 1:
        raise PKIError(f"{msp_dir}/signcerts must hold exactly one certificate")
    keys = sorted((Path(msp_dir) / "keystore").iterdir())
    if len(keys) != 1:
        raise PKIError(f"{msp_dir}/keystore must hold exactly one key")
    key = load_private_key(keys[0])
    cert_pem = certs[0].read_bytes()
    cert_key = x509.load_pem_x509_certificate(cert_pem).public_key()
    if (
        not isinstance(cert_key, ec.EllipticCurvePublicKey)
        or cert_key.public_numbers() != key.public_key().public_numbers()
    ):
        raise PKIError(f"{msp_dir}: the key does not match the certificate")
    return SigningIdentity(msp_id=msp_id, cert_pem=cert_pem, private_key=key)


# --------------------------------------------------------------------------- certificates


def _sign_low_s(
    builder: x509.CertificateBuilder, key: ec.EllipticCurvePrivateKey
) -> x509.Certificate:
    """Sign a certificate so its own ECDSA signature is low-S.

    Fabric's BCCSP signer (used by cryptogen and Fabric CA) always emits low-S, and a peer refuses
    identities whose certificate signature is not in that canonical form (msp isWellFormed).
    OpenSSL does not normalise, and the signature cannot be edited after signing, so re-sign
    (ECDSA is randomised: each try is low-S with probability 1/2).
    """
    for _ in range(128):
        cert = builder.sign(key, hashes.SHA256())
        if is_low_s(cert.signature, key.curve):
            return cert
    raise PKIError("could not produce a low-S certificate signature")  # p = 2**-128


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _name(cn: str, *, org: str | None = None, ous: Sequence[str] = ()) -> x509.Name:
    attrs = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, _COUNTRY),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, _PROVINCE),
        x509.NameAttribute(NameOID.LOCALITY_NAME, _LOCALITY),
    ]
    if org is not None:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    attrs.extend(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou) for ou in ous)
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _make_ca(cn: str, org: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed root like cryptogen's: CA:TRUE, certSign/cRLSign, SKI."""
    key = _new_key()
    name = _name(cn, org=org)
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _VALIDITY)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return _sign_low_s(builder, key), key


def issue_leaf_certificate(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    *,
    tls: bool,
    sans: Iterable[str] = (),
    extra_extensions: Sequence[x509.ExtensionType] = (),
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> x509.Certificate:
    now = _now()
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - _BACKDATE)
        .not_valid_after(not_after or now + _VALIDITY)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=tls,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
    )
    if tls:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    names: list[x509.GeneralName] = []
    for san in dict.fromkeys(sans):  # ordered de-duplication
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(san)))
        except ValueError:
            names.append(x509.DNSName(san))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    for ext in extra_extensions:
        builder = builder.add_extension(ext, critical=False)
    return _sign_low_s(builder, ca_key)


def hf_attrs_extension(attrs: dict[str, str]) -> x509.UnrecognizedExtension:
    """Fabric CA's attribute extension: raw JSON `{"attrs":{...}}` as Go's json.Marshal writes it.

    Go marshals a map with sorted keys, no spaces, and HTML-escapes <, > and &; matching it byte
    for byte keeps certificates identical in shape to Fabric CA's.
    """
    text = json.dumps({"attrs": attrs}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    text = (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )
    return x509.UnrecognizedExtension(HF_ATTRS_OID, text.encode("utf-8"))


# --------------------------------------------------------------------------- layout


def org_dir(data_dir: Path, org: OrgSpec, *, peer_org: bool = True) -> Path:
    kind = "peerOrganizations" if peer_org else "ordererOrganizations"
    return Path(data_dir) / "organizations" / kind / org.domain


def ca_cert_path(data_dir: Path, org: OrgSpec, *, peer_org: bool = True) -> Path:
    return org_dir(data_dir, org, peer_org=peer_org) / "ca" / f"ca.{org.domain}-cert.pem"


def tlsca_cert_path(data_dir: Path, org: OrgSpec, *, peer_org: bool = True) -> Path:
    return org_dir(data_dir, org, peer_org=peer_org) / "tlsca" / f"tlsca.{org.domain}-cert.pem"


def crl_path(data_dir: Path, org: OrgSpec, *, peer_org: bool = True) -> Path:
    """The org's CRL (signed by its CA) in its org-level MSP folder: `msp/crls/crl.pem`."""
    return org_dir(data_dir, org, peer_org=peer_org) / "msp" / "crls" / CRL_FILE


def _node_ou_config(ca_file: str) -> bytes:
    lines = ["NodeOUs:", "  Enable: true"]
    for ou in NODE_OUS:
        lines += [
            f"  {ou.capitalize()}OUIdentifier:",
            f"    Certificate: cacerts/{ca_file}",
            f"    OrganizationalUnitIdentifier: {ou}",
        ]
    return ("\n".join(lines) + "\n").encode()


def _ensure_ca(
    directory: Path, cn: str, org: str
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_file = directory / f"{cn}-cert.pem"
    key_file = directory / "priv_sk"
    if cert_file.exists() and key_file.exists():
        return load_certificate(cert_file), load_private_key(key_file)
    if cert_file.exists() or key_file.exists():
        # A new CA would orphan every certificate the old one issued: refuse instead.
        raise PKIError(f"{directory} holds only half of a CA (certificate or key missing)")
    cert, key = _make_ca(cn, org)
    _write_key(key_file, key)
    _write_cert(cert_file, cert)
    return cert, key


@dataclass(frozen=True)
class _OrgCAs:
    org: OrgSpec
    base: Path
    ca_cert: x509.Certificate
    ca_key: ec.EllipticCurvePrivateKey
    tlsca_cert: x509.Certificate
    tlsca_key: ec.EllipticCurvePrivateKey


def _write_local_msp(
    msp: Path,
    cas: _OrgCAs,
    cert_name: str,
    cert: x509.Certificate,
    key: ec.EllipticCurvePrivateKey,
) -> None:
    domain = cas.org.domain
    _write_cert(msp / "cacerts" / f"ca.{domain}-cert.pem", cas.ca_cert)
    _write_cert(msp / "tlscacerts" / f"tlsca.{domain}-cert.pem", cas.tlsca_cert)
    _atomic_write(msp / "config.yaml", _node_ou_config(f"ca.{domain}-cert.pem"))
    _write_key(msp / "keystore" / "priv_sk", key)
    _write_cert(msp / "signcerts" / f"{cert_name}-cert.pem", cert)


def _write_node(
    cas: _OrgCAs,
    folder: Path,
    cn: str,
    ou: str,
    *,
    tls_server: bool,
    sans: Sequence[str],
    extra_extensions: Sequence[x509.ExtensionType] = (),
) -> None:
    """One peer/orderer/user folder: msp/ (signing identity with NodeOU) and tls/."""
    msp = folder / "msp"
    if not (msp / "signcerts" / f"{cn}-cert.pem").exists():
        key = _new_key()
        cert = issue_leaf_certificate(
            cas.ca_cert,
            cas.ca_key,
            _name(cn, ous=[ou]),
            key.public_key(),
            tls=False,
            extra_extensions=extra_extensions,
        )
        _write_local_msp(msp, cas, cn, cert, key)
    tls = folder / "tls"
    prefix = "server" if tls_server else "client"
    if not (tls / f"{prefix}.crt").exists():
        key = _new_key()
        cert = issue_leaf_certificate(
            cas.tlsca_cert, cas.tlsca_key, _name(cn), key.public_key(), tls=True, sans=sans
        )
        _write_cert(tls / "ca.crt", cas.tlsca_cert)
        _write_key(tls / f"{prefix}.key", key)
        _write_cert(tls / f"{prefix}.crt", cert)


def _load_index(data_dir: Path) -> dict[str, dict[str, str]]:
    path = Path(data_dir) / "organizations" / _ORG_INDEX
    if not path.exists():
        return {}
    loaded = json.loads(path.read_text())
    if not isinstance(loaded, dict):
        raise PKIError(f"{path} is not a JSON object")
    return loaded


def _ensure_org_cas(data_dir: Path, org: OrgSpec, *, peer_org: bool) -> _OrgCAs:
    base = org_dir(data_dir, org, peer_org=peer_org)
    ca_cert, ca_key = _ensure_ca(base / "ca", f"ca.{org.domain}", org.domain)
    tlsca_cert, tlsca_key = _ensure_ca(base / "tlsca", f"tlsca.{org.domain}", org.domain)
    return _OrgCAs(org, base, ca_cert, ca_key, tlsca_cert, tlsca_key)


def generate_org(data_dir: Path, org: OrgSpec, *, peer_org: bool = True) -> None:
    """Create (or complete) the cryptogen layout of one org; existing material is kept."""
    data_dir = Path(data_dir)
    cas = _ensure_org_cas(data_dir, org, peer_org=peer_org)
    domain = org.domain
    org_msp = cas.base / "msp"
    _write_cert(org_msp / "cacerts" / f"ca.{domain}-cert.pem", cas.ca_cert)
    _write_cert(org_msp / "tlscacerts" / f"tlsca.{domain}-cert.pem", cas.tlsca_cert)
    _atomic_write(org_msp / "config.yaml", _node_ou_config(f"ca.{domain}-cert.pem"))

    node_kind, node_ou = ("peer", "peer") if peer_org else ("orderer", "orderer")
    host = f"{node_kind}0.{domain}"
    _write_node(
        cas,
        cas.base / f"{node_kind}s" / host,
        host,
        node_ou,
        tls_server=True,
        sans=[host, f"{node_kind}0", "localhost", "127.0.0.1"],
    )
    for user, ou in (("Admin", "admin"), ("User1", "client")):
        cn = f"{user}@{domain}"
        _write_node(cas, cas.base / "users" / cn, cn, ou, tls_server=False, sans=[cn])

    # A small index so add_identity() can find an org's domain from its MSP id alone.
    index = _load_index(data_dir)
    entry = {"domain": domain, "type": "peer" if peer_org else "orderer"}
    if index.get(org.msp_id) != entry:
        index[org.msp_id] = entry
        _atomic_write(
            data_dir / "organizations" / _ORG_INDEX,
            (json.dumps(index, indent=2, sort_keys=True) + "\n").encode(),
        )


def generate_network(data_dir: Path, orgs: Sequence[OrgSpec] = DEFAULT_PEER_ORGS) -> None:
    """All peer orgs plus the orderer org."""
    for org in orgs:
        generate_org(data_dir, org, peer_org=True)
    generate_org(data_dir, ORDERER_ORG, peer_org=False)


def _resolve_org(data_dir: Path, msp_id: str) -> tuple[OrgSpec, bool]:
    entry = _load_index(data_dir).get(msp_id)
    if entry is not None:
        return OrgSpec(msp_id, entry["domain"]), entry.get("type", "peer") == "peer"
    # Material written by Fabric's own cryptogen has no index: try MIP's well-known orgs.
    for org in (*DEFAULT_PEER_ORGS, ORDERER_ORG):
        for peer_org in (True, False):
            if org.msp_id == msp_id and (org_dir(data_dir, org, peer_org=peer_org) / "ca").is_dir():
                return org, peer_org
    raise UnknownOrgError(f"no generated organisation with MSP id {msp_id!r}")


def _load_org_cas(data_dir: Path, org: OrgSpec, *, peer_org: bool) -> _OrgCAs:
    """The org's existing CAs; never mints new ones (that would orphan every issued cert)."""
    base = org_dir(data_dir, org, peer_org=peer_org)
    for sub, cn in (("ca", f"ca.{org.domain}"), ("tlsca", f"tlsca.{org.domain}")):
        if not (base / sub / "priv_sk").is_file() or not (base / sub / f"{cn}-cert.pem").is_file():
            raise UnknownOrgError(f"{org.msp_id} has no {sub} key and certificate under {base}")
    return _ensure_org_cas(data_dir, org, peer_org=peer_org)


def _check_attrs(attrs: dict[str, str]) -> None:
    for key, value in attrs.items():
        if not isinstance(key, str) or not _ATTR_NAME.match(key):
            raise AttributeNameError(f"invalid attribute name {key!r}")
        if key.startswith("hf."):
            raise AttributeNameError(f"attribute {key!r} is reserved for the CA")
        if not isinstance(value, str):
            raise AttributeNameError(f"attribute {key!r} must have a string value")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
            raise AttributeNameError(f"attribute {key!r} has control characters in its value")


def identity_attrs(data_dir: Path, msp_id: str, name: str) -> dict[str, str]:
    """The Fabric CA attributes (hf.Attrs) in an existing identity's signing certificate;
    UnknownIdentityError if `name` has no identity in the org."""
    org, peer_org = _resolve_org(Path(data_dir), msp_id)
    cas = _load_org_cas(Path(data_dir), org, peer_org=peer_org)
    signcerts = cas.base / "users" / f"{name}@{org.domain}" / "msp" / "signcerts"
    found = sorted(signcerts.glob("*.pem")) if signcerts.is_dir() else []
    if not found:
        raise UnknownIdentityError(f"no identity {name!r} in {msp_id}")
    cert = x509.load_pem_x509_certificate(found[0].read_bytes())
    try:
        ext = cert.extensions.get_extension_for_oid(HF_ATTRS_OID)
    except x509.ExtensionNotFound:
        return {}
    value = ext.value
    try:
        decoded = json.loads(value.value) if isinstance(value, x509.UnrecognizedExtension) else {}
    except (ValueError, UnicodeDecodeError):
        return {}
    attrs = decoded.get("attrs") if isinstance(decoded, dict) else None
    return {str(k): str(v) for k, v in attrs.items()} if isinstance(attrs, dict) else {}


def add_identity(
    data_dir: Path,
    msp_id: str,
    name: str,
    attrs: dict[str, str] | None = None,
    ou: str = "client",
) -> Path:
    """Enrol `name` in the org like Fabric CA would (CN=name, hf.Attrs); returns its msp folder.

    The folder is `users/<name>@<domain>/` with the same layout as cryptogen's users, and a
    `connection.json` in `data_dir`, if there is one, gains the new user.
    """
    data_dir = Path(data_dir)
    if not isinstance(name, str) or not _USER_NAME.match(name):
        raise PKIError(f"invalid identity name {name!r}")
    if ou not in NODE_OUS:
        raise PKIError(f"ou must be one of {NODE_OUS}, not {ou!r}")
    attrs = dict(attrs or {})
    _check_attrs(attrs)
    org, peer_org = _resolve_org(data_dir, msp_id)
    cas = _load_org_cas(data_dir, org, peer_org=peer_org)
    folder_name = f"{name}@{org.domain}"
    folder = cas.base / "users" / folder_name
    if folder.exists():
        raise IdentityExistsError(f"identity {name!r} already exists in {msp_id}")

    all_attrs = {"hf.EnrollmentID": name, "hf.Type": ou, "hf.Affiliation": "", **attrs}
    # Build in a scratch folder and rename into place so a half-built identity is never seen.
    scratch = Path(tempfile.mkdtemp(dir=cas.base / "users", prefix=f".{folder_name}."))
    try:
        key = _new_key()
        cert = issue_leaf_certificate(
            cas.ca_cert,
            cas.ca_key,
            _fabric_ca_name(name, ou),
            key.public_key(),
            tls=False,
            extra_extensions=[hf_attrs_extension(all_attrs)],
        )
        _write_local_msp(scratch / "msp", cas, folder_name, cert, key)
        tls_key = _new_key()
        tls_cert = issue_leaf_certificate(
            cas.tlsca_cert,
            cas.tlsca_key,
            _name(folder_name),
            tls_key.public_key(),
            tls=True,
            sans=[folder_name],
        )
        _write_cert(scratch / "tls" / "ca.crt", cas.tlsca_cert)
        _write_key(scratch / "tls" / "client.key", tls_key)
        _write_cert(scratch / "tls" / "client.crt", tls_cert)
        try:
            os.rename(scratch, folder)  # fails if another process created it meanwhile
        except OSError as exc:
            raise IdentityExistsError(f"identity {name!r} already exists in {msp_id}") from exc
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)

    profile = data_dir / "connection.json"
    if profile.exists():
        _add_user_to_profile(profile, msp_id, name, folder)
    return folder / "msp"


@dataclass(frozen=True)
class Revocation:
    """The outcome of a revocation: which certificate, the CRL now listing it, and whether
    this call added it (False: it was already listed)."""

    msp_id: str
    serial_number: int
    crl: Path
    newly_revoked: bool


def _read_crl(path: Path, ca_cert: x509.Certificate) -> x509.CertificateRevocationList | None:
    if not path.is_file():
        return None
    try:
        crl = x509.load_pem_x509_crl(path.read_bytes())
    except ValueError as exc:
        raise PKIError(f"{path} is not a PEM CRL") from exc
    public_key = ca_cert.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not crl.is_signature_valid(
        public_key
    ):
        # Extending it would re-sign entries this CA never revoked (or drop the real ones).
        raise PKIError(f"{path} is not signed by the org's CA")
    return crl


def revoke_certificate(data_dir: Path, msp_id: str, certificate: x509.Certificate) -> Revocation:
    """Add `certificate` to its org CA's CRL (`msp/crls/crl.pem`), as Fabric CA's
    `revoke` + `gencrl` do: a new CRL listing every earlier entry plus this serial, with the
    CA's key identifier (AKI) and the next CRL number, signed by the org's CA key.

    Idempotent: an already listed certificate leaves the CRL as it is.
    """
    data_dir = Path(data_dir)
    org, peer_org = _resolve_org(data_dir, msp_id)
    cas = _load_org_cas(data_dir, org, peer_org=peer_org)
    try:
        certificate.verify_directly_issued_by(cas.ca_cert)
    except (ValueError, TypeError, InvalidSignature) as exc:
        # A CRL only revokes its own CA's certificates: listing a foreign serial would do nothing.
        raise PKIError(f"the certificate was not issued by the CA of {msp_id}") from exc
    serial = certificate.serial_number
    path = crl_path(data_dir, org, peer_org=peer_org)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.with_name("." + path.name + ".lock")
    # Read-modify-write under an advisory lock so two revocations do not drop each other.
    with open(lock_path, "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            old = _read_crl(path, cas.ca_cert)
            entries = list(old) if old is not None else []
            if any(entry.serial_number == serial for entry in entries):
                return Revocation(msp_id, serial, path, newly_revoked=False)
            number = 1
            if old is not None:
                try:
                    last = old.extensions.get_extension_for_class(x509.CRLNumber).value
                    number = last.crl_number + 1
                except x509.ExtensionNotFound:
                    number = len(entries) + 1
            now = _now()
            builder = (
                x509.CertificateRevocationListBuilder()
                .issuer_name(cas.ca_cert.subject)
                .last_update(now)
                .next_update(now + _CRL_VALIDITY)
                .add_extension(
                    # Fabric's MSP matches a CRL to a CA by this AKI == the CA's SKI.
                    x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                        cas.ca_cert.extensions.get_extension_for_class(
                            x509.SubjectKeyIdentifier
                        ).value
                    ),
                    critical=False,
                )
                .add_extension(x509.CRLNumber(number), critical=False)
            )
            for entry in entries:
                builder = builder.add_revoked_certificate(entry)
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(now)
                .build()
            )
            crl = builder.sign(cas.ca_key, hashes.SHA256())
            _atomic_write(path, crl.public_bytes(serialization.Encoding.PEM))
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
    return Revocation(msp_id, serial, path, newly_revoked=True)


def revoke_identity(data_dir: Path, msp_id: str, name: str) -> Revocation:
    """Revoke the enrolment certificate of `name` in the org (a user added by `add_identity`,
    or cryptogen's `User1` / `Admin`): its serial goes on the org CA's CRL."""
    data_dir = Path(data_dir)
    if not isinstance(name, str) or not _USER_NAME.match(name):
        raise PKIError(f"invalid identity name {name!r}")
    org, peer_org = _resolve_org(data_dir, msp_id)
    folder_name = f"{name}@{org.domain}"
    cert_file = (
        org_dir(data_dir, org, peer_org=peer_org) / "users" / folder_name / "msp" / "signcerts"
        / f"{folder_name}-cert.pem"
    )
    if not cert_file.is_file():
        raise UnknownIdentityError(f"no identity {name!r} in {msp_id}")
    return revoke_certificate(data_dir, msp_id, load_certificate(cert_file))


def _fabric_ca_name(name: str, ou: str) -> x509.Name:
    # Fabric CA's subject: the NodeOU type as OU and the enrollment ID as CN.
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, _COUNTRY),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, _PROVINCE),
            x509.NameAttribute(NameOID.LOCALITY_NAME, _LOCALITY),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )


def issue_tls_server_cert(
    data_dir: Path, org: OrgSpec, hosts: list[str], out_dir: Path
) -> tuple[Path, Path]:
    """A TLS server certificate from the org's TLS CA with every host as a SAN.

    Devnet serves all orgs from one endpoint, so its certificate names 127.0.0.1, localhost and
    every peer host. Returns (cert path, key path) in `out_dir`.
    """
    if not hosts:
        raise PKIError("a TLS server certificate needs at least one host name or IP")
    data_dir = Path(data_dir)
    peer_org = not org_dir(data_dir, org, peer_org=False).is_dir()
    cas = _load_org_cas(data_dir, org, peer_org=peer_org)
    key = _new_key()
    # CN must not be an IP for some TLS stacks; use the first DNS-looking host when there is one.
    dns_hosts = [h for h in hosts if not _is_ip(h)]
    cn = dns_hosts[0] if dns_hosts else hosts[0]
    cert = issue_leaf_certificate(
        cas.tlsca_cert, cas.tlsca_key, _name(cn), key.public_key(), tls=True, sans=hosts
    )
    out_dir = Path(out_dir)
    cert_path, key_path = out_dir / "server.crt", out_dir / "server.key"
    _write_key(key_path, key)
    _write_cert(cert_path, cert)
    return cert_path, key_path


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- connection.json


def _user_entry(data_dir: Path, user_folder: Path) -> dict[str, str]:
    cn = user_folder.name
    msp = user_folder / "msp"

    def rel(p: Path) -> str:
        return os.path.relpath(p, data_dir)

    return {
        "certPath": rel(msp / "signcerts" / f"{cn}-cert.pem"),
        "keyPath": rel(msp / "keystore" / "priv_sk"),
        "tlsCertPath": rel(user_folder / "tls" / "client.crt"),
        "tlsKeyPath": rel(user_folder / "tls" / "client.key"),
    }


def _users_of(data_dir: Path, org: OrgSpec) -> dict[str, dict[str, str]]:
    users_dir = org_dir(data_dir, org) / "users"
    users: dict[str, dict[str, str]] = {}
    if not users_dir.is_dir():
        return users
    # User1 and Admin first (what clients reach for), then added identities by name.
    folders = [p for p in users_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
    order = {"User1": 0, "Admin": 1}
    for folder in sorted(folders, key=lambda p: (order.get(p.name.split("@")[0], 2), p.name)):
        users[folder.name.split("@")[0]] = _user_entry(data_dir, folder)
    return users


def write_connection_profile(
    data_dir: Path,
    *,
    endpoint: str,
    channel: str,
    chaincode: str,
    orgs: Sequence[OrgSpec] = DEFAULT_PEER_ORGS,
    network: str = "devnet",
    tls_root_cert: Path,
    server_name: str,
) -> Path:
    """Write DIR/connection.json (docs/ledger.md) with paths relative to DIR."""
    data_dir = Path(data_dir)
    tls_rel = os.path.relpath(Path(tls_root_cert).resolve(), data_dir.resolve())
    profile = {
        "network": network,
        "channel": channel,
        "chaincode": chaincode,
        "organizations": {
            org.msp_id: {
                "mspId": org.msp_id,
                "peerEndpoint": endpoint,
                "tlsRootCertPath": tls_rel,
                "serverNameOverride": server_name,
                # The org's MSP root CA: other orgs' gateways check its service identity
                # against it (inter-gateway custody requests, docs/gateway.md).
                "caCertPath": os.path.relpath(ca_cert_path(data_dir, org).resolve(),
                                              data_dir.resolve()),
                "users": _users_of(data_dir, org),
            }
            for org in orgs
        },
    }
    path = data_dir / "connection.json"
    _atomic_write(path, (json.dumps(profile, indent=2) + "\n").encode())
    return path


def _add_user_to_profile(profile: Path, msp_id: str, name: str, folder: Path) -> None:
    # Read-modify-write under an advisory lock so concurrent enrolments do not lose users.
    lock_path = profile.with_name(profile.name + ".lock")
    with open(lock_path, "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            data = json.loads(profile.read_text())
            org_entry = data.get("organizations", {}).get(msp_id)
            if org_entry is None:
                return  # the org is not served by this profile (e.g. the orderer org)
            org_entry.setdefault("users", {})[name] = _user_entry(profile.parent, folder)
            _atomic_write(profile, (json.dumps(data, indent=2) + "\n").encode())
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
