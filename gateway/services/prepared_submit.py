"""Endorse a transaction while the request does other work; order it only once that work
says it may be written.

Endorsement is a simulation on the endorsing peers: nothing is written until the endorsed
transaction is sent to the orderer, and a transaction never sent is never committed. On
devnet and Fabric alike it is most of a submit's time (measured at the Pharmacy's gateway:
about half of `Access:Request` and `Pharmacy:Dispense`), so a flow that knows a write's
arguments before its checks are done can endorse during the checks and, if they pass,
`submit` (order and wait for commit) with no endorsement left in the wait. If a check fails,
`discard` drops the endorsement: nothing reaches the ledger, as before.

What this does not change: the contract runs (and judges every expiry by the proposal's
timestamp) at endorsement, as with `Contract.submit`; the commit still validates the read
set, so a state that changed since the endorsement (a revoked grant, another dispense)
invalidates it and the retry policy endorses again on the current state. An endorsement
older than `max_age_s` is not sent at all but made afresh, so a delay between the checks
and the write never stretches a time limit the contract judged by more than that.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from gateway.fabric import CommitError, Contract, EndorseError, RetryPolicy, Transaction

log = logging.getLogger("mip.gateway.ledger")

# An endorsement this old (seconds) is made again rather than sent: the contract judged its
# time limits at endorsement, and a write must not land later than that by more than this.
DEFAULT_MAX_AGE_S = 2.0


def _retrieve(task: asyncio.Future[Transaction]) -> None:
    # An endorsement whose flow stopped early is never awaited: take its outcome here so
    # that asyncio does not report an exception nobody retrieved.
    if not task.cancelled():
        task.exception()


class PreparedSubmit:
    """One transaction, endorsed from construction on (as `contract`'s identity)."""

    def __init__(self, contract: Contract, name: str, args: Sequence[str], *,
                 endorsing_orgs: Sequence[str] | None = None,
                 max_age_s: float = DEFAULT_MAX_AGE_S) -> None:
        self.contract, self.name, self.args = contract, name, list(args)
        self.endorsing_orgs = list(endorsing_orgs) if endorsing_orgs is not None else None
        self.max_age_s = max_age_s
        self._started = time.monotonic()
        proposal = contract.new_proposal(name, self.args, endorsing_orgs=self.endorsing_orgs)
        self._endorsing: asyncio.Future[Transaction] = asyncio.ensure_future(
            proposal.endorse())
        self._endorsing.add_done_callback(_retrieve)

    def discard(self) -> None:
        """The flow stopped before the write: the endorsement is dropped, never sent."""
        self._endorsing.cancel()

    async def _fresh(self, policy: RetryPolicy,
                     before_submit: Callable[[Transaction], None] | None) -> bytes:
        return await self.contract.submit(self.name, self.args,
                                          endorsing_orgs=self.endorsing_orgs,
                                          retry_policy=policy, before_submit=before_submit)

    async def submit(self, *, retry_policy: RetryPolicy | None = None,
                     before_submit: Callable[[Transaction], None] | None = None) -> bytes:
        """Order the endorsed transaction and wait for its commit: `Contract.submit`'s
        result and errors. A retryable failure of the early endorsement (endorsers on
        either side of a commit, or a read conflict at commit) goes on as a plain
        `Contract.submit` on the current state, with the policy's full attempts."""
        policy = retry_policy or self.contract.network.gateway.retry_policy
        try:
            transaction = await self._endorsing
        except EndorseError as exc:
            if not (exc.endorsements_differ and policy.should_reendorse(1)):
                raise
            await policy.sleep(1)
            return await self._fresh(policy, before_submit)
        if time.monotonic() - self._started > self.max_age_s:
            log.info("an early endorsement of %s is stale; endorsing again", self.name)
            return await self._fresh(policy, before_submit)
        if before_submit is not None:
            before_submit(transaction)
        submitted = await transaction.submit()
        try:
            return await submitted.wait()
        except CommitError as exc:
            if not policy.should_retry(exc.validation_code, 1):
                raise
            log.info("transaction %s invalidated (%s), endorsing again", exc.transaction_id,
                     exc.code_name)
            await policy.sleep(1)
            return await self._fresh(policy, before_submit)
