"""`Screening:Request`: the ledger's record of consortium-wide screening queries, with a
per-org daily quota (chaincode/mip/screening.py). The dishonest-org forgeries of these
records are in test_dishonest_org.py."""

from __future__ import annotations

import json
import time

from mip_testkit import MipClients, expect_error

from chaincode.mip.screening import DAY_S

HOSPITAL, SCHOOL, PHARMACY = "HospitalMSP", "SchoolMSP", "PharmacyMSP"
ORGS = (HOSPITAL, SCHOOL, PHARMACY)


async def test_a_request_names_the_submitting_org_and_the_transactions_time(
        mip: MipClients) -> None:
    registrar = await mip.client(SCHOOL, "registrar")
    before = int(time.time())
    record = json.loads(await registrar.submit("Screening:Request", []))
    assert record["org"] == SCHOOL and len(record["request_id"]) == 32
    assert before - 5 <= record["time"] <= int(time.time()) + 5
    assert record["used"] >= 1 and record["quota"] >= record["used"]
    # Every member org reads it through its own peer, the same record.
    for org in ORGS:
        reader = await mip.client(org, None)
        got = json.loads(await reader.evaluate("Screening:Get", [record["request_id"]]))
        assert got["org"] == SCHOOL and got["time"] == record["time"]
        assert got["tx_id"] == record["tx_id"]
    # Two requests never share an id (it comes from the transaction id).
    other = json.loads(await registrar.submit("Screening:Request", []))
    assert other["request_id"] != record["request_id"]
    usage = json.loads(await (await mip.client(HOSPITAL, None)).evaluate(
        "Screening:Usage", [SCHOOL, str(record["day"])]))
    assert usage["used"] == other["used"] == record["used"] + 1


async def test_only_a_registrar_records_and_unknown_ids_are_not_found(mip: MipClients) -> None:
    for role in ("admin", "researcher"):
        async with expect_error("access_denied"):
            await (await mip.client(HOSPITAL, role)).submit("Screening:Request", [])
    reader = await mip.client(PHARMACY, None)
    async with expect_error("not_found"):
        await reader.evaluate("Screening:Get", ["0" * 32])
    async with expect_error("invalid_request"):
        await reader.evaluate("Screening:Get", ["short"])


async def test_the_daily_quota_is_enforced_by_the_contract(mip: MipClients) -> None:
    registrar = await mip.client(PHARMACY, "registrar")
    day = int(time.time()) // DAY_S
    reader = await mip.client(HOSPITAL, None)
    used = json.loads(await reader.evaluate("Screening:Usage", [PHARMACY, str(day)]))["used"]
    admin = await mip.client(HOSPITAL, "admin")
    quota = used + 2
    await admin.submit("Config:Set", ["screening_quota_daily", str(quota)],
                       endorsing_orgs=list(ORGS))
    try:
        await registrar.submit("Screening:Request", [])
        last = json.loads(await registrar.submit("Screening:Request", []))
        assert last["used"] == quota == last["quota"]
        async with expect_error("precondition_failed"):
            await registrar.submit("Screening:Request", [])
        usage = json.loads(await reader.evaluate("Screening:Usage", [PHARMACY, str(day)]))
        assert usage == {"org": PHARMACY, "day": day, "used": quota, "quota": quota}
    finally:
        await admin.submit("Config:Set", ["screening_quota_daily", "1000000"],
                           endorsing_orgs=list(ORGS))
