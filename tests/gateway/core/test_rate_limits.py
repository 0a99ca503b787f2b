"""Rate limits (issue #16, item 5): per source address and per staff token, with tighter
buckets for face work; a refusal is a typed 429 `rate_limited` with `retry_after_s` and a
`Retry-After` header, sent before the body is read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from hardening_kit import bare_app, client

from gateway.core.config import Settings
from gateway.core.rate_limits import FACE_WORK, TokenBuckets

SLOW = 0.001  # tokens a second: nothing refills during a test


def _app(tmp_path: Path, **limits: Any) -> FastAPI:
    app = bare_app(tmp_path, **limits)

    @app.get("/test-only/ping")
    async def ping() -> str:
        return "pong"

    return app


def _assert_limited(response: Any) -> int:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["code"] == "rate_limited"
    retry = error["details"]["retry_after_s"]
    assert isinstance(retry, int) and retry >= 1
    assert response.headers["retry-after"] == str(retry)
    assert response.headers["content-type"] == "application/json"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    return retry


async def test_a_source_address_over_its_limit_gets_a_typed_429(tmp_path: Path) -> None:
    app = _app(tmp_path, rate_limit_per_source_rps=SLOW, rate_limit_per_source_burst=3)
    async with client(app) as http:
        for _ in range(3):
            assert (await http.get("/test-only/ping")).status_code == 200
        retry = _assert_limited(await http.get("/test-only/ping"))
    assert retry >= 900  # one token at 0.001/s


async def test_each_staff_token_has_its_own_bucket(tmp_path: Path) -> None:
    app = _app(tmp_path, rate_limit_per_token_rps=SLOW, rate_limit_per_token_burst=2)
    a, b = {"Authorization": "Bearer mipst_a"}, {"Authorization": "Bearer mipst_b"}
    async with client(app) as http:
        for _ in range(2):
            assert (await http.get("/test-only/ping", headers=a)).status_code == 200
        _assert_limited(await http.get("/test-only/ping", headers=a))
        # Another token from the same address, and requests without a token, go on.
        assert (await http.get("/test-only/ping", headers=b)).status_code == 200
        assert (await http.get("/test-only/ping")).status_code == 200


class Body:
    def __init__(self) -> None:
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.pulled += 1
        yield b"{}"


async def test_face_work_has_a_tighter_bucket_and_its_bodies_are_not_read(
        tmp_path: Path) -> None:
    app = _app(tmp_path, rate_limit_face_per_token_rps=SLOW, rate_limit_face_per_token_burst=1)
    staff = {"Authorization": "Bearer mipst_pharmacist", "Content-Type": "application/json"}
    verdict = "/api/v1/pharmacy/pickups/p1/verdict"
    async with client(app) as http:
        first = await http.post(verdict, content=b"{}", headers=staff)
        assert first.status_code != 429  # refused later, for its token (no state here)
        body = Body()
        _assert_limited(await http.post(verdict, content=body, headers=staff))
        assert body.pulled == 0
        _assert_limited(await http.put("/api/v1/pharmacy/pickups/p2/frames/0",
                                       content=b"{}", headers=staff))
        # Work without faces under the same token is not limited by the face bucket.
        assert (await http.get("/test-only/ping", headers=staff)).status_code == 200


def test_face_work_routes() -> None:
    for path in ("/api/v1/enrolments/current/frames", "/api/v1/holders/sessions/unlock",
                 "/api/v1/holders/recoveries/r/finish", "/api/v1/pharmacy/pickups/p/frames",
                 "/api/v1/pharmacy/pickups/p/frames/3", "/api/v1/pharmacy/pickups/p/verdict"):
        assert FACE_WORK.match(path), path
    for path in ("/api/v1/pharmacy/pickups", "/api/v1/pharmacy/pickups/p/dispense",
                 "/api/v1/enrolments", "/api/v1/holders/sessions",
                 "/api/v1/holders/sessions/s/unlock", "/api/v1/holders/sessions/current"):
        assert not FACE_WORK.match(path), path


def test_buckets_refill_at_their_rate_and_hold_at_most_max_keys() -> None:
    now = [0.0]
    buckets = TokenBuckets(2.0, 2, max_keys=3, clock=lambda: now[0])
    for _ in range(2):
        assert buckets.wait_s("k") == 0
        buckets.take("k")
    assert buckets.wait_s("k") == 0.5
    now[0] = 0.5
    assert buckets.wait_s("k") == 0
    for key in ("a", "b", "c", "d"):
        buckets.wait_s(key)
    assert len(buckets._buckets) == 3


def test_defaults_leave_room_for_counters_and_benches() -> None:
    # scripts/bench_gateway.py runs 8 counters under one pharmacist token (about 12 face
    # requests a second); bench_mip sends 50 dispenses at once.
    defaults = Settings()
    assert defaults.rate_limit_face_per_token_rps >= 20
    assert defaults.rate_limit_per_token_burst >= 100
    assert defaults.face_queue_max >= 2 * 12
