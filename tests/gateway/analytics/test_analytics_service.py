"""The service against an in-memory ledger: debit before release, a refusal releases nothing,
digests unique per release, one record per holder, typed errors."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

import opendp.prelude as dp
import pytest

from gateway.analytics import (
    AnalyticsService,
    BudgetExhausted,
    CountQuery,
    DatasetSchema,
    DpParametersOutOfRange,
    HistogramQuery,
    LedgerUnavailable,
    MeanQuery,
    Plan,
    QuerySpecError,
    RecordError,
    UnknownColumn,
    UnknownDataset,
    query_digest,
)
from gateway.analytics.service import one_per_holder

SCHEMA = DatasetSchema.of(age="numeric", dx="categorical")


@dataclass
class MemoryLedger:
    """A budget ledger in memory with the contract's rules (refuse over budget)."""

    totals: dict[str, int]
    spent: dict[str, int] = field(default_factory=dict)
    debits: list[tuple[str, int, str]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    fail_with: Exception | None = None

    async def debit(self, dataset_id: str, epsilon_micro: int, query_digest: str) -> int:
        self.events.append("debit")
        await asyncio.sleep(0)  # a real ledger awaits the commit
        if self.fail_with is not None:
            raise self.fail_with
        if dataset_id not in self.totals:
            raise UnknownDataset("no such dataset on the ledger")
        remaining = self.totals[dataset_id] - self.spent.get(dataset_id, 0)
        if epsilon_micro > remaining:
            raise BudgetExhausted(f"{epsilon_micro} asked, {remaining} left")
        self.spent[dataset_id] = self.spent.get(dataset_id, 0) + epsilon_micro
        self.debits.append((dataset_id, epsilon_micro, query_digest))
        return remaining - epsilon_micro

    async def remaining(self, dataset_id: str) -> int:
        return self.totals[dataset_id] - self.spent.get(dataset_id, 0)


def people(n: int) -> list[dict[str, Any]]:
    return [{"account": f"acc-{i}", "age": 20 + i % 50, "dx": ["flu", "cold"][i % 2]}
            for i in range(n)]


@pytest.fixture
def ledger(monkeypatch: pytest.MonkeyPatch) -> MemoryLedger:
    ledger = MemoryLedger({"ds-1": 1_000_000})
    original = Plan.run

    def recording_run(self: Plan, records: Any) -> Any:
        ledger.events.append("run")
        return original(self, records)

    monkeypatch.setattr(Plan, "run", recording_run)
    return ledger


async def test_debit_then_release(ledger: MemoryLedger) -> None:
    service = AnalyticsService(ledger)
    release = await service.answer("ds-1", {"kind": "count", "epsilon": 0.4}, people(100),
                                   schema=SCHEMA)
    assert ledger.events == ["debit", "run"]
    assert ledger.debits == [("ds-1", 400_000, release.query_digest)]
    assert re.fullmatch(r"[0-9a-f]{64}", release.query_digest)
    # Anyone holding the spec and the nonce recomputes the digest debited on the ledger.
    assert query_digest("ds-1", CountQuery(epsilon=0.4), release.nonce) == release.query_digest
    assert query_digest("ds-2", CountQuery(epsilon=0.4), release.nonce) != release.query_digest
    assert release.kind == "count" and isinstance(release.value, int)
    assert release.epsilon == 0.4 and release.epsilon_micro == 400_000
    assert release.remaining_epsilon_micro == 600_000 and release.remaining_epsilon == 0.6
    assert release.mechanism == "discrete_laplace" and release.noise_scale == pytest.approx(2.5)
    body = release.to_json()
    assert body["remaining_epsilon"] == 0.6 and body["noise"][0]["part"] == "count"
    assert await service.remaining_epsilon("ds-1") == 0.6


async def test_budget_runs_out(ledger: MemoryLedger) -> None:
    service = AnalyticsService(ledger)
    first = await service.answer("ds-1", CountQuery(epsilon=0.4), people(50), schema=SCHEMA)
    second = await service.answer(
        "ds-1", HistogramQuery(column="dx", categories=["flu", "cold"], epsilon=0.4),
        people(50), schema=SCHEMA)
    assert second.counts is not None and set(second.counts) == {"flu", "cold"}
    assert (first.remaining_epsilon_micro, second.remaining_epsilon_micro) == (600_000, 200_000)
    assert first.query_digest != second.query_digest
    ledger.events.clear()
    with pytest.raises(BudgetExhausted) as info:
        await service.answer("ds-1", MeanQuery(column="age", lower=0, upper=100, epsilon=0.4),
                             people(50), schema=SCHEMA)
    assert info.value.code == "budget_exhausted"
    assert ledger.events == ["debit"]  # refused: the measurement never ran
    assert await ledger.remaining("ds-1") == 200_000


async def test_same_query_twice_gets_two_digests(ledger: MemoryLedger) -> None:
    service = AnalyticsService(ledger)
    query = {"kind": "count", "epsilon": 0.1}
    a = await service.answer("ds-1", query, people(5), schema=SCHEMA)
    b = await service.answer("ds-1", query, people(5), schema=SCHEMA)
    assert a.query_digest != b.query_digest
    assert len(ledger.debits) == 2


@pytest.mark.parametrize("error", [UnknownDataset("gone"), LedgerUnavailable("down")])
async def test_ledger_refusal_releases_nothing(ledger: MemoryLedger, error: Exception) -> None:
    ledger.fail_with = error
    with pytest.raises(type(error)):
        await AnalyticsService(ledger).answer("ds-1", CountQuery(epsilon=0.1), people(5),
                                              schema=SCHEMA)
    assert ledger.events == ["debit"]


async def test_bad_query_spends_nothing(ledger: MemoryLedger) -> None:
    service = AnalyticsService(ledger, max_epsilon=0.5)
    bad: list[Any] = [
        {"kind": "count", "epsilon": 0.6},  # over this service's cap
        {"kind": "sum", "column": "age", "lower": 5, "upper": 1, "epsilon": 0.1},
        {"kind": "histogram", "column": "height", "bin_edges": [0, 1], "epsilon": 0.1},
    ]
    for query in bad:
        with pytest.raises(QuerySpecError):
            await service.answer("ds-1", query, people(5), schema=SCHEMA)
    with pytest.raises(UnknownColumn):
        await service.answer("ds-1", bad[2], people(5), schema=SCHEMA)
    with pytest.raises(RecordError):
        await service.answer("ds-1", {"kind": "count", "epsilon": 0.1},
                             [{"age": 3}], schema=SCHEMA)
    assert ledger.events == [] and ledger.debits == []
    with pytest.raises(ValueError):
        AnalyticsService(ledger, max_epsilon=50)


@pytest.mark.parametrize("query", [
    {"kind": "sum", "column": "age", "lower": -1e9, "upper": 1e9, "epsilon": 1e-6},
    {"kind": "sum", "column": "age", "lower": 0, "upper": 1e9, "epsilon": 1e-6},
    # The mean's own calibration runs after the noisy count, i.e. after the debit: the plan
    # must find out first.
    {"kind": "mean", "column": "age", "lower": 0, "upper": 1e9, "epsilon": 1e-6},
])
async def test_parameters_opendp_cannot_handle_are_a_422_that_spends_nothing(
        ledger: MemoryLedger, query: dict[str, Any]) -> None:
    with pytest.raises(DpParametersOutOfRange) as info:
        await AnalyticsService(ledger).answer("ds-1", query, people(5), schema=SCHEMA)
    assert (info.value.status, info.value.code) == (422, "dp_parameters_out_of_range")
    assert ledger.events == [] and ledger.debits == []


async def test_one_record_per_holder(ledger: MemoryLedger) -> None:
    # 10 holders with 100 records each: a count near 10, not 1000.
    records = [r for r in people(10) for _ in range(100)]
    release = await AnalyticsService(ledger).answer(
        "ds-1", CountQuery(epsilon=1.0), records, schema=SCHEMA)
    bound = dp.discrete_laplacian_scale_to_accuracy(release.noise_scale, 1e-9)
    assert isinstance(release.value, int) and abs(release.value - 10) <= bound < 990
    kept = one_per_holder([{"account": "a", "x": 1}, {"account": "a", "x": 2},
                           {"account": "b", "x": 3}], "account")
    assert kept == [{"account": "a", "x": 1}, {"account": "b", "x": 3}]


async def test_concurrent_answers_never_overspend(ledger: MemoryLedger) -> None:
    service = AnalyticsService(ledger)
    results = await asyncio.gather(*(
        service.answer("ds-1", CountQuery(epsilon=0.3), people(20), schema=SCHEMA)
        for _ in range(5)), return_exceptions=True)
    ok = [r for r in results if not isinstance(r, BaseException)]
    assert len(ok) == 3
    assert all(isinstance(r, BudgetExhausted) for r in results if isinstance(r, BaseException))
    assert ledger.events.count("run") == 3
    assert await ledger.remaining("ds-1") == 100_000
