"""Consortium-wide private screening between the three orgs' gateway roles
(gateway/services/private_screening.py): a face enrolled at one org is caught when the same
person enrols at another; an unrecorded, replayed or over-quota request is refused; a crafted
query releases nothing; a party that stops answering or answers garbage stops the screening
with a typed error and nothing enrolled."""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from fastapi.testclient import TestClient

from chaincode.protocol.orgs import HOSPITAL, PHARMACY, SCHOOL
from face_engine.dedup import private_screening as ps
from face_engine.dedup.synthetic import FaceLikeDistribution, mated_sample
from gateway.api.routes.screening import ScreeningRoles, build_router
from gateway.core.errors import ApiError, install_error_handlers
from gateway.services import private_screening as svc

ORGS = (HOSPITAL, SCHOOL, PHARMACY)
THRESHOLD = 0.418
GALLERY = 1_500


class LocalTransport:
    """The gateways in one process: each call runs the peer's handler in a thread and
    waits at most ``timeout``, as an HTTP client would; a peer's typed refusal comes back
    as its HTTP status would (``error_for_status``)."""

    def __init__(self) -> None:
        self.handlers: dict[tuple[str, str], Callable[[bytes], bytes]] = {}
        self.tamper: dict[tuple[str, str], Callable[[bytes], bytes]] = {}
        self.calls: list[tuple[str, str]] = []
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=8)

    def call(self, org: str, step: str, body: bytes, timeout: float) -> bytes:
        self.calls.append((org, step))
        future = self._pool.submit(self.handlers[(org, step)], body)
        try:
            reply = future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            raise svc.ScreeningUnavailable(f"{org} did not answer in time") from None
        except ApiError as exc:
            raise svc.error_for_status(org, exc.status) from None
        return self.tamper.get((org, step), lambda b: b)(reply)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


@dataclass
class Consortium:
    ctx: ps.Context
    transport: LocalTransport
    keys: dict[str, svc.PeerKeys]
    requests: svc.RequestLog
    refs: dict[str, np.ndarray]
    ids: dict[str, list[str]]
    galleries: dict[str, svc.GalleryRole] = field(default_factory=dict)
    holders: dict[str, svc.KeyHolderRole] = field(default_factory=dict)

    def querier(self, org: str, timeout: float = 120.0) -> svc.QuerierRole:
        return svc.QuerierRole(self.ctx, self.keys[org], self.transport, timeout=timeout)


@pytest.fixture(scope="module")
def consortium() -> Iterator[Consortium]:
    ctx = ps.Context()
    signing = {org: Ed25519PrivateKey.generate() for org in ORGS}
    keys = {org: svc.PeerKeys(org, signing[org],
                              {o: signing[o].public_key() for o in ORGS if o != org})
            for org in ORGS}
    requests = svc.RequestLog({org: 20 for org in ORGS})
    transport = LocalTransport()
    rng = np.random.default_rng(17)
    dist = FaceLikeDistribution.parametric(ps.DIM, rng)
    refs = {org: dist.sample(GALLERY, rng).astype(np.float64) for org in ORGS}
    ids = {org: [f"{org[:3].lower()}-{i:05d}" for i in range(GALLERY)] for org in ORGS}
    c = Consortium(ctx, transport, keys, requests, refs, ids)
    for org in ORGS:
        holder = svc.KeyHolderRole(ctx, ps.KeyHolder.generate(ctx), keys[org], requests)
        gallery = svc.GalleryRole(ctx, keys[org], requests, transport,
                                  ps.encode_gallery(ctx, refs[org]), ids[org], THRESHOLD,
                                  timeout=60.0)
        c.holders[org], c.galleries[org] = holder, gallery
        transport.handlers[(org, "key")] = holder.key
        transport.handlers[(org, "decide")] = holder.decide
        transport.handlers[(org, "score")] = gallery.score
    yield c
    transport.close()


def _local_none(_: np.ndarray) -> list[str]:
    return []


def test_a_face_enrolled_at_one_org_is_caught_at_another(consortium: Consortium) -> None:
    rng = np.random.default_rng(1)
    person = consortium.refs[SCHOOL][42]
    second_photo = mated_sample(person, 0.65, rng)[0]
    enrolled: list[bool] = []
    rid = consortium.requests.record(HOSPITAL)
    result = svc.screen_before_enrol(consortium.querier(HOSPITAL), rid, second_photo,
                                     _local_none, lambda: enrolled.append(True))
    want = {org: [consortium.ids[org][i] for i in
                  ps.plaintext_reference(consortium.refs[org], second_photo, THRESHOLD)]
            for org in (SCHOOL, PHARMACY)}
    assert consortium.ids[SCHOOL][42] in result.candidates[SCHOOL]
    assert result.candidates[SCHOOL] == sorted(want[SCHOOL])
    assert result.candidates[PHARMACY] == sorted(want[PHARMACY])
    assert not result.clear and enrolled == []
    # V of each pair is the third org: Pharmacy decided for the School gallery
    assert (PHARMACY, "decide") in consortium.transport.calls
    assert (SCHOOL, "decide") in consortium.transport.calls


def test_a_new_face_is_cleared_and_enrolled(consortium: Consortium) -> None:
    rng = np.random.default_rng(2)
    stranger = FaceLikeDistribution.parametric(ps.DIM, rng).sample(1, rng)[0]
    expected = any(ps.plaintext_reference(consortium.refs[o], stranger, THRESHOLD).size
                   for o in (HOSPITAL, PHARMACY))
    enrolled: list[bool] = []
    rid = consortium.requests.record(SCHOOL)
    result = svc.screen_before_enrol(consortium.querier(SCHOOL), rid, stranger,
                                     _local_none, lambda: enrolled.append(True))
    assert result.clear is not expected
    assert enrolled == ([] if expected else [True])


def test_the_gallery_holder_refuses_unrecorded_replayed_and_misattributed_queries(
        consortium: Consortium) -> None:
    q = consortium.querier(PHARMACY)
    query = consortium.refs[HOSPITAL][3]
    with pytest.raises(svc.ScreeningRefusedByPeer):  # G answers 403
        q.screen("0" * 32, query)
    # the same, at G directly: the typed refusal
    bundle = ps.load_public_bundle(consortium.ctx, consortium.holders[SCHOOL]._bundle)
    message = ps.encrypt_query(consortium.ctx, bundle, query)
    unrecorded = svc.seal(consortium.keys[PHARMACY], HOSPITAL, svc.KIND_QUERY, "0" * 32,
                          message)
    with pytest.raises(svc.UnrecordedScreeningRequest):
        consortium.galleries[HOSPITAL].score(unrecorded)
    # a request recorded for the School cannot be used by the Pharmacy
    school_rid = consortium.requests.record(SCHOOL)
    stolen = svc.seal(consortium.keys[PHARMACY], HOSPITAL, svc.KIND_QUERY, school_rid,
                      message)
    with pytest.raises(svc.UnrecordedScreeningRequest):
        consortium.galleries[HOSPITAL].score(stolen)
    # one scoring per request and gallery: a replay is refused
    rid = consortium.requests.record(PHARMACY)
    sealed = svc.seal(consortium.keys[PHARMACY], HOSPITAL, svc.KIND_QUERY, rid, message)
    reply = consortium.galleries[HOSPITAL].score(sealed)
    env = svc.open_envelope(consortium.keys[PHARMACY], reply, [svc.KIND_CANDIDATES])
    assert consortium.ids[HOSPITAL][3] in json.loads(env.body)
    with pytest.raises(svc.UnrecordedScreeningRequest):
        consortium.galleries[HOSPITAL].score(sealed)


def test_quota_is_enforced_when_a_request_is_recorded() -> None:
    log = svc.RequestLog({HOSPITAL: 2})
    log.record(HOSPITAL)
    log.record(HOSPITAL)
    with pytest.raises(svc.ScreeningQuotaExceeded):
        log.record(HOSPITAL)
    with pytest.raises(svc.ScreeningQuotaExceeded):
        log.record(SCHOOL)  # no quota, no screening


def test_a_message_signed_by_another_org_or_altered_is_refused(
        consortium: Consortium) -> None:
    rid = consortium.requests.record(HOSPITAL)
    body = b"\x00" * 100
    forged = svc.seal(svc.PeerKeys(HOSPITAL, Ed25519PrivateKey.generate(), {}), SCHOOL,
                      svc.KIND_QUERY, rid, body)
    with pytest.raises(svc.PeerUnauthenticated):
        consortium.galleries[SCHOOL].score(forged)
    genuine = svc.seal(consortium.keys[HOSPITAL], SCHOOL, svc.KIND_QUERY, rid, body)
    with pytest.raises(svc.PeerUnauthenticated):
        consortium.galleries[SCHOOL].score(genuine[:-1] + b"\x01")
    to_pharmacy = svc.seal(consortium.keys[HOSPITAL], PHARMACY, svc.KIND_QUERY, rid, body)
    with pytest.raises(svc.PeerUnauthenticated):
        consortium.galleries[SCHOOL].score(to_pharmacy)
    with pytest.raises(svc.PeerUnauthenticated):
        consortium.galleries[SCHOOL].score(b"garbage")


def test_a_crafted_query_is_refused_by_the_key_holder_and_releases_nothing(
        consortium: Consortium) -> None:
    """A dishonest querier (the Hospital) skips encrypt_query's normalisation and scales one
    coordinate: V (the Pharmacy) refuses, G tells Q only "refused"."""
    ctx = consortium.ctx
    bundle = ps.load_public_bundle(ctx, consortium.holders[PHARMACY]._bundle)
    crafted = consortium.refs[SCHOOL][5].copy()
    crafted[0] *= 30.0
    rid = consortium.requests.record(HOSPITAL)
    sealed = svc.seal(consortium.keys[HOSPITAL], SCHOOL, svc.KIND_QUERY, rid,
                      ps.encrypt_values(ctx, bundle, list(crafted)))
    reply = consortium.galleries[SCHOOL].score(sealed)
    env = svc.open_envelope(consortium.keys[HOSPITAL], reply,
                            [svc.KIND_REFUSED, svc.KIND_CANDIDATES])
    assert env.kind == svc.KIND_REFUSED and env.body == b""


def test_a_key_holder_that_stops_answering_times_out_with_nothing_enrolled(
        consortium: Consortium) -> None:
    release = threading.Event()
    honest = consortium.transport.handlers[(PHARMACY, "decide")]

    def hang(body: bytes) -> bytes:
        release.wait(30)
        return honest(body)

    consortium.transport.handlers[(PHARMACY, "decide")] = hang
    gallery = consortium.galleries[SCHOOL]
    saved = gallery._timeout
    gallery._timeout = 2.0
    enrolled: list[bool] = []
    try:
        rid = consortium.requests.record(HOSPITAL)
        started = time.monotonic()
        with pytest.raises(svc.ScreeningUnavailable):
            svc.screen_before_enrol(consortium.querier(HOSPITAL), rid,
                                    consortium.refs[PHARMACY][0], _local_none,
                                    lambda: enrolled.append(True))
        assert time.monotonic() - started < 60
    finally:
        release.set()
        gallery._timeout = saved
        consortium.transport.handlers[(PHARMACY, "decide")] = honest
    assert enrolled == []


@pytest.mark.parametrize("garbage", ["bits", "candidates"])
def test_a_party_that_returns_garbage_is_detected(consortium: Consortium,
                                                  garbage: str) -> None:
    """V answering with bits of its choosing (here: none match, as a V hiding a duplicate
    would) is caught by G's decoys; G answering a malformed candidate list is caught by Q."""
    if garbage == "bits":
        def lie(reply: bytes) -> bytes:
            env = svc.open_envelope(consortium.keys[SCHOOL], reply, [svc.KIND_BITS])
            return svc.seal(consortium.keys[PHARMACY], SCHOOL, svc.KIND_BITS,
                            env.request_id, bytes(len(env.body)))
        consortium.transport.tamper[(PHARMACY, "decide")] = lie
    else:
        def junk(reply: bytes) -> bytes:
            env = svc.open_envelope(consortium.keys[HOSPITAL], reply, [svc.KIND_CANDIDATES])
            return svc.seal(consortium.keys[SCHOOL], HOSPITAL, svc.KIND_CANDIDATES,
                            env.request_id, b'{"not": "a list"}')
        consortium.transport.tamper[(SCHOOL, "score")] = junk
    enrolled: list[bool] = []
    try:
        rid = consortium.requests.record(HOSPITAL)
        with pytest.raises(svc.ScreeningPartyDeviated):
            svc.screen_before_enrol(consortium.querier(HOSPITAL), rid,
                                    consortium.refs[SCHOOL][9], _local_none,
                                    lambda: enrolled.append(True))
    finally:
        consortium.transport.tamper.clear()
    assert enrolled == []


def test_the_steps_over_http(consortium: Consortium) -> None:
    """The same protocol through the gateway routes and HttpTransport (ASGI in process)."""
    clients = {}
    for org in ORGS:
        app = FastAPI()
        install_error_handlers(app)
        app.include_router(build_router(ScreeningRoles(consortium.holders[org],
                                                       consortium.galleries[org])))
        clients[org] = TestClient(app)
    transport = svc.HttpTransport(clients)
    saved = {org: consortium.galleries[org]._transport for org in ORGS}
    for org in ORGS:
        consortium.galleries[org]._transport = transport
    try:
        rid = consortium.requests.record(PHARMACY)
        q = svc.QuerierRole(consortium.ctx, consortium.keys[PHARMACY], transport)
        result = q.screen(rid, mated_sample(consortium.refs[HOSPITAL][11], 0.7,
                                            np.random.default_rng(3))[0])
        assert consortium.ids[HOSPITAL][11] in result.candidates[HOSPITAL]
        with pytest.raises(svc.ScreeningRefusedByPeer):  # replay: G answers 403
            q.screen(rid, consortium.refs[HOSPITAL][11])
    finally:
        for org in ORGS:
            consortium.galleries[org]._transport = saved[org]


def test_work_made_ahead_is_kept_while_the_key_holder_keeps_its_key(
        consortium: Consortium) -> None:
    """Q's encryptions of zero and G's block pads are made between screenings and kept
    while the key holder's key is the same, though each query fetches its bundle anew (as
    the gateways do); when the key holder restarts with a new key pair, both are made anew
    under it, and every answer stays the plaintext's."""
    ctx, rng = consortium.ctx, np.random.default_rng(5)
    querier = consortium.querier(HOSPITAL)
    school = consortium.galleries[SCHOOL]  # G; its V is the Pharmacy
    handlers = {step: consortium.transport.handlers[(PHARMACY, step)]
                for step in ("key", "decide")}
    photo = mated_sample(consortium.refs[SCHOOL][42], 0.65, rng)[0]
    want = sorted(consortium.ids[SCHOOL][i] for i in
                  ps.plaintext_reference(consortium.refs[SCHOOL], photo, THRESHOLD))

    def screened() -> None:
        result = querier.screen(consortium.requests.record(HOSPITAL), photo)
        assert result.candidates[SCHOOL] == want and consortium.ids[SCHOOL][42] in want
        deadline = time.monotonic() + 60
        while (len(querier._zeros[PHARMACY]) < ps.QUERY_CTS
               or len(school._zeros[PHARMACY]) < len(school._gallery.blocks)):
            assert time.monotonic() < deadline, "nothing was made ahead"
            time.sleep(0.05)

    school.cache_bundles = False
    try:
        screened()
        made_ahead = querier._zeros[PHARMACY], school._zeros[PHARMACY]
        screened()
        assert (querier._zeros[PHARMACY], school._zeros[PHARMACY]) == made_ahead
        restarted = svc.KeyHolderRole(ctx, ps.KeyHolder.generate(ctx),
                                      consortium.keys[PHARMACY], consortium.requests)
        consortium.transport.handlers[(PHARMACY, "key")] = restarted.key
        consortium.transport.handlers[(PHARMACY, "decide")] = restarted.decide
        screened()
        assert querier._zeros[PHARMACY] is not made_ahead[0]
        assert school._zeros[PHARMACY] is not made_ahead[1]
    finally:
        school.cache_bundles = True
        for step, handler in handlers.items():
            consortium.transport.handlers[(PHARMACY, step)] = handler
