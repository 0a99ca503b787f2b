"""A passport revocation's intent, kept so a crash or a lost answer strands nothing.

One row per request: (passport, the registrar's org and name, fraudulent, sha256 of the
reason). `passport_revocation.py` writes it before `Passport:Revoke` is submitted, appends
each endorsed transaction (id and result) before it goes to the orderer (the Fabric client's
`before_submit` hook), and stores the answer (`outcome`) once every step after the ledger
(KYC credentials revoked and the status list published, the holder row marked, sessions
ended) is done. A kill -9 between any two steps leaves the row without an outcome; it is
reconciled with the ledger by the same registrar's retry of the same request, at the
gateway's start, or by the next revocation request of any passport at this gateway
(`unfinished`), whichever comes first.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.fabric import Transaction

if TYPE_CHECKING:
    from gateway.store import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS passport_revocations (
    intent_id INTEGER PRIMARY KEY AUTOINCREMENT,
    passport_id TEXT NOT NULL,
    org TEXT NOT NULL,
    registrar TEXT NOT NULL,
    fraudulent INTEGER NOT NULL,
    reason_digest TEXT NOT NULL,
    txs TEXT NOT NULL DEFAULT '[]',
    outcome TEXT,
    created REAL NOT NULL,
    UNIQUE (passport_id, org, registrar, fraudulent, reason_digest)
);
"""
# An unfinished intent whose request the ledger does not show after this long is dropped by
# the sweep: no transaction stays in the orderer that long, so nothing of it can commit later.
DROP_AFTER_S = 600.0


@dataclass(frozen=True)
class Request:
    """What makes two calls the same revocation request."""

    passport_id: str
    org: str
    registrar: str
    fraudulent: bool
    reason: str

    @property
    def reason_digest(self) -> str:
        return hashlib.sha256(self.reason.encode()).hexdigest()


@dataclass(frozen=True)
class Intent:
    intent_id: int
    request: Request | None  # None in a sweep: the reason is kept only as its digest
    passport_id: str
    org: str
    fraudulent: bool
    txs: str
    outcome: dict[str, Any] | None
    created: float


def _intent(row: Any, request: Request | None = None) -> Intent:
    outcome = json.loads(row["outcome"]) if row["outcome"] is not None else None
    return Intent(int(row["intent_id"]), request, str(row["passport_id"]), str(row["org"]),
                  bool(row["fraudulent"]), str(row["txs"]), outcome, float(row["created"]))


class RevocationIntents:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.ensure(SCHEMA)

    def find(self, request: Request) -> Intent | None:
        row = self.db.query_one(
            "SELECT * FROM passport_revocations WHERE passport_id = ? AND org = ? AND "
            "registrar = ? AND fraudulent = ? AND reason_digest = ?",
            (request.passport_id, request.org, request.registrar, int(request.fraudulent),
             request.reason_digest))
        return None if row is None else _intent(row, request)

    def begin(self, request: Request) -> Intent:
        """Record the request before anything is submitted (or find it: a retry)."""
        found = self.find(request)
        if found is not None:
            return found
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO passport_revocations (passport_id, org, registrar, fraudulent, "
                "reason_digest, created) VALUES (?, ?, ?, ?, ?, ?)",
                (request.passport_id, request.org, request.registrar, int(request.fraudulent),
                 request.reason_digest, time.time()))
        intent = self.find(request)
        assert intent is not None
        return intent

    def record_tx(self, intent_id: int, transaction: Transaction) -> None:
        """Append the endorsed transaction about to be sent (committed before it is)."""
        entry = {"tx_id": transaction.transaction_id,
                 "result": transaction.result.decode("utf-8", "replace")}
        with self.db.transaction() as conn:
            row = conn.execute("SELECT txs FROM passport_revocations WHERE intent_id = ?",
                               (intent_id,)).fetchone()
            recorded = json.loads(row["txs"]) if row is not None else []
            conn.execute("UPDATE passport_revocations SET txs = ? WHERE intent_id = ?",
                         (json.dumps([*recorded, entry]), intent_id))

    def txs(self, intent_id: int) -> str:
        row = self.db.query_one("SELECT txs FROM passport_revocations WHERE intent_id = ?",
                                (intent_id,))
        return str(row["txs"]) if row is not None else "[]"

    def finish(self, intent_id: int, outcome: dict[str, Any]) -> None:
        with self.db.transaction() as conn:
            conn.execute("UPDATE passport_revocations SET outcome = ? WHERE intent_id = ?",
                         (json.dumps(outcome), intent_id))

    def drop(self, intent_id: int) -> None:
        """The ledger refused the request (or never got it): nothing to reconcile."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM passport_revocations WHERE intent_id = ?", (intent_id,))

    def unfinished(self) -> list[Intent]:
        return [_intent(row) for row in self.db.query(
            "SELECT * FROM passport_revocations WHERE outcome IS NULL ORDER BY intent_id")]
