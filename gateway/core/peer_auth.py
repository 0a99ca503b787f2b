"""Inter-gateway request signatures: one org's gateway speaking to another's custody API.

A custody request (gateway/services/custody.py) from org O's gateway to org E's is signed by
O's own Fabric service identity (`mip-gateway` of O: X.509, ECDSA P-256, the key the
connection profile names for O's service user) over

    DOMAIN || canonical_json({method, path, body_sha256, timestamp, nonce, caller, target})

and carried in the `X-MIP-Peer-*` headers with the certificate. E accepts it when:

- the certificate was issued by the root CA of the org it claims (`caCertPath` of that org in
  E's connection profile: the MSP's root, what the channel's MSP definition holds), is not on
  that org's CRL (`crlPath`, when the file exists; a CRL not signed by that root refuses
  every request of the org), is within its validity period and, once the signature verifies
  under it, carries `mip.role=gateway` (Fabric CA's `hf.Attrs` extension): no other org's
  identity passes (401 `peer_unauthenticated`), nor a staff member's identity of the org
  (403 `peer_not_gateway`);
- the caller is a member org other than E itself, and the target named is E (a request made
  for one org's gateway is worth nothing at another's);
- the timestamp lies within `CLOCK_WINDOW_S` of E's own clock (the caller's clock decides
  nothing: outside the window it is refused, inside it the nonce decides);
- the signature verifies under the certificate's key over exactly the method, path and body
  received;
- the nonce was not seen before from that org (`custody.py` records it in E's database for
  longer than the window: a replay inside the window finds it, one outside is too old).

The signature authenticates and binds the request; it does not hide it. Confidentiality (the
live embedding and the password travel in the body) is TLS's: gateways reach each other over
https (`mip serve --tls-*`; the custody client refuses plain http in production).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chaincode.protocol.canonical import canonical_json
from chaincode.protocol.orgs import MEMBER_ORGS

from .errors import ApiError

DOMAIN = b"MIP-CUSTODY-REQUEST-V1\n"
ORG_HEADER = "X-MIP-Peer-Org"
CERT_HEADER = "X-MIP-Peer-Cert"
TIME_HEADER = "X-MIP-Peer-Time"
NONCE_HEADER = "X-MIP-Peer-Nonce"
SIGNATURE_HEADER = "X-MIP-Peer-Signature"
# How far the caller's timestamp may be from the receiver's clock, either way.
CLOCK_WINDOW_S = 60.0
# Fabric CA writes certificate attributes (hf.Attrs) as JSON in this extension.
HF_ATTRS_OID = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")
GATEWAY_ROLE = "gateway"
MAX_CERT_CHARS = 8192


class PeerUnauthenticated(ApiError):
    """The request is not one a member org's gateway signed for this gateway, now."""

    status, code = 401, "peer_unauthenticated"


class PeerNotGateway(ApiError):
    """A member org's identity signed the request, but not the org's gateway identity."""

    status, code = 403, "peer_not_gateway"


@dataclass(frozen=True)
class VerifiedPeer:
    org: str
    nonce: str
    timestamp: float


def signing_payload(method: str, path: str, body: bytes, timestamp: int, nonce: str,
                    caller: str, target: str) -> bytes:
    return DOMAIN + canonical_json({
        "method": method.upper(), "path": path, "body_sha256": hashlib.sha256(body).hexdigest(),
        "timestamp": timestamp, "nonce": nonce, "caller": caller, "target": target})


class PeerSigner:
    """Signs custody requests as this gateway's org (its service identity's key)."""

    def __init__(self, org: str, cert_path: Path, key_path: Path) -> None:
        self.org = org
        self._cert_pem = cert_path.read_bytes()
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the service identity's key is not an ECDSA key")
        self._key = key

    @property
    def certificate_pem(self) -> bytes:
        return self._cert_pem

    def sign(self, payload: bytes) -> bytes:
        """ECDSA (P-256, SHA-256) over `payload` with the service identity's key: what the
        private screening's messages carry (their own domain-separated payloads)."""
        return self._key.sign(payload, ec.ECDSA(hashes.SHA256()))

    def headers(self, method: str, path: str, body: bytes, target: str,
                *, timestamp: int | None = None, nonce: str | None = None) -> dict[str, str]:
        timestamp = int(time.time()) if timestamp is None else timestamp
        nonce = secrets.token_hex(16) if nonce is None else nonce
        payload = signing_payload(method, path, body, timestamp, nonce, self.org, target)
        signature = self._key.sign(payload, ec.ECDSA(hashes.SHA256()))
        return {ORG_HEADER: self.org,
                CERT_HEADER: base64.b64encode(self._cert_pem).decode(),
                TIME_HEADER: str(timestamp), NONCE_HEADER: nonce,
                SIGNATURE_HEADER: base64.b64encode(signature).decode()}


def certificate_role(cert: x509.Certificate) -> str | None:
    """The certificate's `mip.role` attribute (hf.Attrs), None without one."""
    try:
        ext = cert.extensions.get_extension_for_oid(HF_ATTRS_OID).value
    except x509.ExtensionNotFound:
        return None
    if not isinstance(ext, x509.UnrecognizedExtension):
        return None
    try:
        attrs = json.loads(ext.value).get("attrs", {})
    except (ValueError, AttributeError):
        return None
    role = attrs.get("mip.role") if isinstance(attrs, dict) else None
    return role if isinstance(role, str) else None


def verify_peer(headers: Mapping[str, str], method: str, path: str, body: bytes, *,
                own_org: str, ca_roots: Mapping[str, x509.Certificate],
                crl_of: Callable[[str], x509.CertificateRevocationList | None] | None = None,
                now: float | None = None) -> VerifiedPeer:
    """Check a custody request's signature, certificate and freshness (not its nonce's
    novelty: the caller records that). Raises PeerUnauthenticated (or PeerNotGateway for a
    well-signed request of an org's other identity), saying which check failed (nothing in
    it is secret)."""
    now = time.time() if now is None else now
    org = headers.get(ORG_HEADER, "")
    cert_b64, stamp = headers.get(CERT_HEADER, ""), headers.get(TIME_HEADER, "")
    nonce, sig_b64 = headers.get(NONCE_HEADER, ""), headers.get(SIGNATURE_HEADER, "")
    if not (org and cert_b64 and stamp and nonce and sig_b64):
        raise PeerUnauthenticated("a custody request must be signed by a member org's gateway")
    if org not in MEMBER_ORGS:
        raise PeerUnauthenticated("the caller is not a member org")
    if org == own_org:
        raise PeerUnauthenticated("a gateway does not send custody requests to itself")
    if not (16 <= len(nonce) <= 64) or not nonce.isalnum():
        raise PeerUnauthenticated("malformed nonce")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise PeerUnauthenticated("malformed timestamp") from None
    if abs(now - timestamp) > CLOCK_WINDOW_S:
        raise PeerUnauthenticated("the request's time is outside this gateway's window")
    if len(cert_b64) > MAX_CERT_CHARS:
        raise PeerUnauthenticated("certificate too long")
    try:
        cert = x509.load_pem_x509_certificate(base64.b64decode(cert_b64, validate=True))
        signature = base64.b64decode(sig_b64, validate=True)
    except (binascii.Error, ValueError):
        raise PeerUnauthenticated("malformed certificate or signature") from None
    key = check_certificate(cert, org, ca_roots=ca_roots, crl_of=crl_of, now=now)
    payload = signing_payload(method, path, body, timestamp, nonce, org, own_org)
    try:
        key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise PeerUnauthenticated("the signature does not verify") from None
    require_gateway_role(cert, org)
    return VerifiedPeer(org, nonce, float(timestamp))


def require_gateway_role(cert: x509.Certificate, org: str) -> None:
    """Checked last, once a signature verified under ``cert``: by then the message is known
    to come from this identity of `org`, which may simply not be its gateway (a staff
    member's certificate, say)."""
    if certificate_role(cert) != GATEWAY_ROLE:
        raise PeerNotGateway(f"the certificate is one of {org}'s identities, not its gateway's")


def check_certificate(cert: x509.Certificate, org: str, *,
                      ca_roots: Mapping[str, x509.Certificate],
                      crl_of: Callable[[str], x509.CertificateRevocationList | None] | None
                      = None, now: float | None = None) -> ec.EllipticCurvePublicKey:
    """The certificate's key, once it is known to be one of `org`'s identities now: issued by
    `org`'s root CA, not on `org`'s CRL, within its validity period, an ECDSA key. (Its
    `mip.role` is checked after the signature: ``require_gateway_role``.) Also used by the
    private screening's signed messages (gateway/services/screening_consortium.py)."""
    now = time.time() if now is None else now
    root = ca_roots.get(org)
    if root is None:
        raise PeerUnauthenticated(f"this gateway knows no root CA of {org}")
    try:
        cert.verify_directly_issued_by(root)
    except (ValueError, TypeError, InvalidSignature):
        raise PeerUnauthenticated(f"the certificate was not issued by {org}'s CA") from None
    crl = crl_of(org) if crl_of is not None else None
    if crl is not None:
        if not crl.is_signature_valid(root.public_key()):  # type: ignore[arg-type]
            raise PeerUnauthenticated(f"this gateway's copy of {org}'s CRL is not signed by "
                                      f"{org}'s CA")
        if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
            raise PeerUnauthenticated("the certificate was revoked")
    moment = dt.datetime.fromtimestamp(now, dt.UTC)
    if not cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc:
        raise PeerUnauthenticated("the certificate is not valid now")
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise PeerUnauthenticated("the certificate's key is not an ECDSA key")
    return key
