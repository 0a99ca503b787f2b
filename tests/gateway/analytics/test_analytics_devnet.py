"""The analytics service against devnet with the MIP contract: the budget on the ledger is
debited before each release, runs out, and concurrent releases cannot overspend it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import opendp.prelude as dp
import pytest
from identity_kit import admit
from mip_testkit import MipClients, new_id

from gateway.analytics import (
    AnalyticsService,
    BudgetConflict,
    BudgetDenied,
    BudgetExhausted,
    CountQuery,
    DatasetSchema,
    HistogramQuery,
    LedgerBudget,
    MeanQuery,
    Plan,
    UnknownDataset,
    register_dataset,
)

HOSPITAL, SCHOOL = "HospitalMSP", "SchoolMSP"
SCHEMA = DatasetSchema.of(age="numeric", dx="categorical")


def people(n: int) -> list[dict[str, Any]]:
    return [{"account": f"acc-{i}", "age": 20 + i % 60, "dx": ["flu", "cold", "asthma"][i % 3]}
            for i in range(n)]


async def new_dataset(mip: MipClients, total_micro: int) -> str:
    dataset_id = new_id("ds")
    record = await register_dataset(await mip.client(SCHOOL, "admin"), dataset_id, total_micro)
    assert record["owner_org"] == SCHOOL
    # The owner admits the HospitalMSP researcher the tests debit as.
    await admit(mip, dataset_id, SCHOOL, HOSPITAL)
    return dataset_id


async def service_for(mip: MipClients, org: str = HOSPITAL, role: str = "researcher"
                      ) -> AnalyticsService:
    # The owner org (SchoolMSP, whose peer must endorse debits) is read from Research:Get.
    return AnalyticsService(LedgerBudget(await mip.client(org, role)))


async def ledger_state(mip: MipClients, dataset_id: str) -> dict[str, Any]:
    reader = await mip.client(HOSPITAL, "researcher")
    return dict(json.loads(await reader.evaluate("Research:Get", [dataset_id])))


async def test_budget_debited_before_release_and_runs_out(
    mip: MipClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset_id = await new_dataset(mip, 1_000_000)
    service = await service_for(mip)
    records = people(300)

    first = await service.answer(dataset_id, CountQuery(epsilon=0.4), records, schema=SCHEMA)
    assert first.remaining_epsilon_micro == 600_000
    assert (await ledger_state(mip, dataset_id))["spent_epsilon_micro"] == 400_000

    # At the moment the measurement runs, the ledger already shows the debit committed.
    seen: list[int] = []
    original = Plan.run

    def run_after_commit(self: Plan, rows: Any) -> Any:
        seen.append(ledger_spent[0])
        return original(self, rows)

    ledger_spent = [0]
    real_debit = LedgerBudget.debit

    async def debit_then_read(self: LedgerBudget, *args: Any) -> int:
        remaining = await real_debit(self, *args)
        ledger_spent[0] = (await ledger_state(mip, dataset_id))["spent_epsilon_micro"]
        return remaining

    monkeypatch.setattr(Plan, "run", run_after_commit)
    monkeypatch.setattr(LedgerBudget, "debit", debit_then_read)
    second = await service.answer(
        dataset_id, HistogramQuery(column="dx", categories=["flu", "cold", "asthma"],
                                   epsilon=0.4), records, schema=SCHEMA)
    assert seen == [800_000]
    assert second.counts is not None and set(second.counts) == {"flu", "cold", "asthma"}
    assert second.remaining_epsilon_micro == 200_000 and second.remaining_epsilon == 0.2

    seen.clear()
    with pytest.raises(BudgetExhausted) as info:
        await service.answer(dataset_id, MeanQuery(column="age", lower=0, upper=100,
                                                   epsilon=0.4), records, schema=SCHEMA)
    assert "400000" in info.value.message and "200000" in info.value.message
    assert seen == []  # nothing computed
    state = await ledger_state(mip, dataset_id)
    assert state["remaining_epsilon_micro"] == 200_000 and state["debits"] == 2
    assert await service.remaining_epsilon(dataset_id) == 0.2


async def test_concurrent_releases_cannot_overspend(mip: MipClients) -> None:
    dataset_id = await new_dataset(mip, 1_000_000)
    service = await service_for(mip)
    results = await asyncio.gather(*(
        service.answer(dataset_id, CountQuery(epsilon=0.3), people(50), schema=SCHEMA)
        for _ in range(5)), return_exceptions=True)
    released = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert 1 <= len(released) <= 3
    assert all(isinstance(r, BudgetExhausted | BudgetConflict) for r in refused), refused
    state = await ledger_state(mip, dataset_id)
    assert state["spent_epsilon_micro"] == 300_000 * len(released)
    assert state["remaining_epsilon_micro"] >= 0 and state["debits"] == len(released)
    assert len({r.query_digest for r in released}) == len(released)


async def test_unknown_dataset_and_wrong_role(mip: MipClients) -> None:
    service = await service_for(mip)
    with pytest.raises(UnknownDataset):
        await service.answer(new_id("ds"), CountQuery(epsilon=0.1), people(5), schema=SCHEMA)
    dataset_id = await new_dataset(mip, 1_000_000)
    doctor = await service_for(mip, HOSPITAL, "doctor")
    with pytest.raises(BudgetDenied):
        await doctor.answer(dataset_id, CountQuery(epsilon=0.1), people(5), schema=SCHEMA)
    assert (await ledger_state(mip, dataset_id))["spent_epsilon_micro"] == 0


@pytest.mark.slow  # ~20 s: KYC issuer keys and three holders with accounts
async def test_only_consenting_holders_enter_the_count(mip: MipClients) -> None:
    """The user story end to end: holders' research.aggregate grants on the ledger decide
    whose records a Hospital researcher's count sees."""
    import time

    from credential_kit import grant, revoke_grant
    from mip_testkit import make_kyc_issuers, new_holder, open_account, request_arg

    from gateway.analytics import consenting_accounts, consenting_records

    issuers = make_kyc_issuers((HOSPITAL,))
    accounts = [await open_account(mip, await new_holder(mip, issuers), HOSPITAL)
                for _ in range(3)]
    consenting, revoked, other_org = accounts
    await grant(mip, consenting, HOSPITAL, "research.aggregate", credential_type="record",
                grantee_role="researcher")
    withdrawn = await grant(mip, revoked, HOSPITAL, "research.aggregate",
                            credential_type="record")
    await revoke_grant(mip, revoked, withdrawn["grant_id"])
    await grant(mip, other_org, SCHOOL, "research.aggregate", credential_type="record")

    gateway = await mip.client(HOSPITAL, "gateway")
    grants = []
    for account in accounts:
        listing = account.sign("grant.list", {"account": account.pseudonym})
        grants += json.loads(await gateway.evaluate("Grant:List", [request_arg(listing)]))
    allowed = consenting_accounts(grants, researcher_org=HOSPITAL, now=int(time.time()),
                                  credential_type="record")
    assert allowed == {consenting.pseudonym}

    # The hospital's records: many rows per holder; only the consenting holder's first counts.
    records = [{"account": a.pseudonym, "age": 40 + i, "dx": "flu"}
               for a in accounts for i in range(5)]
    selected = consenting_records(records, allowed, "account")
    assert {r["account"] for r in selected} == {consenting.pseudonym}
    dataset_id = await new_dataset(mip, 5_000_000)
    release = await (await service_for(mip)).answer(
        dataset_id, CountQuery(epsilon=5.0), selected, schema=SCHEMA)
    assert release.noise_scale == pytest.approx(0.2)
    bound = dp.discrete_laplacian_scale_to_accuracy(release.noise_scale, 1e-9)
    assert isinstance(release.value, int) and abs(release.value - 1) <= bound
    assert release.remaining_epsilon_micro == 0
