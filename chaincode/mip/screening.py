"""Screening requests: the ledger's record of every consortium-wide private screening query.

A query of the consortium-wide private screening (docs/face.md, 5b) is answered by the other
two orgs' gateways only for a request recorded here, for exactly the querying org, once per
party and gallery. Recording one is an ordinary public write under the chaincode's 2-of-3
policy, so one org cannot record requests for itself (nor rewrite another's) with its own
peer alone; and everything that bounds a dishonest querier is on the ledger, where every org
reads it through its own peer:

* the request id is derived from the transaction id (not chosen by the client), the
  querying org is the submitter's MSP, the time is the transaction's (validated against
  each endorser's clock by `tx_unix_time`), never a value the client sends;
* each org has a quota of requests per UTC day (Config `screening_quota_daily`, changed only
  by every org's admin): a counter per (org, day) that the contract raises with each request
  and refuses to pass. Resetting or lowering it is a public write like any other: one org
  alone is invalidated at commit (tests/chaincode/mip/test_dishonest_org.py).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from chaincode.mip.config import get_setting
from chaincode.mip.errors import AccessDenied, InvalidRequest, NotFound, PreconditionFailed
from chaincode.mip.holder_auth import tx_unix_time
from chaincode.mip.staff import MEMBER_ORGS, caller, require_staff
from chaincode.shim import Context, Contract, create_composite_key, transaction

REQUEST_OBJECT = "mip.screenreq"
QUOTA_OBJECT = "mip.screenquota"
DAY_S = 86_400
REQUEST_ID_CHARS = 32


def request_key(request_id: str) -> str:
    return create_composite_key(REQUEST_OBJECT, [request_id])


def quota_key(org: str, day: int) -> str:
    return create_composite_key(QUOTA_OBJECT, [org, str(day)])


def request_id_for(tx_id: str) -> str:
    """The request's id: a function of the transaction id, the same on every endorser."""
    return hashlib.sha256(b"mip-screening-request\x00" + tx_id.encode()).hexdigest()[
        :REQUEST_ID_CHARS]


def _member_reader(ctx: Context) -> None:
    if caller(ctx).msp_id not in MEMBER_ORGS:
        raise AccessDenied("only member organisations read screening requests")


async def _usage(ctx: Context, org: str, day: int) -> int:
    raw = await ctx.stub.get_state(quota_key(org, day))
    return int(json.loads(raw)["count"]) if raw is not None else 0


class ScreeningContract(Contract):
    """The record of consortium-wide screening requests and each org's daily quota."""

    name = "Screening"

    @transaction()
    async def Request(self, ctx: Context) -> dict[str, Any]:
        """Record a screening request of the caller's org (a registrar), counted against
        the org's quota for the transaction's UTC day."""
        staff = require_staff(ctx, {"registrar"})
        now = tx_unix_time(ctx)
        day = now // DAY_S
        quota = await get_setting(ctx, "screening_quota_daily")
        used = await _usage(ctx, staff.msp_id, day)
        if used >= quota:
            raise PreconditionFailed(f"{staff.msp_id} has used its {quota} screening requests "
                                     "for today")
        request_id = request_id_for(ctx.stub.tx_id)
        record = {"request_id": request_id, "org": staff.msp_id, "client_id": staff.client_id,
                  "time": now, "day": day, "tx_id": ctx.stub.tx_id}
        await ctx.stub.put_state(request_key(request_id),
                                 json.dumps(record, sort_keys=True).encode())
        await ctx.stub.put_state(quota_key(staff.msp_id, day), json.dumps(
            {"org": staff.msp_id, "day": day, "count": used + 1}, sort_keys=True).encode())
        return {**record, "used": used + 1, "quota": quota}

    @transaction(read_only=True)
    async def Get(self, ctx: Context, request_id: str) -> dict[str, Any]:
        """A recorded request (any member org's reader: the parties check it before
        answering)."""
        _member_reader(ctx)
        if not isinstance(request_id, str) or len(request_id) != REQUEST_ID_CHARS:
            raise InvalidRequest("not a screening request id")
        raw = await ctx.stub.get_state(request_key(request_id))
        if raw is None:
            raise NotFound("no such screening request")
        record: dict[str, Any] = json.loads(raw)
        return record

    @transaction(read_only=True)
    async def Usage(self, ctx: Context, org: str, day: int) -> dict[str, Any]:
        """How many requests `org` recorded on UTC day `day` (unix seconds // 86400), and
        the quota now in force."""
        _member_reader(ctx)
        if org not in MEMBER_ORGS:
            raise InvalidRequest(f"org must be one of {sorted(MEMBER_ORGS)}")
        if not isinstance(day, int) or isinstance(day, bool) or day < 0:
            raise InvalidRequest("day must be a non-negative integer")
        return {"org": org, "day": day, "used": await _usage(ctx, org, day),
                "quota": await get_setting(ctx, "screening_quota_daily")}
