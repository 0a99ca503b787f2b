"""Opt-in retry of transactions invalidated by a read conflict (or whose endorsements differ).

An MVCC_READ_CONFLICT (a key read at endorsement changed before commit) or a
PHANTOM_READ_CONFLICT (a range query's result changed) means the transaction ran on stale state;
endorsing it again, with a new transaction id, runs it on the current state. Any other
failure is returned to the caller unchanged. Off by default: a retried transaction executes
the chaincode again, which the caller must accept.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

from ._protos import transaction_pb2

RETRYABLE_CODES: frozenset[int] = frozenset(
    {
        transaction_pb2.TxValidationCode.MVCC_READ_CONFLICT,
        transaction_pb2.TxValidationCode.PHANTOM_READ_CONFLICT,
    }
)

_random = secrets.SystemRandom()


@dataclass(frozen=True)
class RetryPolicy:
    """Re-endorse and resubmit up to `max_attempts` times in all (first try included).

    Waits between tries grow exponentially from `base_delay` up to `max_delay` seconds, with
    "full jitter" (a uniform draw below the bound) so that clients that collided on the same
    keys do not collide again in lockstep.
    """

    max_attempts: int = 3
    base_delay: float = 0.05
    max_delay: float = 1.0
    retry_codes: frozenset[int] = RETRYABLE_CODES

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("delays must not be negative")

    def should_retry(self, validation_code: int, attempt: int) -> bool:
        """`attempt` counts from 1; true if another try is allowed after it failed."""
        return validation_code in self.retry_codes and attempt < self.max_attempts

    def should_reendorse(self, attempt: int) -> bool:
        """After endorsements that differ (endorsers on either side of a commit): retried
        whenever read conflicts are, for it is the same stale-state race caught earlier."""
        return (transaction_pb2.TxValidationCode.MVCC_READ_CONFLICT in self.retry_codes
                and attempt < self.max_attempts)

    def delay(self, attempt: int) -> float:
        bound = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return _random.uniform(0, bound)

    async def sleep(self, attempt: int) -> None:
        await asyncio.sleep(self.delay(attempt))


NO_RETRY = RetryPolicy(max_attempts=1)
