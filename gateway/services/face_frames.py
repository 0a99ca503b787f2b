"""Frames sent over HTTP -> face_engine Frames, timed by their arrival at the gateway.

A frame's time is when the gateway received it (`gateway_time()`, read as the request body is
parsed), never a value the client sends: a client that claimed capture times could make any
pace of turning look right. Frames uploaded one per request (the pharmacy counter's streamed
check) therefore carry real arrival times, and the liveness timing checks (no frame after the
deadline, frames in capture order) judge those. An answer sent as one request (every other
flow, and the counter's photo upload fallback) has a single arrival time: all its frames carry
it, so only "the whole answer arrived before the deadline" is checked there, not the pace of
the turns (docs/face.md, "Liveness timing").
"""

from __future__ import annotations

import time

from face_engine.liveness import Frame
from gateway.core.errors import NotFound
from gateway.store import Database

# The wall clock when the monotonic clock read zero, taken once per process: gateway_time()
# then never jumps when an operator or NTP sets the wall clock, yet still reads as unix
# seconds, comparable with the challenge times kept in the database.
_WALL_MINUS_MONOTONIC = time.time() - time.monotonic()


def gateway_time() -> float:
    """Now, on the clock that times face challenges and frame arrivals (unix seconds)."""
    return time.monotonic() + _WALL_MINUS_MONOTONIC


def challenge_frames(db: Database, challenge_id: str,
                     frames: list[tuple[bytes, float]]) -> list[Frame]:
    """`frames` = (image, arrival time) pairs of an answer to `challenge_id`."""
    row = db.query_one("SELECT issued_at FROM face_challenges WHERE challenge_id = ?",
                       (challenge_id,))
    if row is None:
        raise NotFound("no such face challenge for this flow", code="challenge_not_found")
    return [Frame(image, arrived_at) for image, arrived_at in frames]
