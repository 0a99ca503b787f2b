"""Privacy budget: admin registers and admits researchers, an admitted researcher debits
before release, over budget refused, the dataset key needs the admin's org, concurrent debits
cannot overspend."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets

import pytest
from credential_kit import HOSPITAL, PHARMACY, SCHOOL
from identity_kit import admit
from mip_testkit import MipClients, expect_error, new_id

from gateway.fabric import ChaincodeError, CommitError


def digest() -> str:
    return hashlib.sha256(secrets.token_bytes(16)).hexdigest()


async def register(mip: MipClients, total: int, org: str = SCHOOL) -> str:
    dataset_id = new_id("ds")
    admin = await mip.client(org, "admin")
    record = json.loads(await admin.submit("Research:RegisterDataset", [dataset_id, str(total)]))
    assert record == {**record, "owner_org": org, "total_epsilon_micro": total,
                      "spent_epsilon_micro": 0}
    return dataset_id


async def test_register_and_debit(mip: MipClients) -> None:
    dataset_id = await register(mip, 1_000_000)
    await admit(mip, dataset_id, SCHOOL, HOSPITAL)
    researcher = await mip.client(HOSPITAL, "researcher")
    got = json.loads(await researcher.submit(
        "Research:Debit", [dataset_id, "300000", digest()]))
    assert got["remaining_epsilon_micro"] == 700_000 and got["debit"]["org"] == HOSPITAL
    await researcher.submit("Research:Debit", [dataset_id, "700000", digest()])
    async with expect_error("precondition_failed") as info:
        await researcher.submit("Research:Debit", [dataset_id, "1", digest()])
    assert "over budget" in info.message
    state = json.loads(await researcher.evaluate("Research:Get", [dataset_id]))
    assert state["spent_epsilon_micro"] == 1_000_000 and state["debits"] == 2


async def test_roles_and_inputs(mip: MipClients) -> None:
    for org, role in [(SCHOOL, "researcher"), (HOSPITAL, "auditor"), (PHARMACY, None)]:
        async with expect_error("access_denied"):
            await (await mip.client(org, role)).submit(
                "Research:RegisterDataset", [new_id("ds"), "1000"])
    dataset_id = await register(mip, 500)
    for org, role in [(SCHOOL, "admin"), (HOSPITAL, "doctor"), (PHARMACY, "pharmacist")]:
        async with expect_error("access_denied"):
            await (await mip.client(org, role)).submit(
                "Research:Debit", [dataset_id, "1", digest()])
    researcher = await mip.client(SCHOOL, "researcher")
    for args in ([dataset_id, "0", digest()], [dataset_id, "-5", digest()],
                 [dataset_id, "1", "not-a-digest"]):
        async with expect_error("invalid_request"):
            await researcher.submit("Research:Debit", args)
    # No floats: the shim's argument decoder refuses them before the contract runs.
    with pytest.raises(ChaincodeError, match="expected int"):
        await researcher.submit("Research:Debit", [dataset_id, "0.5", digest()])
    async with expect_error("not_found"):
        await researcher.submit("Research:Debit", [new_id("ds"), "1", digest()])
    admin = await mip.client(SCHOOL, "admin")
    async with expect_error("conflict"):
        await admin.submit("Research:RegisterDataset", [dataset_id, "500"])
    async with expect_error("invalid_request"):
        await admin.submit("Research:RegisterDataset", [new_id("ds"), "0"])


async def test_debit_needs_a_majority_of_orgs(mip: MipClients) -> None:
    """One org's endorsement is not enough, whichever org: the budget protects holders."""
    dataset_id = await register(mip, 1000, org=SCHOOL)
    await admit(mip, dataset_id, SCHOOL, HOSPITAL)
    researcher = await mip.client(HOSPITAL, "researcher")
    with pytest.raises(CommitError) as info:
        await researcher.submit("Research:Debit", [dataset_id, "10", digest()],
                                endorsing_orgs=[HOSPITAL])
    assert info.value.code_name == "ENDORSEMENT_POLICY_FAILURE"
    state = json.loads(await researcher.evaluate("Research:Get", [dataset_id]))
    assert state["spent_epsilon_micro"] == 0


async def test_concurrent_debits_cannot_overspend(mip: MipClients) -> None:
    dataset_id = await register(mip, 100)
    await admit(mip, dataset_id, SCHOOL, SCHOOL)
    researcher = await mip.client(SCHOOL, "researcher")
    results = await asyncio.gather(*(
        researcher.submit("Research:Debit", [dataset_id, "60", digest()])
        for _ in range(10)), return_exceptions=True)
    ok = [r for r in results if isinstance(r, bytes)]
    assert len(ok) == 1
    assert all(isinstance(r, (bytes, CommitError, ChaincodeError)) for r in results), results
    state = json.loads(await researcher.evaluate("Research:Get", [dataset_id]))
    assert state["spent_epsilon_micro"] == 60
