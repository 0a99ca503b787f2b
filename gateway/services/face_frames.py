"""Frames sent over HTTP -> face_engine Frames, timed on the server's clock.

A client sends each frame with `offset_s`, seconds since it received the challenge; the frame's
timestamp is the challenge's `issued_at` (server time, from the face_challenges table) plus
that offset, so no client clock is involved.
"""

from __future__ import annotations

from face_engine.liveness import Frame
from gateway.core.errors import NotFound
from gateway.store import Database


def challenge_frames(db: Database, challenge_id: str,
                     frames: list[tuple[bytes, float]]) -> list[Frame]:
    row = db.query_one("SELECT issued_at FROM face_challenges WHERE challenge_id = ?",
                       (challenge_id,))
    if row is None:
        raise NotFound("no such face challenge for this flow", code="challenge_not_found")
    issued_at = float(row["issued_at"])
    return [Frame(image, issued_at + offset) for image, offset in frames]
