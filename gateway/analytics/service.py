"""Differentially private answers over consenting accounts, paid for on the ledger first.

`AnalyticsService.answer(dataset_id, query, records, schema=...)`:

1. check the query (spec, epsilon cap, schema) and the records' shape; keep one record per
   account (the first), since the privacy guarantee is per account: the unit of privacy is
   one account, and a holder with k accounts in the dataset is protected at k x epsilon
   (gateway/analytics/dp.py);
2. build the OpenDP measurement and check its privacy map at d_in = 1 is within epsilon;
3. debit the epsilon (micro-epsilon, rounded up) on the ledger with the query digest
   sha256(canonical JSON of {dataset_id, query, epsilon_micro, nonce}), the nonce making every
   release's digest unique, and wait for the commit;
4. only then run the measurement on the records and return the release.

A refused debit (budget exhausted, unknown dataset, MVCC after every retry, ledger down)
raises its `BudgetError` before any record is read: nothing is computed or released.
The caller passes only records of accounts that granted `research.aggregate`
(`gateway.analytics.consent`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chaincode.protocol.canonical import canonical_json
from gateway.analytics.dp import DpAnswer, NoiseInfo, Plan, plan
from gateway.analytics.errors import QuerySpecError, RecordError
from gateway.analytics.ledger import BudgetLedger
from gateway.analytics.queries import (
    MAX_QUERY_EPSILON,
    MICRO,
    DatasetSchema,
    Query,
    check_against_schema,
    parse_query,
    query_document,
)

log = logging.getLogger("mip.analytics")

DEFAULT_HOLDER_FIELD = "account"


@dataclass(frozen=True)
class Release:
    """What leaves the service: the noisy answer and what it cost."""

    dataset_id: str
    kind: str
    value: float | int | None
    counts: dict[str, int] | None
    other: int | None
    epsilon: float  # requested (the measurement's privacy loss is at most this)
    epsilon_micro: int  # debited on the ledger
    remaining_epsilon_micro: int
    query_digest: str
    nonce: str  # with the spec, recomputes the digest: query_digest(dataset_id, spec, nonce)
    noise: tuple[NoiseInfo, ...]

    @property
    def remaining_epsilon(self) -> float:
        return self.remaining_epsilon_micro / MICRO

    @property
    def mechanism(self) -> str:
        return "+".join(dict.fromkeys(n.mechanism for n in self.noise))

    @property
    def noise_scale(self) -> float:
        """The scale of the noise on the released value (the last step)."""
        return self.noise[-1].scale

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset_id": self.dataset_id, "kind": self.kind, "value": self.value,
            "counts": self.counts, "other": self.other, "epsilon": self.epsilon,
            "epsilon_micro": self.epsilon_micro,
            "remaining_epsilon": self.remaining_epsilon,
            "remaining_epsilon_micro": self.remaining_epsilon_micro,
            "mechanism": self.mechanism, "noise_scale": self.noise_scale,
            "query_digest": self.query_digest, "nonce": self.nonce,
            "noise": [{"part": n.part, "mechanism": n.mechanism, "epsilon": n.epsilon,
                       "scale": n.scale, "accuracy_95": n.accuracy_95} for n in self.noise],
        }


def query_digest(dataset_id: str, query: Query, nonce: str) -> str:
    """Lowercase hex sha256 of the canonical JSON of the release's terms."""
    document = {"dataset_id": dataset_id, "query": query_document(query),
                "epsilon_micro": query.epsilon_micro, "nonce": nonce}
    return hashlib.sha256(canonical_json(document)).hexdigest()


def one_per_holder(
    records: Sequence[Mapping[str, Any]], holder_field: str
) -> list[Mapping[str, Any]]:
    """The first record of each account (`holder_field` holds the account pseudonym: two
    accounts of one holder are two ids, which nothing can link); RecordError if a record has
    no id."""
    seen: set[str] = set()
    kept = []
    for record in records:
        holder = record.get(holder_field) if isinstance(record, Mapping) else None
        if not isinstance(holder, str) or not holder:
            # Said without the record's content: it may be private.
            raise RecordError(f"every record needs a {holder_field!r} holder id")
        if holder not in seen:
            seen.add(holder)
            kept.append(record)
    return kept


class AnalyticsService:
    """Answers queries with differential privacy, debiting `ledger` before each release."""

    def __init__(
        self,
        ledger: BudgetLedger,
        *,
        max_epsilon: float = MAX_QUERY_EPSILON,
        holder_field: str = DEFAULT_HOLDER_FIELD,
    ) -> None:
        if not 0 < max_epsilon <= MAX_QUERY_EPSILON:
            raise ValueError(f"max_epsilon must be in (0, {MAX_QUERY_EPSILON}]")
        self.ledger = ledger
        self.max_epsilon = max_epsilon
        self.holder_field = holder_field

    def prepare(self, query: Query | Mapping[str, Any], schema: DatasetSchema) -> Plan:
        """Check the query and build its calibrated measurement (nothing is spent)."""
        spec = query if isinstance(query, Query) else parse_query(query)
        if spec.epsilon > self.max_epsilon:
            raise QuerySpecError(f"epsilon must be at most {self.max_epsilon} here")
        check_against_schema(spec, schema)
        return plan(spec)

    async def answer(
        self,
        dataset_id: str,
        query: Query | Mapping[str, Any],
        records: Sequence[Mapping[str, Any]],
        *,
        schema: DatasetSchema,
    ) -> Release:
        """Debit the query's epsilon on the ledger, then release its DP answer on `records`."""
        holders = one_per_holder(records, self.holder_field)
        # OpenDP's binary search and the mechanisms are CPU work: keep the event loop free.
        prepared = await asyncio.to_thread(self.prepare, query, schema)
        spec = prepared.query
        if not prepared.privacy_loss <= spec.epsilon:  # Plan checks it too; never release over
            raise QuerySpecError("measurement exceeds the epsilon")
        nonce = secrets.token_hex(16)
        digest = query_digest(dataset_id, spec, nonce)
        remaining = await self.ledger.debit(dataset_id, spec.epsilon_micro, digest)
        log.info("debited dataset %s: %s query, %d micro-epsilon, digest %s", dataset_id,
                 spec.kind, spec.epsilon_micro, digest)
        return await self.release(dataset_id, prepared, holders, remaining=remaining,
                                  digest=digest, nonce=nonce)

    async def release(self, dataset_id: str, prepared: Plan,
                      holders: Sequence[Mapping[str, Any]], *, remaining: int, digest: str,
                      nonce: str) -> Release:
        """Run the measurement (one noise draw) for a query whose debit committed. The
        caller releases each debit's draw at most once (research_queries.py)."""
        spec = prepared.query
        result: DpAnswer = await asyncio.to_thread(prepared.run, holders)
        return Release(
            dataset_id=dataset_id, kind=result.kind, value=result.value, counts=result.counts,
            other=result.other, epsilon=spec.epsilon, epsilon_micro=spec.epsilon_micro,
            remaining_epsilon_micro=remaining, query_digest=digest, nonce=nonce,
            noise=result.noise)

    async def remaining_epsilon(self, dataset_id: str) -> float:
        """The dataset's remaining budget in epsilon."""
        return await self.ledger.remaining(dataset_id) / MICRO
