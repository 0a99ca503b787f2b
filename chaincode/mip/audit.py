"""Access records (`mip.access`): who touched which holder's data, when, why, in which tx.

Every release of private content is preceded by a committed access record (Access:Request),
and every write to a holder's credentials or grants leaves one too. Records are keyed by the
subject account so a holder lists its own with one partial-key query; an index key maps an
access id to its account so `Access:Read(access_id)` finds the record. The access id is the
transaction id (each transaction writes at most one access record), so it is unique and the
same on every endorser.
"""

from __future__ import annotations

import json
from typing import Any

from chaincode.mip.holder_auth import tx_unix_time
from chaincode.mip.staff import caller
from chaincode.shim import Context, create_composite_key, split_composite_key

ACCESS_OBJECT = "mip.access"
ACCESS_INDEX_OBJECT = "mip.accessid"
ACCESS_BY_ORG_OBJECT = "mip.accessorg"


def access_key(account: str, access_id: str) -> str:
    return create_composite_key(ACCESS_OBJECT, [account, access_id])


def access_index_key(access_id: str) -> str:
    return create_composite_key(ACCESS_INDEX_OBJECT, [access_id])


def access_by_org_key(org: str, access_id: str) -> str:
    return create_composite_key(ACCESS_BY_ORG_OBJECT, [org, access_id])


async def record_access(
    ctx: Context,
    *,
    account: str,
    action: str,
    credential_id: str | None,
    scope: str | None,
    purpose: str,
    grant_id: str | None = None,
    details: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Write the access record of this transaction and return it (`details`: facts of this
    action, e.g. the attested pharmacist of a dispense; absent when None)."""
    who = caller(ctx)
    access_id = ctx.stub.tx_id
    stamp = ctx.stub.get_tx_timestamp()
    record: dict[str, Any] = {
        "access_id": access_id,
        "account": account,
        "action": action,
        "credential_id": credential_id,
        "scope": scope,
        "purpose": purpose,
        "grant_id": grant_id,
        "org": who.msp_id,
        "role": who.role,
        "client_id": who.client_id,
        "time": tx_unix_time(ctx),
        # Microseconds order records within a second (the client's proposal timestamp).
        "time_us": int(stamp.seconds) * 1_000_000 + int(stamp.nanos) // 1000,
        "tx_id": ctx.stub.tx_id,
    }
    if details is not None:
        record["details"] = dict(details)
    await ctx.stub.put_state(
        access_key(account, access_id), json.dumps(record, sort_keys=True).encode()
    )
    await ctx.stub.put_state(access_index_key(access_id), account.encode())
    # An auditor lists its own org's accesses without scanning every account's records.
    await ctx.stub.put_state(access_by_org_key(who.msp_id, access_id), account.encode())
    return record


async def load_access(ctx: Context, access_id: str) -> dict[str, Any] | None:
    account = await ctx.stub.get_state(access_index_key(access_id))
    if account is None:
        return None
    raw = await ctx.stub.get_state(access_key(account.decode(), access_id))
    return None if raw is None else dict(json.loads(raw))


def _ordered(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(records, key=lambda r: (r["time_us"], r["access_id"]))


async def list_access(ctx: Context, account: str) -> list[dict[str, Any]]:
    """Every access record of `account`, oldest first."""
    records = []
    async for _key, value in ctx.stub.get_state_by_partial_composite_key(
        ACCESS_OBJECT, [account]
    ):
        records.append(dict(json.loads(value)))
    return _ordered(records)


async def list_org_access(ctx: Context, org: str) -> list[dict[str, Any]]:
    """Every access record made by staff of `org`, oldest first."""
    records = []
    async for key, account in ctx.stub.get_state_by_partial_composite_key(
        ACCESS_BY_ORG_OBJECT, [org]
    ):
        access_id = split_composite_key(key)[1][1]
        raw = await ctx.stub.get_state(access_key(account.decode(), access_id))
        if raw is not None:
            records.append(dict(json.loads(raw)))
    return _ordered(records)
