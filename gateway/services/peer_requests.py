"""Requests between member orgs' gateways: who is calling (by its signed request), and the
test seam for where our own calls go.

The signature, certificate, time window and CRL are checked by gateway/core/peer_auth.py;
here the roots and CRLs come from this gateway's connection profile (`caCertPath`,
`crlPath`) and each accepted nonce is recorded, so the same request is refused the second
time. One record for every inter-gateway route (the custody relay, the vault-hardening OPRF
service): the signature covers method and path, so a nonce cannot move between routes
anyway.
"""

from __future__ import annotations

import sqlite3
import ssl
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

import httpx
from cryptography import x509

from gateway.core.peer_auth import CLOCK_WINDOW_S, PeerSigner, PeerUnauthenticated, verify_peer

from .ledger import SERVICE_USER

if TYPE_CHECKING:
    from .state import AppState

SCHEMA = """
CREATE TABLE IF NOT EXISTS peer_nonces (
    org TEXT NOT NULL,
    nonce TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (org, nonce)
);
"""
# Kept past the clock window on both sides: a replay inside the window finds its nonce, one
# after it is refused for its time.
NONCE_KEEP_S = 4 * CLOCK_WINDOW_S


class PeerRequests:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self.db = state.db
        self.db.ensure(SCHEMA)
        self._roots: dict[str, x509.Certificate] | None = None
        # Test seam for every call this gateway makes to another org's gateway (custody
        # relay, OPRF helper): a transport per org (an in-process app) in place of the
        # network.
        self.transports: dict[str, httpx.AsyncBaseTransport] = {}
        self._signer: PeerSigner | None = None

    def signer(self) -> PeerSigner | None:
        """What signs this gateway's own calls to another org's gateway: its org's
        `mip-gateway` service identity from the connection profile (None when the profile
        has none; the caller says what that stops)."""
        if self._signer is None:
            org = self.state.settings.org
            assert org is not None, "an all-orgs gateway calls no other gateway"
            user = self.state.ledger.profile().org(org).users.get(SERVICE_USER)
            if user is None:
                return None
            self._signer = PeerSigner(org, user.cert_path, user.key_path)
        return self._signer

    def ca_roots(self) -> Mapping[str, x509.Certificate]:
        """Each member org's MSP root CA, from the connection profile (`caCertPath`)."""
        if self._roots is None:
            roots: dict[str, x509.Certificate] = {}
            for org in self.state.ledger.profile().organizations.values():
                if org.ca_cert_path is not None and org.ca_cert_path.is_file():
                    roots[org.msp_id] = x509.load_pem_x509_certificate(
                        org.ca_cert_path.read_bytes())
            self._roots = roots
        return self._roots

    def crl_of(self, org: str) -> x509.CertificateRevocationList | None:
        """`org`'s CRL where the profile names one and the file exists, read at every
        request (a revocation takes effect at once; the file is small). An unreadable one
        refuses the org's requests rather than pass them unchecked."""
        # (Called once the org has a root here, so its profile entry exists.)
        path = self.state.ledger.profile().org(org).crl_path
        if path is None or not path.is_file():
            return None
        try:
            return x509.load_pem_x509_crl(path.read_bytes())
        except ValueError:
            raise PeerUnauthenticated(f"this gateway cannot read {org}'s CRL") from None

    def client(self, org: str, timeout: float) -> httpx.AsyncClient:
        """An HTTP client for a call to `org`'s gateway: the test seam's transport where one
        is set; TLS checked against `peer_ca_file` where the operators configured one (the
        other orgs' gateways' certificates or their CA), else the system's roots. The file
        is read at each call: a gateway whose certificate is renewed, or that starts after
        this one, is trusted once the file names it."""
        verify: ssl.SSLContext | bool = True
        ca_file = self.state.settings.peer_ca_file
        if ca_file is not None:
            verify = ssl.create_default_context(cafile=str(ca_file))
        return httpx.AsyncClient(transport=self.transports.get(org), timeout=timeout,
                                 verify=verify)

    def authenticate(self, own_org: str, headers: Mapping[str, str], method: str, path: str,
                     body: bytes) -> str:
        """The calling org, once its gateway's signature, certificate, time and nonce pass
        (401 `peer_unauthenticated`, or 403 `peer_not_gateway` for another identity of a
        member org)."""
        peer = verify_peer(headers, method, path, body, own_org=own_org,
                           ca_roots=self.ca_roots(), crl_of=self.crl_of)
        now = time.time()
        try:
            with self.db.transaction() as conn:
                conn.execute("DELETE FROM peer_nonces WHERE at <= ?", (now - NONCE_KEEP_S,))
                conn.execute("INSERT INTO peer_nonces (org, nonce, at) VALUES (?, ?, ?)",
                             (peer.org, peer.nonce, now))
        except sqlite3.IntegrityError:
            raise PeerUnauthenticated("this request was already received (replay)") from None
        return peer.org


def peer_requests(state: AppState) -> PeerRequests:
    return state.service("peer_requests", PeerRequests)
