"""PreparedSubmit (gateway/services/prepared_submit.py): an early endorsement is sent only
when asked, only while fresh, and a retryable failure goes on as a plain submit."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.fabric import CommitError, RetryPolicy
from gateway.fabric._protos import transaction_pb2
from gateway.services.prepared_submit import PreparedSubmit

MVCC = transaction_pb2.TxValidationCode.MVCC_READ_CONFLICT
POLICY = RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0)


class FakeContract:
    """Records what reaches the orderer: early endorsements sent, and plain submits."""

    def __init__(self, commit_error: int | None = None) -> None:
        self.endorsed = 0
        self.ordered: list[str] = []
        self.plain_submits = 0
        self.commit_error = commit_error
        self.released = asyncio.Event()
        self.released.set()
        self.network: Any = None

    def new_proposal(self, name: str, args: list[str], **_: Any) -> Any:
        contract = self

        class Proposal:
            async def endorse(self) -> Any:
                await contract.released.wait()
                contract.endorsed += 1
                return Transaction()

        class Submitted:
            async def wait(self) -> bytes:
                if contract.commit_error is not None:
                    raise CommitError("tx1", contract.commit_error, 7)
                return b"early"

        class Transaction:
            transaction_id = "tx1"

            async def submit(self) -> Any:
                contract.ordered.append("early")
                return Submitted()

        return Proposal()

    async def submit(self, name: str, args: list[str], **_: Any) -> bytes:
        self.plain_submits += 1
        self.ordered.append("plain")
        return b"plain"


async def test_a_fresh_endorsement_is_sent_once() -> None:
    contract = FakeContract()
    prepared = PreparedSubmit(contract, "Access:Request", ["rx", "scope", "pickup"])  # type: ignore[arg-type]
    seen: list[Any] = []
    assert await prepared.submit(retry_policy=POLICY, before_submit=seen.append) == b"early"
    assert contract.endorsed == 1 and contract.ordered == ["early"] and len(seen) == 1


async def test_a_discarded_endorsement_never_reaches_the_orderer() -> None:
    contract = FakeContract()
    contract.released.clear()
    prepared = PreparedSubmit(contract, "Access:Request", ["rx", "scope", "pickup"])  # type: ignore[arg-type]
    await asyncio.sleep(0)
    prepared.discard()
    contract.released.set()
    await asyncio.sleep(0.01)
    assert contract.ordered == []
    with pytest.raises(asyncio.CancelledError):
        await prepared.submit(retry_policy=POLICY)
    assert contract.ordered == []


async def test_a_stale_endorsement_is_made_again() -> None:
    contract = FakeContract()
    prepared = PreparedSubmit(contract, "Access:Request", ["rx", "scope", "pickup"],  # type: ignore[arg-type]
                              max_age_s=0.0)
    await asyncio.sleep(0.01)
    assert await prepared.submit(retry_policy=POLICY) == b"plain"
    assert contract.ordered == ["plain"]  # the old endorsement was not sent


async def test_a_read_conflict_endorses_again_on_the_current_state() -> None:
    contract = FakeContract(commit_error=MVCC)
    prepared = PreparedSubmit(contract, "Pharmacy:Dispense", ["rx", "att"])  # type: ignore[arg-type]
    assert await prepared.submit(retry_policy=POLICY) == b"plain"
    assert contract.ordered == ["early", "plain"]


async def test_a_final_commit_failure_is_raised() -> None:
    contract = FakeContract(commit_error=MVCC)
    prepared = PreparedSubmit(contract, "Pharmacy:Dispense", ["rx", "att"])  # type: ignore[arg-type]
    with pytest.raises(CommitError):
        await prepared.submit(retry_policy=RetryPolicy(max_attempts=1))
    assert contract.ordered == ["early"]
