"""The consortium-wide private screening at a per-org gateway (docs/face.md, 5b).

At a gateway of one org (settings.org) that knows the other two orgs' gateways
(settings.org_gateways), this gateway plays all three roles of
gateway/services/private_screening.py:

* querier (Q), for its own enrolments: `screen` records a request on the ledger
  (`Screening:Request`, as the desk's registrar: 2-of-3 endorsed, counted against the org's
  daily quota), then asks each other org's gateway to score the new face, encrypted under
  the third org's key, against its gallery;
* gallery holder (G): its gallery is its own dedup index (`DedupIndex.references`, encoded
  here once per change; the references never leave this process); a query is scored only
  for a request the ledger, read through this org's own peer, records for exactly the
  calling org, not older than `REQUEST_TTL_S` by this gateway's clock, and once
  (`screening_served`). A query with candidates leaves one row per candidate passport in
  `screening_candidates` (request id, querying org, passport id): what this org learns is
  that a review concerns these of its passports, nothing about the new face;
* key holder (V): a CKKS key pair generated at start (memory only: a restart makes a new
  one, the next queries fetch it), decrypting only a unit query's masked signs, for a
  recorded request, once per gallery.

Messages are signed with this org's gateway service identity (`IdentityKeys`: the same
identity, certificate checks and CRL as the custody relay, gateway/core/peer_auth.py) and
each HTTP request to another gateway also carries peer_auth's signed headers (time window,
nonce recorded by services/peer_requests.py). The protocol code is synchronous (threads);
`_Bridge` runs the async calls (ledger, HTTP) on the gateway's event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import re
import sqlite3
import struct
import threading
import time
from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import numpy as np
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from chaincode.protocol.orgs import MEMBER_ORGS
from face_engine.dedup import private_screening as ps
from face_engine.verify import identification_threshold
from gateway.core.errors import ApiError
from gateway.core.peer_auth import (
    PeerNotGateway,
    PeerSigner,
    check_certificate,
    require_gateway_role,
)
from gateway.core.peer_auth import PeerUnauthenticated as PeerAuthFailed
from gateway.core.security import StaffMember
from gateway.fabric import ChaincodeError, GatewayError

from .custody_client import custody_client
from .faces import face_service
from .peer_requests import peer_requests
from .private_screening import (
    GalleryRole,
    KeyHolderRole,
    PeerUnauthenticated,
    QuerierRole,
    ScreeningQuotaExceeded,
    ScreeningRequest,
    ScreeningUnavailable,
    UnrecordedScreeningRequest,
    error_for_status,
)

if TYPE_CHECKING:
    from .state import AppState

log = logging.getLogger("mip.gateway.screening")

SCHEMA = """
CREATE TABLE IF NOT EXISTS screening_served (
    request_id TEXT NOT NULL,
    party TEXT NOT NULL,
    gallery TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (request_id, party, gallery)
);
CREATE TABLE IF NOT EXISTS screening_candidates (
    request_id TEXT NOT NULL,
    querier TEXT NOT NULL,
    passport_id TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (request_id, passport_id)
);
"""
STEP_PATHS = {"key": "/api/v1/screening/key", "score": "/api/v1/screening/score",
              "decide": "/api/v1/screening/decide"}
# A recorded request is answered within this long of its ledger time (the transaction's,
# judged by this party's own clock): a request cannot be kept for later.
REQUEST_TTL_S = 600.0
PARTY_TIMEOUT_S = 60.0
# How long a party re-reads a screening request its own peer does not show yet (the block
# that records it still on its way to this org's peer, on real Fabric), and how often.
REQUEST_VISIBLE_WAIT_S = 5.0
REQUEST_VISIBLE_POLL_S = 0.1
_REQUEST_ID = re.compile(r"[0-9a-f]{32}")
_T = TypeVar("_T")


class ScreeningNotConfigured(ApiError):
    status, code = 503, "screening_not_configured"


class _Bridge:
    """Runs a coroutine on the gateway's event loop from a protocol thread."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None

    def bind(self) -> None:
        self.loop = asyncio.get_running_loop()

    def run(self, coro: Coroutine[Any, Any, _T], timeout: float) -> _T:
        if self.loop is None:
            coro.close()
            raise ScreeningUnavailable("the screening service is not started")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise ScreeningUnavailable("a screening party did not answer in time") from None


class IdentityKeys:
    """Screening messages signed by this org's gateway service identity (ECDSA P-256 with its
    certificate), checked like a custody request's: the sender's certificate issued by the
    sender org's root CA, not revoked, valid now, with `mip.role=gateway`."""

    def __init__(self, org: str, signer: PeerSigner, ca_roots: Mapping[str, x509.Certificate],
                 crl_of: Any) -> None:
        self._org, self._signer, self._roots, self._crl_of = org, signer, ca_roots, crl_of
        self._cert_der = x509.load_pem_x509_certificate(signer.certificate_pem).public_bytes(
            Encoding.DER)

    @property
    def org(self) -> str:
        return self._org

    @property
    def orgs(self) -> tuple[str, ...]:
        return tuple(MEMBER_ORGS)

    def sign(self, payload: bytes) -> bytes:
        return struct.pack(">H", len(self._cert_der)) + self._cert_der + self._signer.sign(
            payload)

    def verify(self, origin: str, payload: bytes, signature: bytes) -> None:
        try:
            (size,) = struct.unpack(">H", signature[:2])
            cert = x509.load_der_x509_certificate(signature[2:2 + size])
            sig = signature[2 + size:]
        except (struct.error, ValueError):
            raise PeerUnauthenticated("malformed signature on a screening message") from None
        try:
            key = check_certificate(cert, origin, ca_roots=self._roots, crl_of=self._crl_of)
            key.verify(sig, payload, ec.ECDSA(hashes.SHA256()))
            require_gateway_role(cert, origin)
        except InvalidSignature:
            raise PeerUnauthenticated("bad signature on a screening message") from None
        except (PeerAuthFailed, PeerNotGateway) as exc:
            raise PeerUnauthenticated(f"screening message: {exc.message}") from None


class LedgerRequests:
    """The record of screening requests: the ledger's, read through this org's own peer;
    what this party already served, in its own database."""

    def __init__(self, state: AppState, bridge: _Bridge, timeout: float) -> None:
        self.state, self._bridge, self._timeout = state, bridge, timeout

    def lookup(self, request_id: str) -> ScreeningRequest | None:
        if not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id):
            return None
        org = self.state.settings.org
        assert org is not None

        async def read() -> bytes | str:
            # on the loop: the ledger's gRPC channel belongs to it. The querier's gateway
            # calls as soon as its own org's peer committed the request; on real Fabric this
            # org's peer may commit that block a moment later, so "not found" is read again
            # for a while before it refuses (devnet has one ledger: found at once).
            deadline = time.monotonic() + REQUEST_VISIBLE_WAIT_S
            reads = 0
            while True:
                reads += 1
                try:
                    result: bytes | str = await self.state.ledger.carrier(org).evaluate(
                        "Screening:Get", [request_id])
                    if reads > 1:
                        log.info("screening request found on this org's peer at read %d",
                                 reads)
                    return result
                except ChaincodeError as exc:
                    if not exc.chaincode_message.startswith("not_found") \
                            or time.monotonic() > deadline:
                        raise
                await asyncio.sleep(REQUEST_VISIBLE_POLL_S)

        try:
            raw = self._bridge.run(read(), self._timeout)
        except ChaincodeError:
            return None  # not recorded (or not readable): refused
        except GatewayError:
            raise ScreeningUnavailable("this gateway's peer did not answer") from None
        record = json.loads(raw)
        if abs(time.time() - float(record["time"])) > REQUEST_TTL_S:
            log.info("screening request refused: recorded too long ago")
            return None
        return ScreeningRequest(request_id, str(record["org"]))

    def consume(self, request_id: str, party: str, gallery: str) -> None:
        try:
            with self.state.db.transaction() as conn:
                conn.execute("INSERT INTO screening_served (request_id, party, gallery, at) "
                             "VALUES (?, ?, ?, ?)", (request_id, party, gallery, time.time()))
        except sqlite3.IntegrityError:
            raise UnrecordedScreeningRequest("this screening request was already served") \
                from None


class GatewayTransport:
    """Signed HTTP(S) calls to the other orgs' gateways' screening steps."""

    def __init__(self, state: AppState, bridge: _Bridge) -> None:
        self.state, self._bridge = state, bridge

    def call(self, org: str, step: str, body: bytes, timeout: float) -> bytes:
        return self._bridge.run(self._post(org, step, body, timeout), timeout + 5.0)

    async def _post(self, org: str, step: str, body: bytes, timeout: float) -> bytes:
        base = self.state.settings.org_gateways.get(org)
        if base is None:
            raise ScreeningUnavailable(f"no address of {org}'s gateway (org_gateways)")
        if self.state.settings.mode == "production" and not base.startswith("https://"):
            raise ScreeningUnavailable(f"{org}'s gateway address must be https in production")
        url = base + STEP_PATHS[step]
        headers = {"content-type": "application/octet-stream",
                   **custody_client(self.state).signer().headers(
                       "POST", httpx.URL(url).path, body, org)}
        try:
            async with peer_requests(self.state).client(org, timeout) as http:
                response = await http.post(url, content=body, headers=headers)
        except httpx.TimeoutException:
            raise ScreeningUnavailable(f"{org}'s gateway did not answer in time") from None
        except httpx.HTTPError:
            raise ScreeningUnavailable(f"{org}'s gateway is unreachable") from None
        if response.status_code != 200:
            raise error_for_status(org, response.status_code)
        return response.content


class ConsortiumScreening:
    def __init__(self, state: AppState) -> None:
        self.state = state
        state.db.ensure(SCHEMA)
        self.timeout = PARTY_TIMEOUT_S
        self._bridge = _Bridge()
        self._lock = threading.Lock()
        self._score_lock = threading.Lock()
        self._ctx: ps.Context | None = None
        self._keys: IdentityKeys | None = None
        self._holder: KeyHolderRole | None = None
        self._gallery: GalleryRole | None = None
        self._gallery_ids: list[str] | None = None
        # one querier for this gateway's screenings: it keeps its encryptions of zero made
        # ahead under each key holder's key between them
        self._querier: QuerierRole | None = None

    def enabled(self) -> bool:
        """A gateway of one org that knows both other orgs' gateways."""
        org = self.state.settings.org
        others = set(MEMBER_ORGS) - {org}
        return org is not None and others <= set(self.state.settings.org_gateways)

    def _require(self) -> str:
        org = self.state.settings.org
        if org is None or not self.enabled():
            raise ScreeningNotConfigured("this gateway does not take part in the "
                                         "consortium-wide screening (org and org_gateways)")
        return org

    def _parts(self) -> tuple[ps.Context, IdentityKeys]:
        org = self._require()
        with self._lock:
            if self._ctx is None:
                self._ctx = ps.Context()
            if self._keys is None:
                requests = peer_requests(self.state)
                self._keys = IdentityKeys(org, custody_client(self.state).signer(),
                                          requests.ca_roots(), requests.crl_of)
            return self._ctx, self._keys

    def _requests(self) -> LedgerRequests:
        return LedgerRequests(self.state, self._bridge, self.timeout)

    # --- the steps other gateways call (routes/screening.py) -----------------------------
    async def step(self, name: str, body: bytes) -> bytes:
        self._bridge.bind()
        return await asyncio.get_running_loop().run_in_executor(None, self._step, name, body)

    def _step(self, name: str, body: bytes) -> bytes:
        if name == "score":
            with self._score_lock:  # one scoring at a time (it uses both cores)
                return self._gallery_role().score(body)
        holder = self._key_holder()
        return holder.key(body) if name == "key" else holder.decide(body)

    def _key_holder(self) -> KeyHolderRole:
        ctx, keys = self._parts()
        with self._lock:
            if self._holder is None:
                self._holder = KeyHolderRole(ctx, ps.KeyHolder.generate(ctx), keys,
                                             self._requests())
            return self._holder

    def _gallery_role(self) -> GalleryRole:
        ctx, keys = self._parts()
        ids, refs = face_service(self.state).dedup().references()
        with self._lock:
            if self._gallery is None or ids != self._gallery_ids:
                encoded = ps.encode_gallery(ctx, refs)
                if self._gallery is None:
                    self._gallery = GalleryRole(
                        ctx, keys, self._requests(), GatewayTransport(self.state, self._bridge),
                        encoded, ids, identification_threshold(), timeout=self.timeout,
                        on_candidates=self._record_candidates)
                    self._gallery.cache_bundles = False
                else:
                    self._gallery.update(encoded, ids)
                self._gallery_ids = ids
            return self._gallery

    def _record_candidates(self, querier: str, request_id: str, ids: list[str]) -> None:
        now = time.time()
        with self.state.db.transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO screening_candidates (request_id, querier, passport_id, "
                "at) VALUES (?, ?, ?, ?)", [(request_id, querier, pid, now) for pid in ids])
        log.info("a screening query of %s found %d of this org's passports", querier, len(ids))

    def candidates_named(self) -> list[dict[str, Any]]:
        """This org's passports that another org's screening named (newest first)."""
        rows = self.state.db.query("SELECT * FROM screening_candidates ORDER BY at DESC "
                                   "LIMIT 200")
        return [{"request_id": r["request_id"], "querier": r["querier"],
                 "passport_id": r["passport_id"], "at": r["at"]} for r in rows]

    # --- this org's enrolments -----------------------------------------------------------
    async def screen(self, staff: StaffMember, template: np.ndarray) -> dict[str, list[str]]:
        """Candidates (passport ids, by gallery org) of the two other orgs' galleries for
        this face. Raises (typed) unless both answered: ScreeningUnavailable when a party
        did not answer, ScreeningPartyDeviated, ScreeningRefusedByPeer,
        ScreeningQueryRefused, ScreeningQuotaExceeded."""
        ctx, keys = self._parts()
        self._bridge.bind()
        try:
            record = json.loads(await self.state.ledger.for_staff(staff).submit(
                "Screening:Request", []))
        except ChaincodeError as exc:
            if exc.chaincode_message.startswith("precondition_failed"):
                raise ScreeningQuotaExceeded("this org has used today's screening requests "
                                             "(Config screening_quota_daily)") from None
            raise
        except GatewayError:
            raise ScreeningUnavailable("the screening request could not be recorded on the "
                                       "ledger") from None
        with self._lock:
            if self._querier is None:
                self._querier = QuerierRole(ctx, keys,
                                            GatewayTransport(self.state, self._bridge),
                                            timeout=self.timeout)
            querier = self._querier
        result = await asyncio.get_running_loop().run_in_executor(
            None, querier.screen, str(record["request_id"]), template)
        return result.candidates


def consortium_screening(state: AppState) -> ConsortiumScreening:
    return state.service("consortium_screening", ConsortiumScreening)
