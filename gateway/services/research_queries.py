"""A DP query named by the researcher's `request_id`: debited at most once on a retry, its
answer released once and then only repeated.

`POST /analytics/queries` with a `request_id` (the researcher's own idempotency key) writes,
in this order, each step committed before the next:

1. the intent, keyed by (researcher org, researcher, request_id): the dataset, a digest of
   the query's terms (dataset, query document, micro-epsilon), the epsilon, and the nonce and
   query digest of the debit to come. No record, no answer: nothing of the data;
2. each endorsed `Research:Debit` transaction (id and result) before it goes to the orderer
   (the Fabric client's `before_submit` hook);
3. the remaining budget once the debit committed;
4. the released answer (the noisy value, the noise description, the budget left) before it
   leaves the gateway; the response is that stored answer.

A retry of the same request_id (after a kill -9 at any point, or a lost answer) reconciles:

- answer stored: that answer, byte for byte the same; no debit, no new noise draw;
- debit known committed, or a recorded transaction committed VALID (Fabric's commit status,
  `dispense_recovery.committed_result`, 2 s per transaction): the answer is computed now
  from that debit, stored, then released; no second debit;
- no recorded transaction committed (never sent, never ordered, invalidated): the debit is
  submitted again with the same query digest;
- the ledger refused the debit (budget exhausted, not admitted, MVCC after every retry):
  the intent is dropped and the refusal answered; a later call starts afresh.

The same request_id with other terms is 409 `request_id_reused`, and changes nothing. Rows
stay: each is the record of what one request_id paid for and released (no data in it), and a
row a crash left before its answer waits for the researcher's retry, the only caller that can
still see its answer.

Why this never releases more than was paid (the DP argument): the privacy loss of a debit is
that of the ONE noisy answer anyone sees for it. The answer is computed after the debit
committed and leaves the gateway only as the stored copy, so every response for a debit
repeats one draw: post-processing of a released output, no further loss. A draw computed
but not stored before a crash never left the process (nothing logs it), so the retry's draw
is still the only one ever released for that debit. Storing the answer is fine: it is a
public DP output (the gateway operator already holds the records themselves).

Without a request_id a call works as before (analytics/service.py): nothing is recorded, and
an unknown outcome spends budget for an answer nobody sees, never the other way round.

Limit (as for dispenses): a recorded transaction still in the orderer when its commit status
timed out and the debit was submitted again can commit too; the budget then pays twice for
one answer (over-charged, never under-charged).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chaincode.protocol.canonical import canonical_json
from gateway.analytics import AnalyticsService, DatasetSchema, LedgerBudget
from gateway.analytics.errors import BudgetError, LedgerUnavailable
from gateway.analytics.ledger import budget_error
from gateway.analytics.queries import Query, query_document
from gateway.analytics.service import one_per_holder, query_digest
from gateway.core.errors import Conflict
from gateway.core.security import StaffMember
from gateway.fabric import Contract, GatewayError, Transaction

from .dispense_recovery import committed_result
from .keyed_locks import KeyedLocks

if TYPE_CHECKING:
    from gateway.store import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS research_queries (
    org TEXT NOT NULL,
    researcher TEXT NOT NULL,
    request_id TEXT NOT NULL,
    dataset_id TEXT NOT NULL,
    terms TEXT NOT NULL,
    epsilon_micro INTEGER NOT NULL,
    nonce TEXT NOT NULL,
    query_digest TEXT NOT NULL,
    debit_txs TEXT NOT NULL DEFAULT '[]',
    remaining INTEGER,
    answer TEXT,
    created REAL NOT NULL,
    PRIMARY KEY (org, researcher, request_id)
);
"""


def terms_digest(dataset_id: str, query: Query) -> str:
    """What makes a retry the same query: the dataset, the query and its epsilon."""
    return hashlib.sha256(canonical_json({
        "dataset_id": dataset_id, "query": query_document(query),
        "epsilon_micro": query.epsilon_micro})).hexdigest()


@dataclass(frozen=True)
class QueryIntent:
    key: tuple[str, str, str]
    terms: str
    nonce: str
    query_digest: str
    debit_txs: str
    remaining: int | None
    answer: dict[str, Any] | None


class QueryIntents:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.ensure(SCHEMA)
        # One call per request_id at a time (a double click waits, then gets the answer).
        self.locks = KeyedLocks()

    def find(self, key: tuple[str, str, str]) -> QueryIntent | None:
        row = self.db.query_one("SELECT * FROM research_queries WHERE org = ? AND "
                                "researcher = ? AND request_id = ?", key)
        if row is None:
            return None
        return QueryIntent(key, str(row["terms"]), str(row["nonce"]), str(row["query_digest"]),
                           str(row["debit_txs"]),
                           None if row["remaining"] is None else int(row["remaining"]),
                           None if row["answer"] is None else json.loads(row["answer"]))

    def begin(self, key: tuple[str, str, str], dataset_id: str, query: Query,
              terms: str) -> QueryIntent:
        nonce = secrets.token_hex(16)
        digest = query_digest(dataset_id, query, nonce)
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO research_queries (org, researcher, request_id, dataset_id, terms, "
                "epsilon_micro, nonce, query_digest, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*key, dataset_id, terms, query.epsilon_micro, nonce, digest, time.time()))
        return QueryIntent(key, terms, nonce, digest, "[]", None, None)

    def record_tx(self, key: tuple[str, str, str], transaction: Transaction) -> None:
        entry = {"tx_id": transaction.transaction_id,
                 "result": transaction.result.decode("utf-8", "replace")}
        with self.db.transaction() as conn:
            row = conn.execute("SELECT debit_txs FROM research_queries WHERE org = ? AND "
                               "researcher = ? AND request_id = ?", key).fetchone()
            recorded = json.loads(row["debit_txs"]) if row is not None else []
            conn.execute("UPDATE research_queries SET debit_txs = ? WHERE org = ? AND "
                         "researcher = ? AND request_id = ?",
                         (json.dumps([*recorded, entry]), *key))

    def set_remaining(self, key: tuple[str, str, str], remaining: int) -> None:
        """The debit committed, leaving `remaining`."""
        with self.db.transaction() as conn:
            conn.execute("UPDATE research_queries SET remaining = ? WHERE org = ? AND "
                         "researcher = ? AND request_id = ?", (remaining, *key))

    def set_answer(self, key: tuple[str, str, str], answer: dict[str, Any]) -> None:
        """The released answer, stored before it leaves the gateway."""
        with self.db.transaction() as conn:
            conn.execute("UPDATE research_queries SET answer = ? WHERE org = ? AND "
                         "researcher = ? AND request_id = ?", (json.dumps(answer), *key))

    def drop(self, key: tuple[str, str, str]) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM research_queries WHERE org = ? AND researcher = ? AND "
                         "request_id = ?", key)


async def answer_once(intents: QueryIntents, contract: Contract, member: StaffMember,
                      request_id: str, dataset_id: str, query: Mapping[str, Any],
                      records: Sequence[Mapping[str, Any]], *, schema: DatasetSchema,
                      holder_field: str) -> dict[str, Any]:
    """The query's answer, debited and released at most once per request_id (module doc)."""
    budget = LedgerBudget(contract)
    service = AnalyticsService(budget, holder_field=holder_field)
    holders = one_per_holder(records, holder_field)
    prepared = await asyncio.to_thread(service.prepare, query, schema)
    spec = prepared.query
    terms = terms_digest(dataset_id, spec)
    key = (member.org, member.name, request_id)
    async with intents.locks.hold(key):
        intent = intents.find(key)
        if intent is not None and intent.terms != terms:
            raise Conflict("this request_id named another query; use a new one",
                           code="request_id_reused")
        if intent is not None and intent.answer is not None:
            return intent.answer  # released before: the same draw again, nothing spent
        if intent is None:
            intent = intents.begin(key, dataset_id, spec, terms)
        remaining = intent.remaining
        if remaining is None:
            remaining = await _debit_once(intents, budget, contract, intent, dataset_id,
                                          spec.epsilon_micro)
        release = await service.release(dataset_id, prepared, holders, remaining=remaining,
                                        digest=intent.query_digest, nonce=intent.nonce)
        answer = {**release.to_json(), "request_id": request_id}
        # Stored before it leaves: every later answer for this debit is this one.
        intents.set_answer(key, answer)
        return answer


async def _debit_once(intents: QueryIntents, budget: LedgerBudget, contract: Contract,
                      intent: QueryIntent, dataset_id: str, epsilon_micro: int) -> int:
    """The remaining budget after this intent's debit, submitted only if none committed."""
    try:
        committed = await committed_result(contract, intent.debit_txs)
    except GatewayError as exc:
        raise budget_error(exc) from exc
    if committed is not None and isinstance(committed.get("remaining_epsilon_micro"), int):
        remaining = int(committed["remaining_epsilon_micro"])
    else:
        try:
            remaining = await budget.debit(
                dataset_id, epsilon_micro, intent.query_digest,
                before_submit=lambda tx: intents.record_tx(intent.key, tx))
        except LedgerUnavailable:
            raise  # the outcome is unknown: the intent stays for the retry
        except BudgetError:
            intents.drop(intent.key)  # refused: nothing spent, nothing to reconcile
            raise
    intents.set_remaining(intent.key, remaining)
    return remaining
