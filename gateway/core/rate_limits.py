"""Request rate limits: in-memory token buckets per staff token and per source address.

Every request takes one token from the bucket of its source address (the TCP peer, or the
address uvicorn's `--proxy-headers` takes from a trusted proxy) and, when it carries a bearer
token, from that token's bucket; a face-work request (enrolment frames, desk unlock, recovery
finish, pickup frames and verdict: `FACE_WORK`) also from the tighter face buckets of both.
A request finding any of them empty is refused before its body is read with 429
`rate_limited`, `details.retry_after_s` and a `Retry-After` header (the seconds until that
bucket holds a token again), and takes nothing from the others.

Buckets are keyed by sha256 of the token, never the token itself (a memory dump or a repr
shows no credential), and by the address. Each family keeps at most `MAX_KEYS` buckets,
least recently used first out: a sprayer of random tokens or addresses costs bounded memory;
an evicted bucket comes back full, which only matters for a key idle long enough to be the
least recently used, by which time it has mostly refilled. The limits are per process:
a restart refills every bucket (they shape load, they are not a lockout; lockouts are in
SQLite, gateway/services/face_attempts.py).
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

MAX_KEYS = 10_000

# Routes whose requests run face models (each up to 12 frames through detection, quality and
# embedding): the face buckets apply to them too. Matched on the concrete path, before
# routing, so no request body is read first.
FACE_WORK = re.compile(
    r"^/api/v1/(?:enrolments/current/frames"
    r"|holders/sessions/unlock"
    r"|holders/recoveries/[^/]+/finish"
    r"|pharmacy/pickups/[^/]+/(?:frames(?:/[^/]+)?|verdict))$")


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """One family of token buckets: `rate` tokens a second, at most `burst` held."""

    def __init__(self, rate: float, burst: float, *, max_keys: int = MAX_KEYS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate, self.burst, self.max_keys, self.clock = rate, float(burst), max_keys, clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def wait_s(self, key: str) -> float:
        """0 when `key`'s bucket holds a token (not taken), else the seconds until it will."""
        with self._lock:
            bucket = self._refilled(key)
            return 0.0 if bucket.tokens >= 1 else (1 - bucket.tokens) / self.rate

    def take(self, key: str) -> None:
        with self._lock:
            self._refilled(key).tokens -= 1

    def _refilled(self, key: str) -> _Bucket:
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
            self._buckets[key] = bucket
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        return bucket


@dataclass(frozen=True)
class RateLimitSettings:
    per_token_rps: float
    per_token_burst: int
    per_source_rps: float
    per_source_burst: int
    face_per_token_rps: float
    face_per_token_burst: int
    face_per_source_rps: float
    face_per_source_burst: int


class RateLimiter:
    """The gateway's four bucket families; `check` decides one request."""

    def __init__(self, limits: RateLimitSettings,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.token = TokenBuckets(limits.per_token_rps, limits.per_token_burst, clock=clock)
        self.source = TokenBuckets(limits.per_source_rps, limits.per_source_burst, clock=clock)
        self.face_token = TokenBuckets(limits.face_per_token_rps, limits.face_per_token_burst,
                                       clock=clock)
        self.face_source = TokenBuckets(limits.face_per_source_rps,
                                        limits.face_per_source_burst, clock=clock)

    def check(self, path: str, source: str, bearer: str | None) -> int | None:
        """None when the request may go on (its tokens are taken), else the whole seconds
        (at least 1) to wait before asking again (nothing is taken)."""
        token_key = None if bearer is None else hashlib.sha256(bearer.encode()).hexdigest()
        families: list[tuple[TokenBuckets, str]] = [(self.source, source)]
        if token_key is not None:
            families.append((self.token, token_key))
        if FACE_WORK.match(path):
            families.append((self.face_source, source))
            if token_key is not None:
                families.append((self.face_token, token_key))
        wait = max(buckets.wait_s(key) for buckets, key in families)
        if wait > 0:
            return max(1, math.ceil(wait))
        for buckets, key in families:
            buckets.take(key)
        return None


def bearer_of(authorization: str | None) -> str | None:
    """The credential of an `Authorization: Bearer ...` header (any scheme's credential
    counts: a client cannot dodge its token's bucket by misspelling the scheme)."""
    if not authorization:
        return None
    _scheme, _, credential = authorization.strip().partition(" ")
    return credential.strip() or None
