"""Membership service: validate creators and signers as Fabric's X.509 MSP does.

A serialized identity (`msp.SerializedIdentity`: MSP id + PEM certificate) is valid when its
MSP is known, its certificate is a non-CA certificate directly issued by one of that MSP's root
CAs, it is within its validity period and, with NodeOUs enabled, it carries exactly one of the
client/peer/admin/orderer OUs, and its serial is on no CRL of its issuing CA (the MSP folder's
`crls/`, which devnet re-reads while running; msp/mspimplvalidate.go, validateCertAgainstChain).
Role principals are then matched the way Fabric 2.x's MSP does with NodeOUs (msp/mspimpl.go,
satisfiesPrincipalInternalV143).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import json
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID
from fabric_protos.msp import identities_pb2, msp_principal_pb2

from chaincode.protocol.ecdsa import is_low_s

# Kept once for the whole project: the identity string is the chaincode's cid.GetID (the shim's
# Go-exact DN formatter), and Fabric's low-S rule is the Gateway client's public signing API.
from chaincode.protocol.fabric_identity import go_distinguished_name
from network.devnet.orgs import DEFAULT_PEER_ORGS, ORDERER_ORG, OrgSpec
from network.devnet.pki import HF_ATTRS_OID, NODE_OUS, curve_order, org_dir

__all__ = [
    "CRL_RECHECK_S",
    "REVOKED",
    "IdentityError",
    "MSPConfig",
    "MSPManager",
    "SignatureError",
    "ValidatedIdentity",
    "load_crls",
    "satisfies_principal",
    "verify_signature",
]

log = logging.getLogger(__name__)

_N = curve_order()

# protobuf's generated classes are built at import time, so mypy cannot see them.
_SerializedIdentity: Any = identities_pb2.SerializedIdentity  # type: ignore[attr-defined]
_MSPPrincipal: Any = msp_principal_pb2.MSPPrincipal  # type: ignore[attr-defined]
_MSPRole: Any = msp_principal_pb2.MSPRole  # type: ignore[attr-defined]
_OrganizationUnit: Any = msp_principal_pb2.OrganizationUnit  # type: ignore[attr-defined]
# Imported by name because the project has no protobuf type stubs.
DecodeError: type[Exception] = importlib.import_module("google.protobuf.message").DecodeError


class IdentityError(ValueError):
    """A serialized identity that this network's MSPs do not accept."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SignatureError(ValueError):
    """A signature that does not verify under the identity's key (or is high-S / malformed)."""


# --------------------------------------------------------------------------- identities


@dataclass(frozen=True, eq=False)
class ValidatedIdentity:
    """An identity that passed MSP validation (immutable; shared between callers via the cache)."""

    msp_id: str
    certificate: x509.Certificate = field(repr=False)
    cert_pem: bytes = field(repr=False)
    ous: frozenset[str]
    role: str  # client | peer | admin | orderer, or member when the MSP has no NodeOUs
    attrs: Mapping[str, str]  # read-only: instances are shared through the cache
    serialized: bytes = field(default=b"", repr=False)
    _chain_id: bytes = field(default=b"", repr=False)

    @property
    def mspid(self) -> str:
        return self.msp_id

    @cached_property
    def cert_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @cached_property
    def id_string(self) -> str:
        """`x509::<subject DN>::<issuer DN>`, the un-base64'd form of cid.GetID()."""
        subject = go_distinguished_name(self.certificate.subject)
        return f"x509::{subject}::{go_distinguished_name(self.certificate.issuer)}"

    @cached_property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        key = self.certificate.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise SignatureError("identity key is not ECDSA")
        return key

    @cached_property
    def validity(self) -> tuple[dt.datetime, dt.datetime]:
        """(not before, not after), read once: a cached identity is re-checked on every use."""
        return self.certificate.not_valid_before_utc, self.certificate.not_valid_after_utc

    @property
    def dedup_key(self) -> tuple[str, bytes]:
        """What makes two identities the same signer (MSP id + certificate)."""
        return (self.msp_id, self.cert_der)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ValidatedIdentity):
            return NotImplemented
        return self.dedup_key == other.dedup_key

    def __hash__(self) -> int:
        return hash(self.dedup_key)


# The algorithm object is immutable: one for every verification.
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


def verify_signature(identity: ValidatedIdentity, message: bytes, signature: bytes) -> None:
    """Verify a DER ECDSA-SHA256 signature; refuse malformed and high-S ones like Fabric's BCCSP."""
    try:
        r, s = decode_dss_signature(signature)
    except (ValueError, TypeError) as exc:
        raise SignatureError("malformed signature") from exc
    if not (0 < r < _N and 0 < s < _N):
        raise SignatureError("signature values out of range")
    if not is_low_s(signature, ec.SECP256R1()):
        raise SignatureError("invalid S: must be smaller than half the order (low-S)")
    try:
        identity.public_key.verify(signature, message, _ECDSA_SHA256)
    except InvalidSignature as exc:
        raise SignatureError("signature does not verify") from exc


_ROLE_NAMES = {0: "member", 1: "admin", 2: "client", 3: "peer", 4: "orderer"}


def satisfies_principal(identity: ValidatedIdentity, principal: Any) -> bool:
    """Whether an already validated identity satisfies an `msp_principal_pb2.MSPPrincipal`.

    ROLE principals need the same MSP id; MEMBER is any valid identity of that MSP and
    ADMIN/CLIENT/PEER/ORDERER need the matching NodeOU. IDENTITY principals match one certificate;
    ORGANIZATION_UNIT principals an OU certified by the identity's chain.
    """
    kind = principal.principal_classification
    try:
        if kind == _MSPPrincipal.ROLE:
            role = _MSPRole.FromString(principal.principal)
            if role.msp_identifier != identity.msp_id:
                return False
            wanted = _ROLE_NAMES.get(role.role)
            if wanted is None:
                return False
            return wanted == "member" or identity.role == wanted
        if kind == _MSPPrincipal.IDENTITY:
            other = _SerializedIdentity.FromString(principal.principal)
            if other.mspid != identity.msp_id:
                return False
            cert = x509.load_pem_x509_certificate(other.id_bytes)
            return bool(cert.public_bytes(serialization.Encoding.DER) == identity.cert_der)
        if kind == _MSPPrincipal.ORGANIZATION_UNIT:
            unit = _OrganizationUnit.FromString(principal.principal)
            if unit.msp_identifier != identity.msp_id:
                return False
            if unit.certifiers_identifier and unit.certifiers_identifier != identity._chain_id:
                return False
            return unit.organizational_unit_identifier in identity.ous
    except (DecodeError, ValueError):
        return False
    return False  # ANONYMITY / COMBINED are idemix-only; devnet has no idemix MSPs


# --------------------------------------------------------------------------- MSP config


# Fabric's texts (msp/mspimplvalidate.go), so a refusal reads the same as a real peer's.
REVOKED = (
    "could not validate identity against certification chain: The certificate has been revoked"
)
_CRL_WITHOUT_AKI = (
    "could not validate identity against certification chain: could not obtain Authority Key "
    "Identifier for crl: authorityKeyIdentifier not found in certificate"
)
# How often (at most) a running devnet looks at the MSP folders' crls/ for a new CRL.
CRL_RECHECK_S = 0.1


def load_crls(crl_dir: Path) -> tuple[x509.CertificateRevocationList, ...]:
    """Every CRL in an MSP folder's `crls/` (PEM, one or more per file; every file is read, as
    Fabric's getPemMaterialFromDir does). An unparsable one is an error, as in Fabric's
    setupCRLs ("could not parse RevocationList")."""
    if not crl_dir.is_dir():
        return ()
    crls: list[x509.CertificateRevocationList] = []
    for path in sorted(p for p in crl_dir.iterdir() if p.is_file() and not p.name.startswith(".")):
        blocks = list(_PEM_BLOCK.finditer(path.read_bytes()))
        if not blocks:
            raise IdentityError(f"could not parse RevocationList: {path} holds no PEM block")
        for block in blocks:
            try:
                crls.append(x509.load_pem_x509_crl(block.group(0)))
            except ValueError as exc:
                raise IdentityError(f"could not parse RevocationList: {path}: {exc}") from exc
    return tuple(crls)


def _revoked_by_root(
    roots: tuple[x509.Certificate, ...], crls: tuple[x509.CertificateRevocationList, ...]
) -> tuple[dict[bytes, frozenset[int]], bool]:
    """Per root (DER), the serials that a CRL *it signed* and naming it by AKI lists; and
    whether some CRL has no AKI (Fabric then fails every validation in that MSP).

    Fabric walks the CRLs on each validation and checks a matching CRL's signature against the
    issuing CA, skipping it if it does not verify; this computes the same answer once per CRL
    set, so a validation is one set lookup.
    """
    missing_aki = False
    revoked: dict[bytes, set[int]] = {}
    for crl in crls:
        try:
            aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        except x509.ExtensionNotFound:
            missing_aki = True
            continue
        for root in roots:
            try:
                ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            except x509.ExtensionNotFound:
                continue
            if aki.key_identifier != ski.digest:
                continue
            public_key = root.public_key()
            if not isinstance(public_key, ec.EllipticCurvePublicKey) or not (
                crl.is_signature_valid(public_key)
            ):
                log.warning("a CRL naming CA %s is not signed by it; ignored",
                            root.subject.rfc4514_string())
                continue
            der = root.public_bytes(serialization.Encoding.DER)
            revoked.setdefault(der, set()).update(entry.serial_number for entry in crl)
    return {k: frozenset(v) for k, v in revoked.items()}, missing_aki


@dataclass(frozen=True)
class MSPConfig:
    """One org's verifying MSP: root CAs, the NodeOU identifiers from config.yaml and the CRLs
    (as a channel MSP definition's root_certs, fabric_node_ous and revocation_list)."""

    msp_id: str
    root_certs: tuple[x509.Certificate, ...]
    node_ous_enabled: bool
    # role -> (OU value, certifier root cert DER or None when any root may certify it)
    node_ou_ids: Mapping[str, tuple[str, bytes | None]]
    crls: tuple[x509.CertificateRevocationList, ...] = ()

    @cached_property
    def _revocations(self) -> tuple[dict[bytes, frozenset[int]], bool]:
        return _revoked_by_root(self.root_certs, self.crls)

    def check_not_revoked(self, cert: x509.Certificate, root_der: bytes) -> None:
        """Refuse `cert` (issued by the root `root_der`) if one of its CA's CRLs lists it."""
        if not self.crls:
            return
        revoked, missing_aki = self._revocations
        if cert.serial_number in revoked.get(root_der, ()):
            raise IdentityError(REVOKED)
        if missing_aki:
            raise IdentityError(_CRL_WITHOUT_AKI)

    def with_crls(self, crls: tuple[x509.CertificateRevocationList, ...]) -> MSPConfig:
        return replace(self, crls=crls)

    @classmethod
    def from_msp_dir(cls, msp_id: str, msp_dir: Path) -> MSPConfig:
        msp_dir = Path(msp_dir)
        roots = tuple(
            x509.load_pem_x509_certificate(p.read_bytes())
            for p in sorted((msp_dir / "cacerts").glob("*.pem"))
        )
        if not roots:
            raise IdentityError(f"MSP folder {msp_dir} has no cacerts")
        enabled = False
        ou_ids: dict[str, tuple[str, bytes | None]] = {}
        config_file = msp_dir / "config.yaml"
        if config_file.exists():
            config = yaml.safe_load(config_file.read_text()) or {}
            node_ous = config.get("NodeOUs") or {}
            enabled = bool(node_ous.get("Enable"))
            for role in NODE_OUS:
                entry = node_ous.get(f"{role.capitalize()}OUIdentifier")
                if not entry:
                    continue
                certifier: bytes | None = None
                if entry.get("Certificate"):
                    cert = x509.load_pem_x509_certificate(
                        (msp_dir / entry["Certificate"]).read_bytes()
                    )
                    certifier = cert.public_bytes(serialization.Encoding.DER)
                ou_ids[role] = (str(entry["OrganizationalUnitIdentifier"]), certifier)
        return cls(msp_id, roots, enabled, ou_ids, load_crls(msp_dir / "crls"))


_ECDSA_SIGNATURES = frozenset(
    {
        SignatureAlgorithmOID.ECDSA_WITH_SHA1,
        SignatureAlgorithmOID.ECDSA_WITH_SHA224,
        SignatureAlgorithmOID.ECDSA_WITH_SHA256,
        SignatureAlgorithmOID.ECDSA_WITH_SHA384,
        SignatureAlgorithmOID.ECDSA_WITH_SHA512,
    }
)
_PEM_BLOCK = re.compile(
    rb"-----BEGIN ([A-Z0-9 ]*)-----\r?\n(.*?)-----END \1-----[ \t\r]*\n?", re.DOTALL
)


def _well_formed_certificate(id_bytes: bytes) -> x509.Certificate:
    """Parse the PEM certificate of an identity with Fabric's well-formedness rules.

    As msp.IsWellFormed: one PEM block of type CERTIFICATE (or no type) with nothing after its
    END line, and an ECDSA certificate signature in canonical DER -- otherwise one certificate
    could be re-encoded into several serializations. (Fabric tolerates a high-S *certificate*
    signature, so this does not demand low-S here; devnet's CAs emit low-S anyway.)
    """
    match = _PEM_BLOCK.search(id_bytes)
    if match is None:
        raise IdentityError("identity bytes are not a PEM certificate")
    if match.group(1) not in (b"CERTIFICATE", b""):
        raise IdentityError("identity PEM block is not a CERTIFICATE")
    if id_bytes[match.end() :]:
        raise IdentityError("identity has trailing bytes after its certificate")
    try:
        cert = x509.load_pem_x509_certificate(match.group(0))
    except ValueError as exc:
        raise IdentityError("identity bytes are not a valid X.509 certificate") from exc
    if cert.signature_algorithm_oid in _ECDSA_SIGNATURES:
        try:
            r, s = decode_dss_signature(cert.signature)
        except ValueError as exc:
            raise IdentityError("certificate signature is not valid DER") from exc
        if encode_dss_signature(r, s) != cert.signature:
            raise IdentityError("certificate signature is not in canonical DER form")
    return cert


def _parse_attrs(cert: x509.Certificate) -> dict[str, str]:
    try:
        ext = cert.extensions.get_extension_for_oid(HF_ATTRS_OID)
    except x509.ExtensionNotFound:
        return {}
    value = ext.value
    if not isinstance(value, x509.UnrecognizedExtension):
        return {}
    try:
        decoded = json.loads(value.value)
    except (ValueError, UnicodeDecodeError):
        # Fabric's MSP ignores the extension; only cid.GetAttributeValue would fail on it.
        return {}
    attrs = decoded.get("attrs") if isinstance(decoded, dict) else None
    if not isinstance(attrs, dict):
        return {}
    return {str(k): str(v) for k, v in attrs.items() if isinstance(v, str)}


def _dir_stamp(folder: Path) -> tuple[tuple[str, int, int, int], ...]:
    """What changes when a CRL file is added, removed or rewritten (an atomic rename gives a new
    inode; an in-place write a new mtime or size)."""
    try:
        entries = [e for e in os.scandir(folder) if e.is_file() and not e.name.startswith(".")]
    except OSError:
        return ()
    stamps = []
    for entry in entries:
        st = entry.stat()
        stamps.append((entry.name, st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(sorted(stamps))


class MSPManager:
    """The verifying MSPs of a channel, with a cache of validated identities.

    The cache is keyed by the serialized identity bytes; a hit still re-checks the validity
    period, so an identity that expires while cached is refused from then on.

    CRLs: a manager read from MSP folders (`from_data_dir`) looks at each folder's `crls/` at
    most every `crl_recheck_s` seconds, on the next validation after that; a changed set of
    CRL files is re-read and the cache emptied, so a revocation takes effect on a running
    devnet within that time (Fabric applies the channel config update carrying the CRL).
    """

    def __init__(
        self,
        msps: Iterable[MSPConfig],
        *,
        cache_size: int = 4096,
        clock: Callable[[], dt.datetime] | None = None,
        crl_dirs: Mapping[str, Path] | None = None,
        crl_recheck_s: float = CRL_RECHECK_S,
    ) -> None:
        self._msps = {m.msp_id: m for m in msps}
        self._cache: OrderedDict[bytes, ValidatedIdentity] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._crl_dirs = dict(crl_dirs or {})
        self._crl_recheck_s = crl_recheck_s
        self._crl_lock = threading.Lock()
        self._crl_stamps = {m: _dir_stamp(d) for m, d in self._crl_dirs.items()}
        self._next_crl_check = time.monotonic() + crl_recheck_s
        # Bumped whenever the CRLs change: a validation that started under the old CRLs must
        # not put its result into the emptied cache.
        self._generation = 0

    @classmethod
    def from_data_dir(
        cls,
        data_dir: Path,
        orgs: Iterable[OrgSpec] = (*DEFAULT_PEER_ORGS, ORDERER_ORG),
        **kwargs: Any,
    ) -> MSPManager:
        """Read each org's `msp/` (cacerts, config.yaml, crls) from the cryptogen layout."""
        configs = []
        crl_dirs: dict[str, Path] = {}
        for org in orgs:
            for peer_org in (True, False):
                msp_dir = org_dir(Path(data_dir), org, peer_org=peer_org) / "msp"
                if msp_dir.is_dir():
                    configs.append(MSPConfig.from_msp_dir(org.msp_id, msp_dir))
                    crl_dirs[org.msp_id] = msp_dir / "crls"
                    break
            else:
                raise IdentityError(f"no MSP folder for {org.msp_id} under {data_dir}")
        return cls(configs, crl_dirs=crl_dirs, **kwargs)

    @property
    def msp_ids(self) -> frozenset[str]:
        return frozenset(self._msps)

    def validate(self, serialized_identity: bytes) -> ValidatedIdentity:
        """Validate a SerializedIdentity; raises IdentityError with the reason when refused."""
        if self._crl_dirs and time.monotonic() >= self._next_crl_check:
            self.refresh_crls()
        key = bytes(serialized_identity)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
            generation = self._generation
        if cached is not None:
            not_before, not_after = cached.validity
            self._check_period(not_before, not_after)
            return cached
        identity = self._validate_uncached(key)
        with self._lock:
            if generation == self._generation:
                self._cache[key] = identity
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return identity

    def refresh_crls(self) -> bool:
        """Re-read the `crls/` folders whose files changed; True if some MSP's CRLs did.

        A folder whose new content does not parse keeps the CRLs it had (as Fabric refuses a
        config update with a bad revocation_list) and is logged once per change.
        """
        with self._crl_lock:
            self._next_crl_check = time.monotonic() + self._crl_recheck_s
            changed: dict[str, MSPConfig] = {}
            for msp_id, crl_dir in self._crl_dirs.items():
                stamp = _dir_stamp(crl_dir)
                if stamp == self._crl_stamps.get(msp_id):
                    continue
                self._crl_stamps[msp_id] = stamp
                try:
                    crls = load_crls(crl_dir)
                except (OSError, IdentityError) as exc:
                    log.error("CRLs of %s not updated (kept the previous ones): %s", msp_id, exc)
                    continue
                changed[msp_id] = self._msps[msp_id].with_crls(crls)
            if not changed:
                return False
            with self._lock:
                self._msps = {**self._msps, **changed}
                self._cache.clear()
                self._generation += 1
            log.info("CRLs reloaded for %s", ", ".join(sorted(changed)))
            return True

    def _check_time(self, cert: x509.Certificate) -> None:
        self._check_period(cert.not_valid_before_utc, cert.not_valid_after_utc)

    def _check_period(self, not_before: dt.datetime, not_after: dt.datetime) -> None:
        now = self._clock()
        if now < not_before:
            raise IdentityError("certificate is not yet valid")
        if now > not_after:
            raise IdentityError("certificate has expired")

    def _validate_uncached(self, raw: bytes) -> ValidatedIdentity:
        try:
            sid = _SerializedIdentity.FromString(raw)
        except DecodeError as exc:
            raise IdentityError("cannot parse serialized identity") from exc
        msp_id: str = sid.mspid
        if not msp_id or not sid.id_bytes:
            raise IdentityError("serialized identity has no MSP id or certificate")
        msp = self._msps.get(msp_id)
        if msp is None:
            raise IdentityError(f"unknown MSP {msp_id!r}")
        cert = _well_formed_certificate(bytes(sid.id_bytes))
        try:
            is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        except ValueError as exc:  # malformed extensions
            raise IdentityError("certificate has malformed extensions") from exc
        if is_ca:
            raise IdentityError("a CA certificate cannot be used as an identity")
        root = self._issuer_of(msp, cert)
        self._check_time(cert)
        root_der = root.public_bytes(serialization.Encoding.DER)
        msp.check_not_revoked(cert, root_der)
        ous = frozenset(
            str(a.value)
            for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
        )
        role = self._node_role(msp, ous, root_der)
        return ValidatedIdentity(
            msp_id=msp_id,
            certificate=cert,
            cert_pem=bytes(sid.id_bytes),
            ous=ous,
            role=role,
            attrs=MappingProxyType(_parse_attrs(cert)),
            serialized=raw,
            # Fabric's certifiers identifier: SHA-256 over the chain above the leaf.
            _chain_id=hashlib.sha256(root_der).digest(),
        )

    @staticmethod
    def _issuer_of(msp: MSPConfig, cert: x509.Certificate) -> x509.Certificate:
        for root in msp.root_certs:
            if root.subject != cert.issuer:
                continue
            try:
                cert.verify_directly_issued_by(root)
            except (ValueError, TypeError, InvalidSignature):
                continue
            return root
        raise IdentityError(f"certificate is not issued by a CA of {msp.msp_id}")

    @staticmethod
    def _node_role(msp: MSPConfig, ous: frozenset[str], root_der: bytes) -> str:
        if not msp.node_ous_enabled:
            return "member"
        roles = [
            role
            for role, (ou, certifier) in msp.node_ou_ids.items()
            if ou in ous and (certifier is None or certifier == root_der)
        ]
        # Fabric (validateIdentityOUsV143): exactly one of client/peer/admin/orderer.
        if len(roles) != 1:
            raise IdentityError(
                "identity must carry exactly one of the client, peer, admin or orderer OUs"
            )
        return roles[0]
