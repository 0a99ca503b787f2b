"""Face-check lockouts per (subject, source), with exponential backoff.

A lockout guards a 1:1 face decision against guessing: a pharmacy pickup (subject: the
prescription) and a desk unlock (subject: the passport). It is kept per *source*, the staff
member whose counter or desk runs the check (`source_of`), never per subject alone: a
lockout per subject let any one pharmacist with the grant, or any desk with a passport id,
lock the patient out everywhere with a few wrong faces. Now a source that keeps failing
locks only itself out of that subject; the patient goes on at any other counter or desk.

Only what the person in front of the camera could have caused counts (a live face that does
not match, a liveness refusal, a wrong password): the callers count nothing for a bad image,
no face, two faces or a late answer. `policy.max_failures` counted failures within
`policy.window_s` lock the (subject, source) for `policy.lockout_s`, doubled at each further
lock of the same pair (`locks`), up to `policy.lockout_max_s`; a success there clears the
failures and the backoff. After a lock ends the failures start afresh, so the holder can
always get through with the right face (and password) once the backoff has passed.

Counting is atomic: `reserve` takes one of the pair's remaining checks before any face work,
in one write transaction (BEGIN IMMEDIATE, gateway.store.Database.transaction) that reads the
lock, the failures and the checks in flight (face_attempts.py); `fail` releases the
reservation, records the failure and, where it is the last one the budget allows, sets the
lock, in one transaction. Of any number of answers arriving together, at most the budget's
are ever evaluated. Failures and locks live in SQLite: a restart does not reset them.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from gateway.core.errors import Locked
from gateway.core.security import StaffMember
from gateway.store import Database

from . import face_attempts

SCHEMA = """
CREATE TABLE IF NOT EXISTS face_failures (
    flow TEXT NOT NULL,
    subject TEXT NOT NULL,
    source TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS face_failures_pair ON face_failures(flow, subject, source, at);
CREATE TABLE IF NOT EXISTS face_locks (
    flow TEXT NOT NULL,
    subject TEXT NOT NULL,
    source TEXT NOT NULL,
    until REAL NOT NULL,
    locks INTEGER NOT NULL,
    PRIMARY KEY (flow, subject, source)
);
"""


def source_of(member: StaffMember) -> str:
    """The counter or desk a check runs at: the staff member (org and name) behind it."""
    return f"{member.org}/{member.name}"


@dataclass(frozen=True)
class LockoutPolicy:
    max_failures: int
    window_s: float
    lockout_s: float
    lockout_max_s: float

    def lockout_after(self, locks: int) -> float:
        """How long the (locks+1)-th lock of one pair lasts: doubled each time, capped."""
        return min(self.lockout_max_s, self.lockout_s * 2.0 ** min(locks, 62))


class FaceLockouts:
    """The lockouts of one flow (`pickup`, `holder_unlock`)."""

    def __init__(self, db: Database, flow: str, policy: LockoutPolicy, *,
                 message: str, code: str = "locked") -> None:
        self.db, self.flow, self.policy = db, flow, policy
        self.message, self.code = message, code
        db.ensure(SCHEMA)
        db.ensure(face_attempts.SCHEMA)

    def _attempt_key(self, subject: str, source: str) -> str:
        return f"{subject}\x1f{source}"

    def locked_until(self, subject: str, source: str, now: float | None = None
                     ) -> float | None:
        now = time.time() if now is None else now
        row = self.db.query_one(
            "SELECT until FROM face_locks WHERE flow = ? AND subject = ? AND source = ?",
            (self.flow, subject, source))
        if row is None or row["until"] <= now:
            return None
        return float(row["until"])

    def locks(self, subject: str, source: str) -> int:
        """How many times the pair has been locked since its last success (the backoff)."""
        row = self.db.query_one(
            "SELECT locks FROM face_locks WHERE flow = ? AND subject = ? AND source = ?",
            (self.flow, subject, source))
        return 0 if row is None else int(row["locks"])

    def failures(self, subject: str, source: str | None = None) -> int:
        """Counted failures of the subject (at one source, or at all) not yet turned into a
        lock."""
        sql = "SELECT COUNT(*) AS n FROM face_failures WHERE flow = ? AND subject = ?"
        params: tuple[str, ...] = (self.flow, subject)
        if source is not None:
            sql, params = sql + " AND source = ?", (*params, source)
        row = self.db.query_one(sql, params)
        return 0 if row is None else int(row["n"])

    def _locked(self, retry_after_s: int) -> Locked:
        return Locked(self.message, code=self.code,
                      details={"retry_after_s": max(1, retry_after_s)})

    def require_unlocked(self, subject: str, source: str) -> None:
        now = time.time()
        until = self.locked_until(subject, source, now)
        if until is not None:
            raise self._locked(int(until - now) + 1)

    def reserve(self, subject: str, source: str) -> int:
        """Take one of the pair's remaining checks (423 when none is left); the caller settles
        it with `release`, `fail` or `succeed`."""
        now = time.time()
        since = now - self.policy.window_s
        key = self._attempt_key(subject, source)
        with self.db.transaction() as conn:
            lock = conn.execute(
                "SELECT until FROM face_locks WHERE flow = ? AND subject = ? AND source = ?",
                (self.flow, subject, source)).fetchone()
            if lock is not None and lock["until"] > now:
                retry = int(lock["until"] - now) + 1
            else:
                (failures,) = conn.execute(
                    "SELECT COUNT(*) FROM face_failures WHERE flow = ? AND subject = ? "
                    "AND source = ? AND at > ?", (self.flow, subject, source, since)).fetchone()
                taken = failures + face_attempts.in_flight(conn, self.flow, key, since)
                if taken < self.policy.max_failures:
                    return face_attempts.reserve(conn, self.flow, key, now, since)
                retry = 1  # the checks in flight decide; ask again shortly
        raise self._locked(retry)

    def release(self, attempt_id: int) -> None:
        """Settle a reservation without counting it (not evidence about the person)."""
        with self.db.transaction() as conn:
            face_attempts.release(conn, attempt_id)

    def fail(self, subject: str, source: str, attempt_id: int) -> bool:
        """Count a failure (releasing its reservation); True if it locked the pair."""
        now = time.time()
        pair = (self.flow, subject, source)
        with self.db.transaction() as conn:
            face_attempts.release(conn, attempt_id)
            conn.execute("DELETE FROM face_failures WHERE flow = ? AND at <= ?",
                         (self.flow, now - self.policy.window_s))
            conn.execute("INSERT INTO face_failures (flow, subject, source, at) "
                         "VALUES (?, ?, ?, ?)", (*pair, now))
            (count,) = conn.execute(
                "SELECT COUNT(*) FROM face_failures WHERE flow = ? AND subject = ? "
                "AND source = ?", pair).fetchone()
            if count < self.policy.max_failures:
                return False
            row = conn.execute("SELECT locks FROM face_locks WHERE flow = ? AND subject = ? "
                               "AND source = ?", pair).fetchone()
            locks = 0 if row is None else int(row["locks"])
            conn.execute(
                "INSERT INTO face_locks (flow, subject, source, until, locks) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(flow, subject, source) DO UPDATE SET "
                "until = excluded.until, locks = excluded.locks",
                (*pair, now + self.policy.lockout_after(locks), locks + 1))
            # The count starts afresh once the lock ends.
            conn.execute("DELETE FROM face_failures WHERE flow = ? AND subject = ? "
                         "AND source = ?", pair)
        return True

    def succeed(self, subject: str, source: str, attempt_id: int | None = None,
                conn: sqlite3.Connection | None = None) -> None:
        """The right person got through at this source: its failures and backoff go (with
        `conn`, in the caller's transaction, e.g. with the flow's own outcome)."""
        if conn is None:
            with self.db.transaction() as own:
                self.succeed(subject, source, attempt_id, own)
            return
        pair = (self.flow, subject, source)
        if attempt_id is not None:
            face_attempts.release(conn, attempt_id)
        conn.execute("DELETE FROM face_failures WHERE flow = ? AND subject = ? "
                     "AND source = ?", pair)
        conn.execute("DELETE FROM face_locks WHERE flow = ? AND subject = ? "
                     "AND source = ?", pair)

    def clear(self, subject: str, conn: sqlite3.Connection | None = None) -> None:
        """Forget every failure and lock of the subject (the holder proved themselves
        otherwise, e.g. a guardian recovery)."""
        sql = ("DELETE FROM face_failures WHERE flow = ? AND subject = ?",
               "DELETE FROM face_locks WHERE flow = ? AND subject = ?")
        if conn is not None:
            for statement in sql:
                conn.execute(statement, (self.flow, subject))
            return
        with self.db.transaction() as own:
            for statement in sql:
                own.execute(statement, (self.flow, subject))
