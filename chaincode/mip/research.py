"""Privacy budget: datasets with a total epsilon, debited before each release.

Epsilon is carried in integer micro-epsilon (1 epsilon = 1_000_000) because signed and hashed
documents carry no floats. A researcher's `Debit` commits before the analysis service releases
the differentially private result; a debit that would exceed the total is refused, and two
concurrent debits read the same dataset version, so MVCC lets at most one of them commit:
the budget cannot be overspent by racing. The dataset key has no key-level policy: debits are
endorsed under the chaincode's majority, so no single org (the owner included) can reset or
overspend the budget alone.
"""

from __future__ import annotations

import json
import re
from typing import Any

from chaincode.mip.credentials import check_id, put_json
from chaincode.mip.errors import Conflict, InvalidRequest, NotFound, PreconditionFailed
from chaincode.mip.holder_auth import tx_unix_time
from chaincode.mip.staff import require_staff
from chaincode.shim import (
    Context,
    Contract,
    create_composite_key,
    transaction,
)

DATASET_OBJECT = "mip.dataset"
DEBIT_OBJECT = "mip.debit"
MAX_TOTAL_MICRO = 100 * 1_000_000
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def dataset_key(dataset_id: str) -> str:
    return create_composite_key(DATASET_OBJECT, [dataset_id])


def positive_int(value: Any, what: str, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= high:
        raise InvalidRequest(f"{what} must be an integer from 1 to {high}")
    return value


async def load_dataset(ctx: Context, dataset_id: str) -> dict[str, Any]:
    raw = await ctx.stub.get_state(dataset_key(check_id(dataset_id, "dataset_id")))
    if raw is None:
        raise NotFound("no such dataset")
    return dict(json.loads(raw))


class ResearchContract(Contract):
    """Datasets and their differential-privacy budgets."""

    name = "Research"

    @transaction()
    async def RegisterDataset(
        self, ctx: Context, dataset_id: str, total_epsilon_micro: int
    ) -> dict[str, Any]:
        """An admin registers a dataset with its total budget (micro-epsilon)."""
        staff = require_staff(ctx, {"admin"})
        key = dataset_key(check_id(dataset_id, "dataset_id"))
        total = positive_int(total_epsilon_micro, "total_epsilon_micro", MAX_TOTAL_MICRO)
        if await ctx.stub.get_state(key) is not None:
            raise Conflict("dataset id already registered")
        record = {"dataset_id": dataset_id, "owner_org": staff.msp_id,
                  "total_epsilon_micro": total, "spent_epsilon_micro": 0, "debits": 0,
                  "created": tx_unix_time(ctx)}
        # No key-level policy: the budget protects holders, so not even the owner org may
        # reset it alone; debits are endorsed under the chaincode's majority.
        await put_json(ctx, key, record)
        return record

    @transaction()
    async def Debit(
        self, ctx: Context, dataset_id: str, epsilon_micro: int, query_digest: str
    ) -> dict[str, Any]:
        """A researcher debits `epsilon_micro` for the query with sha256 `query_digest`."""
        staff = require_staff(ctx, {"researcher"})
        record = await load_dataset(ctx, dataset_id)
        epsilon = positive_int(epsilon_micro, "epsilon_micro", MAX_TOTAL_MICRO)
        if not isinstance(query_digest, str) or not _DIGEST.match(query_digest):
            raise InvalidRequest("query_digest must be a lowercase hex sha256")
        remaining = record["total_epsilon_micro"] - record["spent_epsilon_micro"]
        if epsilon > remaining:
            raise PreconditionFailed(
                f"over budget: {epsilon} micro-epsilon asked, {remaining} left"
            )
        now = tx_unix_time(ctx)
        record["spent_epsilon_micro"] += epsilon
        record["debits"] += 1
        await put_json(ctx, dataset_key(dataset_id), record)
        debit = {"dataset_id": dataset_id, "epsilon_micro": epsilon,
                 "query_digest": query_digest, "org": staff.msp_id,
                 "client_id": staff.client_id, "time": now, "tx_id": ctx.stub.tx_id}
        await put_json(ctx, create_composite_key(DEBIT_OBJECT, [dataset_id, ctx.stub.tx_id]),
                       debit)
        return {**record, "debit": debit,
                "remaining_epsilon_micro": remaining - epsilon}

    @transaction(read_only=True)
    async def Get(self, ctx: Context, dataset_id: str) -> dict[str, Any]:
        """The dataset's budget."""
        record = await load_dataset(ctx, dataset_id)
        return {**record, "remaining_epsilon_micro":
                record["total_epsilon_micro"] - record["spent_epsilon_micro"]}
