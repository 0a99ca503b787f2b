"""LedgerBudget against a scripted Contract: the transactions it sends and how the Gateway
client's errors become typed budget errors."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import grpc
import pytest

from gateway.analytics import (
    BudgetConflict,
    BudgetDenied,
    BudgetError,
    BudgetExhausted,
    LedgerBudget,
    LedgerUnavailable,
    UnknownDataset,
    register_dataset,
)
from gateway.analytics.ledger import DEBIT_RETRY, budget_error
from gateway.fabric import AccessDenied, ChaincodeError, CommitError, GatewayError, SubmitError
from gateway.fabric._protos import transaction_pb2

CODES = transaction_pb2.TxValidationCode
DIGEST = "ab" * 32


def chaincode_error(message: str) -> ChaincodeError:
    error = ChaincodeError("failed to endorse transaction", code=grpc.StatusCode.ABORTED)
    error.chaincode_status, error.chaincode_message = 412, message
    return error


class ScriptedContract:
    """Answers each call with the next scripted bytes or raises the next scripted error."""

    def __init__(self, answers: Sequence[bytes | Exception]) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, list[str], dict[str, Any]]] = []

    def _next(self, name: str, args: Sequence[str], kwargs: dict[str, Any]) -> bytes:
        self.calls.append((name, list(args), kwargs))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def evaluate(self, name: str, args: Sequence[str] = (), **kwargs: Any) -> bytes:
        return self._next(name, args, kwargs)

    async def submit(self, name: str, args: Sequence[str] = (), **kwargs: Any) -> bytes:
        return self._next(name, args, kwargs)


def dataset(remaining: int = 600_000, owner: str = "SchoolMSP") -> bytes:
    return json.dumps({"dataset_id": "ds-1", "owner_org": owner, "total_epsilon_micro": 10**6,
                       "spent_epsilon_micro": 10**6 - remaining,
                       "remaining_epsilon_micro": remaining}).encode()


async def test_debit_sends_the_debit_and_lets_the_gateway_plan_endorsers() -> None:
    contract = ScriptedContract([dataset(600_000), dataset(200_000)])
    budget = LedgerBudget(contract)
    assert await budget.debit("ds-1", 400_000, DIGEST) == 600_000
    assert await budget.debit("ds-1", 400_000, DIGEST) == 200_000
    debit, _ = contract.calls
    # No pinned endorsing org: one org's endorsement never satisfies the majority policy.
    assert debit == ("Research:Debit", ["ds-1", "400000", DIGEST],
                     {"retry_policy": DEBIT_RETRY})


async def test_remaining() -> None:
    budget = LedgerBudget(ScriptedContract([dataset(123)]))
    assert await budget.remaining("ds-1") == 123


@pytest.mark.parametrize("error, expected", [
    (chaincode_error("precondition_failed: over budget: 400000 micro-epsilon asked, 200000 "
                     "left"), BudgetExhausted),
    (chaincode_error("not_found: no such dataset"), UnknownDataset),
    (chaincode_error("access_denied: role doctor may not"), BudgetDenied),
    (chaincode_error("invalid_request: query_digest must be a lowercase hex sha256"),
     BudgetError),
    (AccessDenied("access denied", code=grpc.StatusCode.PERMISSION_DENIED), BudgetDenied),
    (CommitError("tx1", CODES.MVCC_READ_CONFLICT, 7), BudgetConflict),
    (CommitError("tx1", CODES.ENDORSEMENT_POLICY_FAILURE, 7), BudgetDenied),
    (CommitError("tx1", CODES.BAD_PAYLOAD, 7), BudgetError),
    (SubmitError("unavailable", code=grpc.StatusCode.UNAVAILABLE), LedgerUnavailable),
    (GatewayError("boom"), LedgerUnavailable),
])
async def test_errors_are_typed(error: GatewayError, expected: type[BudgetError]) -> None:
    mapped = budget_error(error)
    assert type(mapped) is expected
    budget = LedgerBudget(ScriptedContract([error]))
    with pytest.raises(expected):
        await budget.debit("ds-1", 1, DIGEST)


async def test_exhausted_message_keeps_the_amounts() -> None:
    mapped = budget_error(chaincode_error("precondition_failed: over budget: 4 asked, 2 left"))
    assert "4 asked, 2 left" in mapped.message and mapped.code == "budget_exhausted"


async def test_unknown_dataset() -> None:
    contract = ScriptedContract([chaincode_error("not_found: no such dataset")])
    with pytest.raises(UnknownDataset):
        await LedgerBudget(contract).debit("ds-x", 1, DIGEST)
    assert [c[0] for c in contract.calls] == ["Research:Debit"]


@pytest.mark.parametrize("raw", [b"not json", b"[]", b'{"remaining_epsilon_micro": "5"}',
                                 b'{"remaining_epsilon_micro": true}', b"{}"])
async def test_unexpected_answers(raw: bytes) -> None:
    budget = LedgerBudget(ScriptedContract([raw]))
    with pytest.raises(LedgerUnavailable):
        await budget.debit("ds-1", 1, DIGEST)


async def test_register_dataset() -> None:
    contract = ScriptedContract([dataset(10**6), chaincode_error("conflict: already")])
    record = await register_dataset(contract, "ds-1", 10**6)
    assert record["owner_org"] == "SchoolMSP"
    assert contract.calls[0][:2] == ("Research:RegisterDataset", ["ds-1", "1000000"])
    with pytest.raises(BudgetError):
        await register_dataset(contract, "ds-1", 10**6)
