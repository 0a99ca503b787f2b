"""Signed requests between org gateways, for the password-hardening OPRF service.

A minimal check written for `POST /api/v1/oprf/evaluations` (gateway/api/routes/oprf.py),
because the custody branch's inter-gateway authentication (gateway/core/peer_auth.py) is not
in this tree; it follows the same rules so that the two can become one:

org O's gateway signs, with its own Fabric service identity (`mip-gateway` of O: X.509,
ECDSA P-256, the key the connection profile names for that user),

    DOMAIN || canonical_json({method, path, body_sha256, timestamp, nonce, caller, target})

and sends the signature, its certificate, the time and the nonce in `X-MIP-Peer-*` headers.
The receiving gateway T accepts it only when

- the certificate was issued directly by the caller org's root CA (`caCertPath` of that org
  in T's connection profile), is valid now and carries `mip.role=gateway` (Fabric CA's
  hf.Attrs extension), so no staff identity and no other org's identity passes;
- the caller is a member org other than T, and the target signed is T;
- the timestamp lies within `CLOCK_WINDOW_S` of T's clock (the caller's clock decides
  nothing: it only narrows the nonce cache's span);
- the signature verifies over exactly the method, path and body received;
- the nonce is new from that org (the caller of `verify` records it: password_oprf.py keeps
  them in T's database for longer than the window).

The signature authenticates; confidentiality of the body is TLS's (it carries only a
blinded element, which says nothing about the password).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chaincode.protocol.canonical import canonical_json
from chaincode.protocol.orgs import MEMBER_ORGS

from .errors import ApiError

DOMAIN = b"MIP-OPRF-PEER-REQUEST-V1\n"
ORG_HEADER = "X-MIP-Peer-Org"
CERT_HEADER = "X-MIP-Peer-Cert"
TIME_HEADER = "X-MIP-Peer-Time"
NONCE_HEADER = "X-MIP-Peer-Nonce"
SIGNATURE_HEADER = "X-MIP-Peer-Signature"
CLOCK_WINDOW_S = 60.0
HF_ATTRS_OID = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")
GATEWAY_ROLE = "gateway"
MAX_CERT_CHARS = 8192


class PeerUnauthenticated(ApiError):
    """Not a request that a member org's gateway signed for this gateway, now."""

    status, code = 401, "peer_unauthenticated"


@dataclass(frozen=True)
class VerifiedPeer:
    org: str
    nonce: str
    timestamp: int


def signing_payload(method: str, path: str, body: bytes, timestamp: int, nonce: str,
                    caller: str, target: str) -> bytes:
    return DOMAIN + canonical_json({
        "method": method.upper(), "path": path, "body_sha256": hashlib.sha256(body).hexdigest(),
        "timestamp": timestamp, "nonce": nonce, "caller": caller, "target": target})


class PeerSigner:
    """Signs requests as this gateway's org, with its service identity's key."""

    def __init__(self, org: str, cert_path: Path, key_path: Path) -> None:
        self.org = org
        self._cert_pem = cert_path.read_bytes()
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the service identity's key is not an ECDSA key")
        self._key = key

    def headers(self, method: str, path: str, body: bytes, target: str, *,
                timestamp: int | None = None, nonce: str | None = None) -> dict[str, str]:
        timestamp = int(time.time()) if timestamp is None else timestamp
        nonce = secrets.token_hex(16) if nonce is None else nonce
        payload = signing_payload(method, path, body, timestamp, nonce, self.org, target)
        signature = self._key.sign(payload, ec.ECDSA(hashes.SHA256()))
        return {ORG_HEADER: self.org, CERT_HEADER: base64.b64encode(self._cert_pem).decode(),
                TIME_HEADER: str(timestamp), NONCE_HEADER: nonce,
                SIGNATURE_HEADER: base64.b64encode(signature).decode()}

    def __repr__(self) -> str:
        return f"PeerSigner(org={self.org!r}, key=<withheld>)"


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


def verify(headers: Mapping[str, str], method: str, path: str, body: bytes, *, own_org: str,
           ca_roots: Mapping[str, x509.Certificate], now: float | None = None) -> VerifiedPeer:
    """The calling org, once certificate, time and signature pass (not the nonce's novelty:
    the caller records that). `PeerUnauthenticated` names the failed check (nothing secret)."""
    now = time.time() if now is None else now
    org = headers.get(ORG_HEADER, "")
    cert_b64, stamp = headers.get(CERT_HEADER, ""), headers.get(TIME_HEADER, "")
    nonce, sig_b64 = headers.get(NONCE_HEADER, ""), headers.get(SIGNATURE_HEADER, "")
    if not (org and cert_b64 and stamp and nonce and sig_b64):
        raise PeerUnauthenticated("this route answers only a member org's gateway's signed "
                                  "request")
    if org not in MEMBER_ORGS:
        raise PeerUnauthenticated("the caller is not a member org")
    if org == own_org:
        raise PeerUnauthenticated("a gateway does not call itself")
    if not (16 <= len(nonce) <= 64) or not nonce.isascii() or not nonce.isalnum():
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
    root = ca_roots.get(org)
    if root is None:
        raise PeerUnauthenticated(f"this gateway knows no root CA of {org}")
    try:
        cert.verify_directly_issued_by(root)
    except (ValueError, TypeError, InvalidSignature):
        raise PeerUnauthenticated(f"the certificate was not issued by {org}'s CA") from None
    moment = dt.datetime.fromtimestamp(now, dt.UTC)
    if not cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc:
        raise PeerUnauthenticated("the certificate is not valid now")
    if certificate_role(cert) != GATEWAY_ROLE:
        raise PeerUnauthenticated("the certificate is not a gateway's service identity")
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise PeerUnauthenticated("the certificate's key is not an ECDSA key")
    payload = signing_payload(method, path, body, timestamp, nonce, org, own_org)
    try:
        key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise PeerUnauthenticated("the signature does not verify") from None
    return VerifiedPeer(org, nonce, timestamp)
