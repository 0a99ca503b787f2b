"""Face checks in flight, reserved against a lockout's failure budget before any face work.

A lockout that reads the failure count, runs the face check and only then records the
outcome lets concurrent answers all pass the read: twelve wrong faces sent at once were all
matched against a limit of five. So each 1:1 decision under a lockout (pharmacy pickup,
desk unlock) first reserves an attempt, in the same write transaction (BEGIN IMMEDIATE,
gateway.store.Database.transaction) that counts the subject's failures and the attempts
already in flight: with `limit` of them taken, the next is refused before any face work.
After the decision the attempt is settled: released, and in the same transaction recorded
as a failure where the outcome counts as one. At most `limit` answers are therefore ever
evaluated within a window, however many arrive together.

An attempt left behind by a crash counts as in flight until its window passes (a failure's
weight, never more), then it is swept.
"""

from __future__ import annotations

import sqlite3

SCHEMA = """
CREATE TABLE IF NOT EXISTS face_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    flow TEXT NOT NULL,
    subject TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS face_attempts_subject ON face_attempts(flow, subject, at);
"""


def in_flight(conn: sqlite3.Connection, flow: str, subject: str, since: float) -> int:
    """Attempts of (flow, subject) reserved after `since` and not yet settled."""
    (count,) = conn.execute(
        "SELECT COUNT(*) FROM face_attempts WHERE flow = ? AND subject = ? AND at > ?",
        (flow, subject, since)).fetchone()
    return int(count)


def reserve(conn: sqlite3.Connection, flow: str, subject: str, now: float,
            since: float) -> int:
    """Record one attempt in flight (inside the caller's transaction, after its count);
    sweeps attempts older than `since` first. Returns the attempt's id."""
    conn.execute("DELETE FROM face_attempts WHERE flow = ? AND at <= ?", (flow, since))
    cur = conn.execute("INSERT INTO face_attempts (flow, subject, at) VALUES (?, ?, ?)",
                       (flow, subject, now))
    assert cur.lastrowid is not None
    return int(cur.lastrowid)


def release(conn: sqlite3.Connection, attempt_id: int) -> None:
    conn.execute("DELETE FROM face_attempts WHERE id = ?", (attempt_id,))
