"""The privacy budget on the ledger: the `Research` contract through the Gateway client.

`BudgetLedger` is what the analytics service needs (debit, remaining); `LedgerBudget`
implements it for a researcher's `Contract` on chaincode `mip`. A debit is a submitted
transaction that returns only once committed, endorsed by a majority of orgs (the chaincode's
policy: not even the owner org spends or resets a budget alone; chaincode/mip/research.py).
Concurrent debits
of one dataset race on its key's version: the losers are invalidated with
MVCC_READ_CONFLICT and endorsed again on the new state, where the contract refuses them if
the budget no longer covers them.

Every failure is a typed `BudgetError`. When the outcome is unknown (the ledger stopped
answering after the transaction was sent) it is `LedgerUnavailable`: nothing is released, so
at worst budget is spent for a result nobody saw, never the other way round. A researcher who
names the query with a `request_id` gets that debit back on a retry instead of paying again
(gateway/services/research_queries.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from gateway.analytics.errors import (
    BudgetConflict,
    BudgetDenied,
    BudgetError,
    BudgetExhausted,
    LedgerUnavailable,
    UnknownDataset,
)
from gateway.fabric import (
    AccessDenied,
    ChaincodeError,
    CommitError,
    EndorseError,
    GatewayError,
    Transaction,
)
from gateway.fabric.retry import RETRYABLE_CODES, RetryPolicy

log = logging.getLogger("mip.analytics")

# Enough tries for a handful of researchers debiting one dataset at the same moment; each
# retry runs the contract again on the newest state, so it cannot overspend.
DEBIT_RETRY = RetryPolicy(max_attempts=8, base_delay=0.02, max_delay=0.5)


class ResearchContract(Protocol):
    """The part of `gateway.fabric.Contract` used here (a Contract for chaincode `mip`)."""

    async def evaluate(self, name: str, args: Sequence[str] = ()) -> bytes: ...

    async def submit(
        self,
        name: str,
        args: Sequence[str] = (),
        *,
        endorsing_orgs: Sequence[str] | None = None,
        retry_policy: RetryPolicy | None = None,
        before_submit: Callable[[Transaction], None] | None = None,
    ) -> bytes: ...


class BudgetLedger(Protocol):
    """Where the privacy budget lives; amounts in integer micro-epsilon."""

    async def debit(self, dataset_id: str, epsilon_micro: int, query_digest: str) -> int:
        """Commit a debit; return the remaining micro-epsilon. Raise BudgetError if refused."""
        ...

    async def remaining(self, dataset_id: str) -> int:
        """The remaining micro-epsilon of the dataset."""
        ...


def budget_error(exc: GatewayError) -> BudgetError:
    """The typed budget error for a failed Research transaction."""
    if isinstance(exc, ChaincodeError):
        code, _, detail = exc.chaincode_message.partition(": ")
        detail = detail or exc.chaincode_message
        if code == "precondition_failed":
            return BudgetExhausted(f"budget exhausted: {detail}")
        if code == "not_found":
            return UnknownDataset("no such dataset on the ledger")
        if code == "access_denied":
            return BudgetDenied(f"the ledger refused the debit: {detail}")
        return BudgetError(f"the ledger refused the debit: {exc.chaincode_message}")
    if isinstance(exc, AccessDenied):
        return BudgetDenied("the ledger refused this identity")
    if isinstance(exc, EndorseError) and exc.endorsements_differ:
        return BudgetConflict("concurrent debits: endorsements differed after every retry")
    if isinstance(exc, CommitError):
        if exc.validation_code in RETRYABLE_CODES:
            return BudgetConflict(f"concurrent debits: {exc.code_name} after every retry")
        if exc.code_name == "ENDORSEMENT_POLICY_FAILURE":
            return BudgetDenied("the debit lacks a majority of orgs' endorsements")
        return BudgetError(f"the debit was invalidated ({exc.code_name})")
    return LedgerUnavailable(f"the ledger did not answer ({type(exc).__name__})")


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise LedgerUnavailable("unexpected answer from Research contract") from exc
    if not isinstance(value, dict):
        raise LedgerUnavailable("unexpected answer from Research contract")
    return value


def _remaining_of(record: dict[str, Any]) -> int:
    remaining = record.get("remaining_epsilon_micro")
    if not isinstance(remaining, int) or isinstance(remaining, bool):
        raise LedgerUnavailable("unexpected answer from Research contract")
    return remaining


class LedgerBudget:
    """`BudgetLedger` over the `Research` contract, acting as `contract`'s (researcher) identity.

    The gateway plans the debit's endorsers (a majority of orgs: the chaincode's policy)."""

    def __init__(
        self,
        contract: ResearchContract,
        *,
        retry_policy: RetryPolicy = DEBIT_RETRY,
    ) -> None:
        self._contract = contract
        self._retry = retry_policy

    async def dataset(self, dataset_id: str) -> dict[str, Any]:
        """The dataset's budget record (`Research:Get`), with `remaining_epsilon_micro`."""
        try:
            raw = await self._contract.evaluate("Research:Get", [dataset_id])
        except GatewayError as exc:
            raise budget_error(exc) from exc
        return _json_object(raw)

    async def remaining(self, dataset_id: str) -> int:
        return _remaining_of(await self.dataset(dataset_id))

    async def debit(self, dataset_id: str, epsilon_micro: int, query_digest: str, *,
                    before_submit: Callable[[Transaction], None] | None = None) -> int:
        """`before_submit` sees each endorsed transaction (id and result) before it is sent:
        the gateway records it there to learn the debit's outcome after a crash
        (gateway/services/research_queries.py)."""
        args = [dataset_id, str(epsilon_micro), query_digest]
        try:
            if before_submit is None:
                raw = await self._contract.submit("Research:Debit", args,
                                                  retry_policy=self._retry)
            else:
                raw = await self._contract.submit("Research:Debit", args,
                                                  retry_policy=self._retry,
                                                  before_submit=before_submit)
        except GatewayError as exc:
            error = budget_error(exc)
            log.info("debit refused: dataset %s, %d micro-epsilon: %s", dataset_id,
                     epsilon_micro, error.code)
            raise error from exc
        return _remaining_of(_json_object(raw))


async def register_dataset(admin: ResearchContract, dataset_id: str, total_epsilon_micro: int
                           ) -> dict[str, Any]:
    """`Research:RegisterDataset` as an admin's `Contract`; returns the dataset record."""
    try:
        raw = await admin.submit("Research:RegisterDataset", [dataset_id,
                                                              str(total_epsilon_micro)])
    except GatewayError as exc:
        raise budget_error(exc) from exc
    return _json_object(raw)
