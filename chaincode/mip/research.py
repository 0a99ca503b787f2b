"""Privacy budget: datasets with a total epsilon, debited before each release.

Epsilon is carried in integer micro-epsilon (1 epsilon = 1_000_000) because signed and hashed
documents carry no floats. A researcher's `Debit` commits before the analysis service releases
the differentially private result; a debit that would exceed the total is refused, and two
concurrent debits read the same dataset version, so MVCC lets at most one of them commit:
the budget cannot be overspent by racing. The dataset key has no key-level policy: debits are
endorsed under the chaincode's majority, so no single org (the owner included) can reset or
overspend the budget alone.

Who may spend: the budget is the owner org's to give. Its admin admits researchers one Fabric
identity at a time (`AdmitResearcher`: MSP id + the identity string Fabric's cid gives,
`x509::<subject>::<issuer>`), of its own org or another; `Debit` accepts only a researcher so
admitted and not since dismissed. Without this, any org's researcher could empty another
org's dataset budget with queries over no consenting rows at all.
"""

from __future__ import annotations

import json
import re
from typing import Any

from chaincode.mip.credentials import check_id, put_json
from chaincode.mip.errors import (
    AccessDenied,
    Conflict,
    InvalidRequest,
    NotFound,
    PreconditionFailed,
)
from chaincode.mip.holder_auth import tx_unix_time
from chaincode.mip.staff import MEMBER_ORGS, Staff, require_staff
from chaincode.shim import (
    Context,
    Contract,
    create_composite_key,
    transaction,
)

DATASET_OBJECT = "mip.dataset"
DEBIT_OBJECT = "mip.debit"
RESEARCHER_OBJECT = "mip.researcher"  # (dataset id, msp id, identity string) -> admission
ADMITTED, DISMISSED = "admitted", "dismissed"
MAX_IDENTITY_LENGTH = 1024
MAX_TOTAL_MICRO = 100 * 1_000_000
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def dataset_key(dataset_id: str) -> str:
    return create_composite_key(DATASET_OBJECT, [dataset_id])


def positive_int(value: Any, what: str, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= high:
        raise InvalidRequest(f"{what} must be an integer from 1 to {high}")
    return value


def admission_key(dataset_id: str, msp_id: str, researcher_id: str) -> str:
    return create_composite_key(RESEARCHER_OBJECT, [dataset_id, msp_id, researcher_id])


def check_researcher(msp_id: Any, researcher_id: Any) -> tuple[str, str]:
    if msp_id not in MEMBER_ORGS:
        raise InvalidRequest(f"researcher_org must be one of {sorted(MEMBER_ORGS)}")
    if (not isinstance(researcher_id, str) or not researcher_id.startswith("x509::")
            or len(researcher_id) > MAX_IDENTITY_LENGTH or "\x00" in researcher_id):
        raise InvalidRequest("researcher_id must be a Fabric identity string "
                             f"(x509::<subject>::<issuer>, at most {MAX_IDENTITY_LENGTH} chars)")
    return msp_id, researcher_id


async def _owner_admin(ctx: Context, dataset_id: str) -> tuple[Staff, dict[str, Any]]:
    """The caller must be an admin of the dataset's owner org."""
    staff = require_staff(ctx, {"admin"})
    record = await load_dataset(ctx, dataset_id)
    if staff.msp_id != record["owner_org"]:
        raise AccessDenied(f"only an admin of the owner org {record['owner_org']} admits "
                           "researchers to this dataset")
    return staff, record


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
        """An admitted researcher debits `epsilon_micro` for the query with sha256
        `query_digest`."""
        staff = require_staff(ctx, {"researcher"})
        record = await load_dataset(ctx, dataset_id)
        epsilon = positive_int(epsilon_micro, "epsilon_micro", MAX_TOTAL_MICRO)
        if not isinstance(query_digest, str) or not _DIGEST.match(query_digest):
            raise InvalidRequest("query_digest must be a lowercase hex sha256")
        admission = await ctx.stub.get_state(
            admission_key(dataset_id, staff.msp_id, staff.client_id))
        if admission is None or json.loads(admission)["status"] != ADMITTED:
            raise AccessDenied("this researcher is not admitted to the dataset by its owner org")
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

    @transaction()
    async def AdmitResearcher(
        self, ctx: Context, dataset_id: str, researcher_org: str, researcher_id: str
    ) -> dict[str, Any]:
        """The owner org's admin admits one researcher identity (any member org) to debit."""
        staff, _ = await _owner_admin(ctx, dataset_id)
        org, identity = check_researcher(researcher_org, researcher_id)
        key = admission_key(dataset_id, org, identity)
        raw = await ctx.stub.get_state(key)
        if raw is not None and json.loads(raw)["status"] == ADMITTED:
            raise Conflict("this researcher is already admitted")
        admission = {"dataset_id": dataset_id, "researcher_org": org,
                     "researcher_id": identity, "status": ADMITTED,
                     "by_org": staff.msp_id, "by_client_id": staff.client_id,
                     "time": tx_unix_time(ctx), "tx_id": ctx.stub.tx_id}
        await put_json(ctx, key, admission)
        return admission

    @transaction()
    async def DismissResearcher(
        self, ctx: Context, dataset_id: str, researcher_org: str, researcher_id: str
    ) -> dict[str, Any]:
        """The owner org's admin ends an admission; later debits by it are refused."""
        staff, _ = await _owner_admin(ctx, dataset_id)
        key = admission_key(dataset_id, *check_researcher(researcher_org, researcher_id))
        raw = await ctx.stub.get_state(key)
        if raw is None:
            raise NotFound("this researcher was never admitted to the dataset")
        admission = dict(json.loads(raw))
        if admission["status"] != ADMITTED:
            raise PreconditionFailed(f"the admission is {admission['status']}")
        admission.update(status=DISMISSED, by_org=staff.msp_id, by_client_id=staff.client_id,
                         time=tx_unix_time(ctx), tx_id=ctx.stub.tx_id)
        await put_json(ctx, key, admission)
        return admission

    @transaction(read_only=True)
    async def Researchers(self, ctx: Context, dataset_id: str) -> list[dict[str, Any]]:
        """The dataset's admissions (admitted and dismissed), for anyone to audit."""
        await load_dataset(ctx, dataset_id)
        found = []
        async with ctx.stub.get_state_by_partial_composite_key(
            RESEARCHER_OBJECT, [dataset_id]
        ) as results:
            async for _key, value in results:
                found.append(dict(json.loads(value)))
        return found

    @transaction(read_only=True)
    async def Get(self, ctx: Context, dataset_id: str) -> dict[str, Any]:
        """The dataset's budget."""
        record = await load_dataset(ctx, dataset_id)
        return {**record, "remaining_epsilon_micro":
                record["total_epsilon_micro"] - record["spent_epsilon_micro"]}
