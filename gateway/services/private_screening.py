"""Consortium-wide private screening: the three orgs' gateways as the protocol's parties.

The cryptography is face_engine/dedup/private_screening.py; this module gives each gateway
its roles, authenticates the calling org and moves the bytes. For a query of the enrolling
org Q against org G's gallery, the third org V holds the CKKS key (docs/face.md, 5b):

    Q --signed(query under V's key)--> G --signed(masked scores)--> V
    Q <--signed(candidate passport ids)-- G <--signed(match bits)-- V

* Authentication: every message is a signed envelope (``EnvelopeKeys``): the sending
  org, the receiving org, the message kind, the screening request id and the SHA-256 of the
  body, signed by the sender. Between the gateways the signature is the sending org's
  gateway service identity's (ECDSA, its Fabric certificate checked against the org's root
  CA, CRL and `mip.role=gateway` by gateway/core/peer_auth.py:
  screening_consortium.IdentityKeys), the identity of the custody relay; the protocol's
  unit tests use Ed25519 keys (``PeerKeys``). TLS hides the bytes in transit.
* Requests: G scores and V decrypts only for a screening request that is recorded
  (``ScreeningRequests``) for exactly this querier, and each party acts once per request
  and gallery: a replayed or unrecorded query is refused. Between the gateways the record is
  the ledger's (`Screening:Request`, written under the 2-of-3 policy with a per-org daily
  quota; each party reads it through its own peer: screening_consortium.LedgerRequests);
  ``RequestLog`` is an in-memory record for the protocol's unit tests.
* Failures: a peer that does not answer within the timeout gives ``ScreeningUnavailable``
  (503); a peer whose answer is not a valid, signed protocol message, or whose bits
  contradict the decoys, gives ``ScreeningPartyDeviated`` (502); V's refusal of a non-unit
  query comes back as ``ScreeningQueryRefused`` (403). ``screen_before_enrol`` enrols
  nothing unless every gallery answered and none had candidates.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import logging
import secrets
import struct
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

import httpx
import numpy as np
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from chaincode.protocol.orgs import MEMBER_ORGS
from face_engine.dedup import private_screening as ps
from gateway.core.errors import ApiError, Forbidden, Unauthenticated

log = logging.getLogger("mip.gateway.screening")

SIGNING_CONTEXT = b"mip/private-screening/v1\x00"
KIND_KEY = "key"  # V -> anyone: V's public bundle
KIND_QUERY = "query"  # Q -> G
KIND_SCORES = "scores"  # G -> V
KIND_BITS = "bits"  # V -> G
KIND_CANDIDATES = "candidates"  # G -> Q
KIND_REFUSED = "refused"  # V -> G -> Q: the query failed the norm check
_MAX_HEADER = 4096
_MAX_ID_CHARS = 256


class ScreeningUnavailable(ApiError):
    status, code = 503, "screening_unavailable"


class ScreeningPartyDeviated(ApiError):
    status, code = 502, "screening_party_deviated"


class ScreeningQueryRefused(ApiError):
    status, code = 403, "screening_query_refused"


class UnrecordedScreeningRequest(Forbidden):
    code = "screening_request_unrecorded"


class ScreeningQuotaExceeded(ApiError):
    status, code = 429, "screening_quota_exceeded"


class PeerUnauthenticated(Unauthenticated):
    code = "peer_unauthenticated"


class ScreeningRefusedByPeer(Forbidden):
    """A peer refused the step (unrecorded or used request, not its role, our signature)."""

    code = "screening_refused_by_peer"


# --- who plays V ---------------------------------------------------------------------------

def key_holder_for(querier: str, gallery: str, orgs: Sequence[str] = tuple(MEMBER_ORGS)) -> str:
    """The third org: neither the querier nor the gallery holder."""
    others = sorted(set(orgs) - {querier, gallery})
    if querier == gallery or len(others) != 1 or querier not in orgs or gallery not in orgs:
        raise ValueError("private screening needs three distinct member orgs")
    return others[0]


# --- signed envelopes ----------------------------------------------------------------------

class EnvelopeKeys(Protocol):
    """How this org signs its screening messages and checks the other member orgs'."""

    @property
    def org(self) -> str: ...

    @property
    def orgs(self) -> tuple[str, ...]: ...

    def sign(self, payload: bytes) -> bytes: ...

    def verify(self, origin: str, payload: bytes, signature: bytes) -> None:
        """Raise ``PeerUnauthenticated`` unless ``signature`` is ``origin``'s over
        ``payload``."""


@dataclass(frozen=True)
class PeerKeys:
    """This org's Ed25519 screening key and every member org's public key (the protocol's
    tests; the gateways sign with their Fabric service identities instead:
    screening_consortium.IdentityKeys)."""

    org: str
    signing_key: Ed25519PrivateKey = field(repr=False)
    peers: Mapping[str, Ed25519PublicKey]  # the other member orgs' public keys

    @property
    def orgs(self) -> tuple[str, ...]:
        return (*self.peers, self.org)

    def sign(self, payload: bytes) -> bytes:
        return self.signing_key.sign(payload)

    def verify(self, origin: str, payload: bytes, signature: bytes) -> None:
        public = self.peers.get(origin)
        if public is None:
            raise PeerUnauthenticated("message from an unexpected org")
        try:
            public.verify(signature, payload)
        except InvalidSignature:
            raise PeerUnauthenticated("bad signature on a screening message") from None


@dataclass(frozen=True)
class Envelope:
    sender: str
    kind: str
    request_id: str
    body: bytes


_MAX_SIGNATURE = 8192  # an Ed25519 signature, or a certificate and an ECDSA signature


def seal(keys: EnvelopeKeys, to: str, kind: str, request_id: str, body: bytes) -> bytes:
    header = json.dumps({"v": 1, "from": keys.org, "to": to, "kind": kind,
                         "request_id": request_id,
                         "body_sha256": hashlib.sha256(body).hexdigest()},
                        sort_keys=True, separators=(",", ":")).encode()
    signature = keys.sign(SIGNING_CONTEXT + header)
    return (struct.pack(">I", len(header)) + header + struct.pack(">H", len(signature))
            + signature + body)


def claimed_sender(data: bytes) -> str | None:
    """The org an envelope says it is from (unchecked: ``open_envelope`` checks it)."""
    try:
        (size,) = struct.unpack(">I", data[:4])
        header = json.loads(data[4:4 + min(size, _MAX_HEADER)])
    except (struct.error, ValueError):
        return None
    origin = header.get("from") if isinstance(header, dict) else None
    return origin if isinstance(origin, str) else None


def open_envelope(keys: EnvelopeKeys, data: bytes, kinds: Sequence[str],
                  sender: str | None = None) -> Envelope:
    """Check the envelope is addressed to this org, of an expected kind, signed by a
    member org (``sender`` if given) over exactly this body."""
    try:
        (size,) = struct.unpack(">I", data[:4])
        if size > _MAX_HEADER or len(data) < 4 + size + 2:
            raise ValueError("short")
        header_bytes = data[4:4 + size]
        (sig_size,) = struct.unpack(">H", data[4 + size:6 + size])
        if sig_size > _MAX_SIGNATURE or len(data) < 6 + size + sig_size:
            raise ValueError("short")
        signature = data[6 + size:6 + size + sig_size]
        body = data[6 + size + sig_size:]
        header = json.loads(header_bytes)
        if not isinstance(header, dict):
            raise ValueError("header")
        origin, to, kind, rid = (header.get(k) for k in ("from", "to", "kind", "request_id"))
    except (struct.error, ValueError, TypeError):
        raise PeerUnauthenticated("not a signed screening message") from None
    if not isinstance(origin, str) or origin not in keys.orgs or origin == keys.org or (
            sender is not None and origin != sender):
        raise PeerUnauthenticated("message from an unexpected org")
    keys.verify(origin, SIGNING_CONTEXT + header_bytes, signature)
    if (to != keys.org or not isinstance(kind, str) or kind not in kinds
            or not isinstance(rid, str)
            or header.get("body_sha256") != hashlib.sha256(body).hexdigest()):
        raise PeerUnauthenticated("screening message not for this step")
    return Envelope(sender=str(origin), kind=kind, request_id=rid, body=body)


# --- recorded requests and quotas ----------------------------------------------------------

@dataclass(frozen=True)
class ScreeningRequest:
    request_id: str
    querier: str


class ScreeningRequests(Protocol):
    """The record of screening requests every party checks (the ledger's, eventually)."""

    def lookup(self, request_id: str) -> ScreeningRequest | None: ...

    def consume(self, request_id: str, party: str, gallery: str) -> None:
        """Mark that ``party`` acted for ``gallery`` under this request; refuse a second
        time (``UnrecordedScreeningRequest``)."""


class RequestLog:
    """In-memory record with a per-org quota of requests (the seam for the ledger's)."""

    def __init__(self, quotas: Mapping[str, int]) -> None:
        self._quotas = dict(quotas)
        self._requests: dict[str, ScreeningRequest] = {}
        self._count: dict[str, int] = {}
        self._used: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()

    def record(self, querier: str) -> str:
        with self._lock:
            if self._count.get(querier, 0) >= self._quotas.get(querier, 0):
                raise ScreeningQuotaExceeded(f"{querier} has used its screening quota")
            self._count[querier] = self._count.get(querier, 0) + 1
            rid = secrets.token_hex(16)
            self._requests[rid] = ScreeningRequest(rid, querier)
            return rid

    def lookup(self, request_id: str) -> ScreeningRequest | None:
        with self._lock:
            return self._requests.get(request_id)

    def consume(self, request_id: str, party: str, gallery: str) -> None:
        with self._lock:
            key = (request_id, party, gallery)
            if request_id not in self._requests or key in self._used:
                raise UnrecordedScreeningRequest("screening request unrecorded or used")
            self._used.add(key)


def _authorise(requests: ScreeningRequests, env: Envelope, querier: str, party: str,
               gallery: str) -> None:
    recorded = requests.lookup(env.request_id)
    if recorded is None or recorded.querier != querier:
        raise UnrecordedScreeningRequest("no recorded screening request for this querier")
    requests.consume(env.request_id, party, gallery)


# --- transport -----------------------------------------------------------------------------

class PeerTransport(Protocol):
    def call(self, org: str, step: str, body: bytes, timeout: float) -> bytes:
        """POST ``body`` to ``org``'s gateway screening ``step``; raise
        ``ScreeningUnavailable`` on timeout or when unreachable."""


class HttpTransport:
    """Gateway-to-gateway HTTP(S). ``clients`` maps each org to an ``httpx.Client`` whose
    ``base_url`` is that org's gateway, made with this org's TLS client certificate
    (``cert=``) and the consortium CA (``verify=``)."""

    PATHS: ClassVar[dict[str, str]] = {"key": "/v1/screening/key", "score": "/v1/screening/score",
             "decide": "/v1/screening/decide"}

    def __init__(self, clients: Mapping[str, httpx.Client]) -> None:
        self._clients = dict(clients)

    def call(self, org: str, step: str, body: bytes, timeout: float) -> bytes:
        client = self._clients.get(org)
        if client is None:
            raise ScreeningUnavailable(f"no route to {org}'s gateway")
        try:
            response = client.post(self.PATHS[step], content=body, timeout=timeout,
                                   headers={"content-type": "application/octet-stream"})
        except httpx.TimeoutException:
            raise ScreeningUnavailable(f"{org}'s gateway did not answer in time") from None
        except httpx.TransportError:
            raise ScreeningUnavailable(f"{org}'s gateway is unreachable") from None
        if response.status_code != 200:
            raise error_for_status(org, response.status_code)
        return response.content


def error_for_status(org: str, status: int) -> ApiError:
    """What a peer's HTTP error means to the caller: it was unavailable (503: it or a
    party behind it timed out), it refused (401, 403, 429), or it failed or deviated."""
    if status == ScreeningUnavailable.status:
        return ScreeningUnavailable(f"{org}'s gateway or a party behind it is unavailable")
    if status in (401, 403, 429):
        return ScreeningRefusedByPeer(f"{org}'s gateway refused the step ({status})")
    return ScreeningPartyDeviated(f"{org}'s gateway answered {status}")


# --- the three roles -----------------------------------------------------------------------

class KeyHolderRole:
    """V: holds the CKKS secret key; decrypts only a unit query's masked signs, for G."""

    def __init__(self, ctx: ps.Context, holder: ps.KeyHolder, keys: EnvelopeKeys,
                 requests: ScreeningRequests,
                 max_blocks: Callable[[str], int] | None = None) -> None:
        self._ctx, self._holder, self._keys, self._requests = ctx, holder, keys, requests
        self._bundle = holder.public_bundle()
        # How many score blocks V decrypts for a gallery org: each is up to 8,192 sign bits
        # G chooses, so V should accept no more than the org's enrolled passports need
        # (eventually read from the ledger's count; docs/face.md 5b).
        self._max_blocks = max_blocks

    def key(self, data: bytes) -> bytes:
        """Anyone of the consortium asks (a signed, empty request); V signs its bundle."""
        env = open_envelope(self._keys, data, [KIND_KEY])
        return seal(self._keys, env.sender, KIND_KEY, env.request_id, self._bundle)

    def decide(self, data: bytes) -> bytes:
        env = open_envelope(self._keys, data, [KIND_SCORES])
        head, _, scored = env.body.partition(b"\n")
        try:
            parsed = json.loads(head) if len(head) <= _MAX_HEADER else None
        except ValueError:
            parsed = None
        querier = parsed.get("querier") if isinstance(parsed, dict) else None
        gallery = env.sender
        if not isinstance(querier, str) or querier not in self._keys.orgs or \
                key_holder_for(querier, gallery, self._keys.orgs) != self._keys.org:
            raise Forbidden("this org is not the key holder for that pair")
        _authorise(self._requests, env, querier, self._keys.org, gallery)
        try:
            limit = self._max_blocks(gallery) if self._max_blocks else 1 << 16
            bits = ps.decide(self._ctx, self._holder, scored, max_blocks=limit)
        except ps.QueryRefused:
            log.warning("screening query refused: not a unit vector (request %s)",
                        env.request_id)
            return seal(self._keys, gallery, KIND_REFUSED, env.request_id, b"")
        except ps.MalformedMessage as exc:
            raise ScreeningPartyDeviated(f"malformed scores from {gallery}: {exc}") from None
        return seal(self._keys, gallery, KIND_BITS, env.request_id, bits)


def _fetch_bundle(ctx: ps.Context, keys: EnvelopeKeys, transport: PeerTransport, key_org: str,
                  timeout: float) -> ps.PublicBundle:
    ask = seal(keys, key_org, KIND_KEY, "key", b"")
    reply = transport.call(key_org, "key", ask, timeout)
    env = _open_reply(keys, reply, [KIND_KEY], key_org)
    try:
        return ps.load_public_bundle(ctx, env.body)
    except ps.ScreeningError as exc:
        raise ScreeningPartyDeviated(f"{key_org} sent a bad key bundle: {exc}") from None


def _open_reply(keys: EnvelopeKeys, data: bytes, kinds: Sequence[str], sender: str) -> Envelope:
    try:
        return open_envelope(keys, data, kinds, sender=sender)
    except PeerUnauthenticated as exc:
        raise ScreeningPartyDeviated(f"bad answer from {sender}: {exc.message}") from None


class GalleryRole:
    """G: scores a recorded query against its own encoded references, asks V for the
    signs, checks the decoys and tells Q the candidates' passport ids."""

    def __init__(self, ctx: ps.Context, keys: EnvelopeKeys, requests: ScreeningRequests,
                 transport: PeerTransport, gallery: ps.EncodedGallery,
                 passport_ids: Sequence[str], threshold: float, timeout: float = 60.0,
                 on_candidates: Callable[[str, str, list[str]], None] | None = None) -> None:
        self._ctx, self._keys, self._requests = ctx, keys, requests
        self._transport = transport
        self.update(gallery, passport_ids)
        self._threshold, self._timeout = threshold, timeout
        self._bundles: dict[str, ps.PublicBundle] = {}
        # per key holder: encryptions of zero made while G waits (for V's answer, for the
        # next query), so that a query's blocks need no public-key encryption of their own
        self._zeros: dict[str, ps.Rerandomisers] = {}
        # told (querier, request id, this org's candidate passport ids) when a query found
        # some: the gallery org's record that a review concerns its passports
        self._on_candidates = on_candidates
        # Keep V's public bundle between queries? A V that restarts makes a new key pair,
        # and a cached bundle would then re-randomise under a stale key (the gateways fetch
        # it per query: a few MB, milliseconds, and Q fetches it per query too).
        self.cache_bundles = True

    def update(self, gallery: ps.EncodedGallery, passport_ids: Sequence[str]) -> None:
        """Score later queries against this gallery (the org's index changed)."""
        if len(passport_ids) != gallery.count:
            raise ValueError("one passport id per reference")
        self._gallery, self._ids = gallery, list(passport_ids)

    def score(self, data: bytes) -> bytes:
        env = open_envelope(self._keys, data, [KIND_QUERY])
        querier = env.sender
        key_org = key_holder_for(querier, self._keys.org,
                                 self._keys.orgs)
        _authorise(self._requests, env, querier, self._keys.org, self._keys.org)
        if self._gallery.count == 0:
            # No reference, no candidate, whatever the query (and SEAL refuses products with
            # an all-zero plaintext): the answer needs no key holder.
            return seal(self._keys, querier, KIND_CANDIDATES, env.request_id, b"[]")
        bundle = self._bundles.get(key_org) if self.cache_bundles else None
        if bundle is None:
            bundle = _fetch_bundle(self._ctx, self._keys, self._transport, key_org,
                                   self._timeout)
            self._bundles[key_org] = bundle
        # pads made under this V's key, kept while its key is the same (the gateway fetches
        # the bundle per query: the object is new, the key may not be)
        zeros = self._zeros.get(key_org)
        if zeros is None or zeros.key_id != bundle.key_id:
            zeros = self._zeros[key_org] = ps.Rerandomisers(self._ctx, bundle)
        try:
            return self._answer(env, key_org, bundle, zeros)
        finally:
            # the next query's pads, made once this one is answered (between queries: on a
            # machine shared with Q and V they do not compete with this query's work, V's
            # decryption included; a thread, SEAL's calls are short and the gateway's other
            # requests interleave with them)
            threading.Thread(target=zeros.fill, args=(len(self._gallery.blocks),),
                             daemon=True, name="screening-rerandomisers").start()

    def _answer(self, env: Envelope, key_org: str, bundle: ps.PublicBundle,
                zeros: ps.Rerandomisers) -> bytes:
        """Score the query, ask V for the signs, name the candidates to Q."""
        querier = env.sender
        try:
            scored = ps.score_query(self._ctx, bundle, self._gallery, env.body,
                                    self._threshold, zeros=zeros)
        except ps.MalformedMessage as exc:
            raise ScreeningPartyDeviated(f"malformed query from {querier}: {exc}") from None
        head = json.dumps({"querier": querier}).encode() + b"\n"
        out = seal(self._keys, key_org, KIND_SCORES, env.request_id, head + scored.message)
        reply = self._transport.call(key_org, "decide", out, self._timeout)
        answer = _open_reply(self._keys, reply, [KIND_BITS, KIND_REFUSED], key_org)
        if answer.request_id != env.request_id:
            raise ScreeningPartyDeviated(f"{key_org} answered another request")
        if answer.kind == KIND_REFUSED:
            return seal(self._keys, querier, KIND_REFUSED, env.request_id, b"")
        try:
            hits = ps.matches(scored.secret, answer.body)
        except ps.ScreeningError as exc:
            log.warning("key holder %s deviated: %s", key_org, exc.code)
            raise ScreeningPartyDeviated(f"{key_org}'s answer failed G's checks") from None
        ids = sorted({self._ids[i] for i in hits})
        if ids and self._on_candidates is not None:
            self._on_candidates(querier, env.request_id, ids)
        return seal(self._keys, querier, KIND_CANDIDATES, env.request_id,
                    json.dumps(ids).encode())


@dataclass(frozen=True)
class ScreeningResult:
    request_id: str
    candidates: dict[str, list[str]]  # gallery org -> candidate passport ids

    @property
    def clear(self) -> bool:
        return not any(self.candidates.values())


class QuerierRole:
    """Q: encrypts the new face under each pair's key holder and asks each other org."""

    def __init__(self, ctx: ps.Context, keys: EnvelopeKeys, transport: PeerTransport,
                 timeout: float = 60.0) -> None:
        self._ctx, self._keys, self._transport, self._timeout = ctx, keys, transport, timeout
        # per key holder: encryptions of zero under its key, made between screenings so
        # that a query's 64 ciphertexts need no public-key encryption of their own; a V
        # whose key changed (a restart) gets a new queue (``key_id``: its public key's hash)
        self._zeros: dict[str, ps.QueryZeros] = {}

    @property
    def org(self) -> str:
        return self._keys.org

    def _one(self, request_id: str, gallery: str, query: np.ndarray) -> list[str]:
        key_org = key_holder_for(self._keys.org, gallery,
                                 self._keys.orgs)
        bundle = _fetch_bundle(self._ctx, self._keys, self._transport, key_org, self._timeout)
        zeros = self._zeros.get(key_org)
        if zeros is None or zeros.key_id != bundle.key_id:
            zeros = self._zeros[key_org] = ps.QueryZeros(self._ctx, bundle)
        try:
            message = ps.encrypt_query(self._ctx, bundle, query, zeros=zeros)
            reply = self._transport.call(
                gallery, "score", seal(self._keys, gallery, KIND_QUERY, request_id, message),
                self._timeout)
        finally:
            # the next screening's, made once G has answered this one (between screenings:
            # on a machine shared with G and V it does not compete with their work on this
            # query; 64 encryptions, a fraction of a second)
            threading.Thread(target=zeros.fill, args=(ps.QUERY_CTS,), daemon=True,
                             name="screening-query-zeros").start()
        env = _open_reply(self._keys, reply, [KIND_CANDIDATES, KIND_REFUSED], gallery)
        if env.request_id != request_id:
            raise ScreeningPartyDeviated(f"{gallery} answered another request")
        if env.kind == KIND_REFUSED:
            raise ScreeningQueryRefused("the key holder refused the query")
        try:
            ids = json.loads(env.body)
        except ValueError:
            ids = None
        if not isinstance(ids, list) or not all(
                isinstance(i, str) and 0 < len(i) <= _MAX_ID_CHARS for i in ids):
            raise ScreeningPartyDeviated(f"{gallery} sent a malformed candidate list")
        return ids

    def screen(self, request_id: str, query: np.ndarray) -> ScreeningResult:
        """Screen against every other org's gallery, in parallel; any failure of any
        party raises (typed) and nothing is returned."""
        galleries = sorted(o for o in self._keys.orgs if o != self._keys.org)
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(galleries)) as pool:
            futures = {g: pool.submit(self._one, request_id, g, query) for g in galleries}
            results = {g: f.result() for g, f in futures.items()}
        return ScreeningResult(request_id, results)


def screen_before_enrol(querier: QuerierRole, request_id: str, query: np.ndarray,
                        local_candidates: Callable[[np.ndarray], list[str]],
                        enrol: Callable[[], None]) -> ScreeningResult:
    """Enrol only when every other org's gallery answered and neither they nor this org's
    own (local) gallery has a candidate. Any party's timeout or deviation raises before
    ``enrol`` is called."""
    result = querier.screen(request_id, query)
    own = local_candidates(query)
    result = ScreeningResult(request_id, {**result.candidates, querier.org: own})
    if result.clear:
        enrol()
    return result
